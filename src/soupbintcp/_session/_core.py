"""What both sans-IO ends of a SoupBinTCP connection share: the tables, the error latch, the
heartbeat clock and the receive loop.

Layer 2: no sockets, no loop, no clock reads; time comes in as `now`.

Everything that affects transitions lives in a side's `Rules` (h11's rule): which packets are
legal in which state and where they lead (`receive`), which calls are legal and where they
lead (`send`), which timer runs in a state and where its expiry leads (`timers`), and where
the loss of the connection leads (`lost`). A protocol error leads to the side's `error`
state from anywhere, and is latched: every later call raises it again.

The tables are keyed by enum members, whose `__hash__` is Python code on 3.11, so each state
entered caches its own rows (`_rx`, `_tx`): a lookup on the hot path is then a dict of ints
or strings.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from .._errors import HeartbeatTimeout, LocalProtocolError, LoginTimeout, SoupBinTCPError
from .._wire._framing import PacketDecoder
from .._wire._packets import Debug
from ._events import Event

__all__ = ["Rules", "SessionCore", "Timer"]

StateT = TypeVar("StateT", bound=enum.Enum)


class Timer(enum.Enum):
    """The timer that runs in a state."""

    #: The login must complete by the login deadline.
    LOGIN = "login"
    #: Send a heartbeat after `heartbeat_interval` of our silence; the peer's silence
    #: beyond its timeout ends the connection.
    HEARTBEAT = "heartbeat"
    #: Only the peer's silence is watched (we send nothing more).
    WATCH = "watch"


@dataclass(frozen=True)
class Rules(Generic[StateT]):
    """One side's transition tables."""

    #: state -> {packet type received -> next state}
    receive: Mapping[StateT, Mapping[int, StateT]]
    #: call -> {state it is legal in -> next state}
    send: Mapping[str, Mapping[StateT, StateT]]
    #: state -> (the timer that runs in it, the state its expiry leads to)
    timers: Mapping[StateT, tuple[Timer, StateT]]
    #: state -> the state the loss of the connection leads to (absent: unchanged)
    lost: Mapping[StateT, StateT]
    #: the state a protocol error leads to
    error: StateT
    #: who the other end is, in messages: "server" or "client"
    peer: str
    #: what the peer's silence limit is called, in messages
    timeout_name: str
    #: the message of a login timeout ({:g} is the login timeout)
    login_timeout_text: str

    def rows(self) -> dict[StateT, tuple[dict[int, StateT] | None, dict[str, StateT]]]:
        """Each state's receive row and its calls, as plain dicts to cache."""
        states = list(type(self.error))  # every member of the state enum
        return {
            s: (
                dict(self.receive[s]) if s in self.receive else None,
                {call: row[s] for call, row in self.send.items() if s in row},
            )
            for s in states
        }


