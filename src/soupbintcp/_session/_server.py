"""The server side of one SoupBinTCP connection as a sans-IO state machine.

Layer 2: no sockets, no event loop, no clock reads. The caller passes `now` into every call,
sends the bytes the calls return and calls `handle_timer(now)` once `now` reaches
`next_timer()`. The login decision is the caller's: a Login Request moves the session to
LOGIN_PENDING and the caller answers with `accept()` or `reject()`.
Everything that decides which packet is legal in which state lives in `_RECEIVE` and `_SEND`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final

from .._errors import (
    HeartbeatTimeout,
    LocalProtocolError,
    LoginTimeout,
    RejectReason,
    RemoteProtocolError,
    SoupBinTCPError,
)
from .._wire._framing import Dialect, PacketDecoder, Role
from .._wire._packets import (
    Debug,
    EndOfSession,
    LoginAccepted,
    LoginReject,
    LoginRequest,
    Packet,
    PacketType,
    ServerHeartbeat,
    frame,
    sequenced_frame,
    sequenced_frames,
)
from ._events import Event

__all__ = ["ServerSession", "ServerState"]


class ServerState(enum.Enum):
    AWAITING_LOGIN = "awaiting login"  # connection open, no Login Request yet
    LOGIN_PENDING = "login pending"  # Login Request received: accept() or reject() next
    LOGGED_IN = "logged in"
    ENDED = "ended"  # End of Session sent
    REJECTED = "rejected"  # Login Rejected sent; close the connection
    CLOSED = "closed"  # Logout Request received, or the connection is gone
    ERROR = "error"  # the client broke the protocol; close the connection


_P = PacketType
_S = ServerState

#: Which client packets are legal in which state, and the state they lead to.
_RECEIVE: Final[dict[ServerState, dict[int, ServerState]]] = {
    _S.AWAITING_LOGIN: {_P.DEBUG: _S.AWAITING_LOGIN, _P.LOGIN_REQUEST: _S.LOGIN_PENDING},
    # Clients that start their heartbeat timer at connect (Nassau's keepAlive) send
    # heartbeats while the login is answered; the spec does not forbid it.
    _S.LOGIN_PENDING: {_P.DEBUG: _S.LOGIN_PENDING, _P.CLIENT_HEARTBEAT: _S.LOGIN_PENDING,
                       _P.LOGOUT_REQUEST: _S.CLOSED},
    _S.LOGGED_IN: {_P.DEBUG: _S.LOGGED_IN, _P.UNSEQUENCED_DATA: _S.LOGGED_IN,
                   _P.CLIENT_HEARTBEAT: _S.LOGGED_IN, _P.LOGOUT_REQUEST: _S.CLOSED},
    _S.ENDED: {_P.DEBUG: _S.ENDED, _P.UNSEQUENCED_DATA: _S.ENDED,
               _P.CLIENT_HEARTBEAT: _S.ENDED, _P.LOGOUT_REQUEST: _S.CLOSED},
}  # fmt: skip

#: Which calls are legal in which state.
_SEND: Final[dict[str, frozenset[ServerState]]] = {
    "accept": frozenset({_S.LOGIN_PENDING}),
    "reject": frozenset({_S.LOGIN_PENDING}),
    "sequenced": frozenset({_S.LOGGED_IN}),
    "unsequenced": frozenset({_S.LOGGED_IN}),
    "end_session": frozenset({_S.LOGGED_IN}),
    "debug": frozenset({_S.AWAITING_LOGIN, _S.LOGIN_PENDING, _S.LOGGED_IN, _S.ENDED}),
}

_NAMES: Final[dict[int, str]] = {
    _P.DEBUG: "Debug",
    _P.LOGIN_REQUEST: "Login Request",
    _P.UNSEQUENCED_DATA: "Unsequenced Data",
    _P.CLIENT_HEARTBEAT: "Client Heartbeat",
    _P.LOGOUT_REQUEST: "Logout Request",
}
_HEARTBEAT: Final = ServerHeartbeat().encode()


class ServerSession:
    """The server's end of one connection, created when the TCP connection is accepted.

    `client_heartbeat_timeout` (seconds) applies unless the client's 4.10 Login Request sets
    its own Heartbeat Timeout, which then wins.
    """

    def __init__(
        self,
        now: float,
        *,
        heartbeat_interval: float = 1.0,
        client_heartbeat_timeout: float = 15.0,
        login_timeout: float = 30.0,
        dialect: Dialect = Dialect.SOUPBINTCP,
        max_packet_length: int = 0xFFFF,
    ) -> None:
        if heartbeat_interval <= 0 or client_heartbeat_timeout <= 0 or login_timeout <= 0:
            raise LocalProtocolError("heartbeat and login timeouts must be > 0")
        self.heartbeat_interval = heartbeat_interval
        self.default_client_heartbeat_timeout = client_heartbeat_timeout
        self.login_timeout = login_timeout
        self.dialect = dialect
        self._decoder = PacketDecoder(
            Role.CLIENT, dialect=dialect, max_packet_length=max_packet_length
        )
        self._state = ServerState.AWAITING_LOGIN
        self._opened = now
        self._last_sent = now
        self._last_received = now
        self._client_heartbeat_timeout = client_heartbeat_timeout
        self._reading_paused = False
        self._login_request: LoginRequest | None = None
        self._session_id = ""
        self._next_sequence = 0
        self._error: SoupBinTCPError | None = None

    # --- what the session knows ------------------------------------------------------------

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def login_request(self) -> LoginRequest | None:
        return self._login_request

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def next_sequence(self) -> int:
        """Sequence number of the next Sequenced Data this connection will send."""
        return self._next_sequence

    @property
    def client_heartbeat_timeout(self) -> float:
        """Seconds of client silence after which the connection is dead."""
        return self._client_heartbeat_timeout

    @property
    def error(self) -> SoupBinTCPError | None:
        return self._error

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole packet (a truncated packet at EOF)."""
        return self._decoder.buffered

    # --- calls -----------------------------------------------------------------------------

    def _check(self, call: str) -> None:
        if self._error is not None:
            raise self._error
        if self._state not in _SEND[call]:
            raise LocalProtocolError(
                f"cannot {call.replace('_', ' ')} in state {self._state.value!r}"
            )

    def accept(self, session_id: str, sequence: int, now: float) -> bytes:
        """Login Accepted: the client is in `session_id`, next Sequenced Data is `sequence`."""
        self._check("accept")
        if sequence < 1:
            raise LocalProtocolError(f"the next sequence number must be 1 or more, not {sequence}")
        packet = LoginAccepted(session_id, sequence).encode()
        self._state = ServerState.LOGGED_IN
        self._session_id = session_id
        self._next_sequence = sequence
        self._last_sent = self._last_received = now
        return packet

    def reject(self, reason: RejectReason, now: float) -> bytes:
        """Login Rejected; the caller closes the connection after sending it."""
        self._check("reject")
        self._state = ServerState.REJECTED
        self._last_sent = now
        return LoginReject(RejectReason(reason)).encode()

    def _check_omega_message(self, data: bytes) -> None:
        if not data and self.dialect is Dialect.OMEGA:
            # An empty message means "no more messages" there: the client does not count it.
            raise LocalProtocolError(
                "the Omega dialect cannot carry an empty message (send_no_more_messages "
                "sends the empty 'no more messages' packet)"
            )

    def send_sequenced(self, data: bytes, now: float) -> bytes:
        self._check("sequenced")
        self._check_omega_message(data)
        out = sequenced_frame(data)
        self._next_sequence += 1
        self._last_sent = now
        return out

    def send_sequenced_many(self, messages: Iterable[bytes], now: float) -> bytes:
        """Sequenced Data packets for `messages`, in one buffer for one write."""
        self._check("sequenced")
        if self.dialect is Dialect.OMEGA:
            messages = list(messages)
            if not all(messages):
                self._check_omega_message(b"")
        frames, count = sequenced_frames(messages)
        self._next_sequence += count
        self._last_sent = now
        return frames

    def sequenced_sent(self, count: int, now: float) -> None:
        """Record `count` Sequenced Data packets that the caller wrote already encoded
        (replay straight from a journal that stores them as they go on the wire)."""
        self._check("sequenced")
        if count < 0:
            raise LocalProtocolError(f"a count of sent messages cannot be negative ({count})")
        self._next_sequence += count
        self._last_sent = now

    def send_unsequenced(self, data: bytes, now: float) -> bytes:
        self._check("unsequenced")
        if self.dialect is Dialect.OMEGA:
            raise LocalProtocolError("the Omega dialect has no server Unsequenced Data")
        self._last_sent = now
        return frame(PacketType.UNSEQUENCED_DATA, data)

    def send_no_more_messages(self, now: float) -> bytes:
        """Omega dialect: the empty Sequenced Data packet, "no more messages available"."""
        self._check("sequenced")
        if self.dialect is not Dialect.OMEGA:
            raise LocalProtocolError("only the Omega dialect has a 'no more messages' packet")
        self._last_sent = now
        return frame(PacketType.SEQUENCED_DATA)

    def send_debug(self, text: str, now: float) -> bytes:
        self._check("debug")
        self._last_sent = now
        return Debug(text).encode()

    def end_session(self, now: float) -> bytes:
        """End of Session: no more messages in this session; close the connection soon."""
        self._check("end_session")
        if self.dialect is Dialect.OMEGA:
            raise LocalProtocolError("the Omega dialect has no End of Session packet")
        self._state = ServerState.ENDED
        self._last_sent = now
        return EndOfSession().encode()

    def peer_alive(self, now: float) -> None:
        """The driver knows the client is alive without reading from it."""
        self._last_received = now

    def reading_paused(self, now: float) -> None:
        """The driver stopped reading on purpose (its unsequenced inbox is full): until
        `reading_resumed`, silence is ours, not the client's, so the heartbeat timeout
        does not run."""
        self._reading_paused = True

    def reading_resumed(self, now: float) -> None:
        """The driver reads again; the client's silence counts from `now`."""
        self._reading_paused = False
        self._last_received = now

    def connection_lost(self) -> None:
        if self._state is not ServerState.ERROR:
            self._state = ServerState.CLOSED

    # --- timers ----------------------------------------------------------------------------

    def next_timer(self) -> float | None:
        if self._state in (ServerState.AWAITING_LOGIN, ServerState.LOGIN_PENDING):
            return self._opened + self.login_timeout
        if self._state is ServerState.LOGGED_IN:
            if self._reading_paused:
                return self._last_sent + self.heartbeat_interval
            return min(
                self._last_sent + self.heartbeat_interval,
                self._last_received + self._client_heartbeat_timeout,
            )
        if self._state is ServerState.ENDED and not self._reading_paused:
            return self._last_received + self._client_heartbeat_timeout
        return None

    def handle_timer(self, now: float) -> bytes:
        """Bytes to send (a Server Heartbeat) or b"". Raises `LoginTimeout` if no login
        completed in time and `HeartbeatTimeout` if the client fell silent; the session is
        then CLOSED and the caller closes the connection."""
        state = self._state
        if state in (ServerState.AWAITING_LOGIN, ServerState.LOGIN_PENDING):
            if now >= self._opened + self.login_timeout:
                self._state = ServerState.CLOSED
                raise LoginTimeout(f"no Login Request within {self.login_timeout:g} s")
            return b""
        if state not in (ServerState.LOGGED_IN, ServerState.ENDED):
            return b""
        if not self._reading_paused and now >= self._last_received + self._client_heartbeat_timeout:
            self._state = ServerState.CLOSED
            raise HeartbeatTimeout(
                f"nothing received from the client for {now - self._last_received:.3g} s "
                f"(client heartbeat timeout {self._client_heartbeat_timeout:g} s)"
            )
        if state is ServerState.LOGGED_IN and now >= self._last_sent + self.heartbeat_interval:
            self._last_sent = now
            return _HEARTBEAT
        return b""

    # --- receiving -------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Events for the bytes received from the client.

        On a protocol fault the events decoded before it are returned first and the error is
        raised by the next call (and kept in `error`); a fault at the start of `data` raises
        at once. Either way the session is then in ERROR.
        """
        if self._error is not None:
            raise self._error
        if not data:
            return []  # zero bytes are not a sign of life
        if self._state not in _RECEIVE:
            raise LocalProtocolError(f"received data in state {self._state.value!r}")
        self._last_received = now
        decoder = self._decoder
        decoder.feed(data)
        events: list[Event] = []
        try:
            while (packet := decoder.next_packet()) is not None:
                self._packet(packet, decoder.offset, events)
        except SoupBinTCPError as exc:
            self._state = ServerState.ERROR
            self._error = exc
            if not events:
                raise
        return events

    def _packet(self, packet: Packet, offset: int, events: list[Event]) -> None:
        ptype = packet.packet_type
        allowed = _RECEIVE.get(self._state)
        if allowed is None or ptype not in allowed:
            expected = ", ".join(_NAMES[t] for t in (allowed or {}))
            raise RemoteProtocolError(
                f"{_NAMES.get(ptype, type(packet).__name__)} received in state "
                f"{self._state.value!r} (expected {expected or 'nothing'}), "
                f"packet ending at offset {offset}"
            )
        if ptype == PacketType.LOGIN_REQUEST:
            assert isinstance(packet, LoginRequest)
            self._login_request = packet
            if packet.heartbeat_timeout_ms:  # 4.10: the client chooses; 0 means "not set"
                self._client_heartbeat_timeout = packet.heartbeat_timeout_ms / 1000
        self._state = allowed[ptype]
        events.append(packet)