class SessionCore(Generic[StateT]):
    """The scaffolding of a sans-IO session over one side's `Rules` (`_RULES`)."""

    _RULES: ClassVar[Rules[Any]]
    _ROWS: ClassVar[dict[Any, Any]]  # _RULES.rows(), made once per class
    _HEARTBEAT: ClassVar[bytes]
    _state: StateT
    _session_id: str
    _next_sequence: int
    _rx: dict[int, StateT] | None  # the current state's row of `receive`
    _tx: dict[str, StateT]  # the calls legal in the current state, and where they lead

    __slots__ = (
        "_decoder",
        "_error",
        "_last_received",
        "_last_sent",
        "_login_deadline",
        "_next_sequence",
        "_peer_timeout",
        "_reading_paused",
        "_rx",
        "_session_id",
        "_state",
        "_tx",
        "heartbeat_interval",
        "login_timeout",
    )

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "_RULES" in cls.__dict__:
            cls._ROWS = cls._RULES.rows()

    def _core_init(
        self,
        state: StateT,
        decoder: PacketDecoder,
        *,
        interval: float,
        peer_timeout: float,
        login_timeout: float,
    ) -> None:
        self._decoder = decoder
        self._error: SoupBinTCPError | None = None
        self._last_sent = self._last_received = self._login_deadline = 0.0
        self._peer_timeout = peer_timeout
        self._reading_paused = False
        self.heartbeat_interval = interval
        self.login_timeout = login_timeout
        self._enter(state)

    def _enter(self, state: StateT) -> None:
        self._state = state
        self._rx, self._tx = self._ROWS[state]

    # --- what the session knows ------------------------------------------------------------

    @property
    def state(self) -> StateT:
        """Where the session is in its life (the side's state enum)."""
        return self._state

    @property
    def session_id(self) -> str:
        """The session: a client's as requested until a Login Accepted names it, a server
        connection's as accepted ("" before)."""
        return self._session_id

    @property
    def next_sequence(self) -> int:
        """The sequence number of the next Sequenced Data: the next a client's application
        will receive, the next a server connection will send."""
        return self._next_sequence

    @property
    def error(self) -> SoupBinTCPError | None:
        """The error that ended the session, if one did."""
        return self._error

    # --- calls -----------------------------------------------------------------------------

    def _check(self, call: str) -> StateT:
        """The state `call` leads to; raises the latched error or `LocalProtocolError`."""
        if self._error is not None:
            raise self._error
        nxt = self._tx.get(call)
        if nxt is None:
            raise LocalProtocolError(
                f"cannot {call.replace('_', ' ')} in state {self._state.value!r}"
            )
        return nxt

    def _sent(self, call: str, now: float) -> None:
        """`call` sent its bytes at `now`: take its transition."""
        nxt = self._check(call)
        if nxt is not self._state:
            self._enter(nxt)
        self._last_sent = now

    def send_debug(self, text: str, now: float) -> bytes:
        """A Debug packet (either side may send one in most states)."""
        self._check("debug")
        out = Debug(text).encode()
        self._sent("debug", now)
        return out

    def connection_lost(self) -> None:
        """The TCP connection is gone."""
        nxt = self._RULES.lost.get(self._state)
        if nxt is not None:
            self._enter(nxt)

    def peer_alive(self, now: float) -> None:
        """The driver knows the peer is alive without reading from it: it stopped reading
        on purpose (back-pressure) while unread data waits in the socket."""
        self._last_received = now

    def reading_paused(self, now: float) -> None:
        """The driver stopped reading on purpose (back-pressure): until `reading_resumed`,
        silence is ours, not the peer's, so the heartbeat timeout does not run."""
        self._reading_paused = True

    def reading_resumed(self, now: float) -> None:
        """The driver reads again; the peer's silence counts from `now`."""
        self._reading_paused = False
        self._last_received = now

    # --- timers ----------------------------------------------------------------------------

    def next_timer(self) -> float | None:
        """When `handle_timer` must next be called, or None if no timer is running."""
        entry = self._RULES.timers.get(self._state)
        if entry is None:
            return None
        timer = entry[0]
        if timer is Timer.LOGIN:
            return self._login_deadline
        silence = None if self._reading_paused else self._last_received + self._peer_timeout
        if timer is Timer.WATCH:
            return silence
        beat = self._last_sent + self.heartbeat_interval
        return beat if silence is None else min(beat, silence)

    def handle_timer(self, now: float) -> bytes:
        """Bytes to send (a heartbeat) or b"". Raises `LoginTimeout` if the login did not
        complete in time and `HeartbeatTimeout` if the peer fell silent, after taking the
        timer's transition."""
        rules = self._RULES
        entry = rules.timers.get(self._state)
        if entry is None:
            return b""
        timer, expired = entry
        if timer is Timer.LOGIN:
            if now >= self._login_deadline:
                self._enter(expired)
                raise LoginTimeout(rules.login_timeout_text.format(self.login_timeout))
            return b""
        if not self._reading_paused and now >= self._last_received + self._peer_timeout:
            self._enter(expired)
            raise HeartbeatTimeout(
                f"nothing received from the {rules.peer} for {now - self._last_received:.3g} "
                f"s ({rules.timeout_name} {self._peer_timeout:g} s)"
            )
        if timer is Timer.HEARTBEAT and now >= self._last_sent + self.heartbeat_interval:
            self._last_sent = now
            return self._HEARTBEAT
        return b""

    # --- receiving -------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Events for the bytes received.

        If the peer broke the protocol, the events decoded before the fault are returned
        first and the error is raised by the next call (and kept in `error`); a fault at the
        start of `data` raises at once. Either way the session is then in its error state.
        """
        if self._error is not None:
            raise self._error
        if not data:
            return []  # zero bytes are not a sign of life
        if self._rx is None:
            raise LocalProtocolError(f"received data in state {self._state.value!r}")
        self._last_received = now
        decoder = self._decoder
        decoder.feed(data)
        events: list[Event] = []
        try:
            self._decode(decoder, events)
        except SoupBinTCPError as exc:
            self._enter(self._RULES.error)
            self._error = exc
            if not events:
                raise
        return events

    def _decode(self, decoder: PacketDecoder, events: list[Event]) -> None:
        """Turn every whole packet in `decoder` into `events`, raising on a fault."""
        raise NotImplementedError
