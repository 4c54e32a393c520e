"""The client side of a SoupBinTCP session as a sans-IO state machine.

Layer 2: no sockets, no event loop, no clock reads. The caller passes `now` (any monotonic
clock, in seconds) into every call, sends the bytes the calls return, and calls
`handle_timer(now)` once `now` reaches `next_timer()`.

One `ClientSession` follows one logical session across any number of TCP connections: after
`connection_lost()` it can `login()` again, asking for its session id and the next sequence
number it expects, and it drops the duplicates a server may resend. Everything that affects
transitions lives in `_RULES` below (what is received, what is sent, timers, connection
loss); the error latch, heartbeat clock and receive loop are the shared `SessionCore`.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import Final

from .._errors import LocalProtocolError, RemoteProtocolError, SequenceGap, SessionMismatch
from .._speedups import ACCELERATED
from .._wire._framing import Dialect, PacketDecoder, Role
from .._wire._packets import (
    ClientHeartbeat,
    LoginAccepted,
    LoginRequest,
    LogoutRequest,
    Packet,
    PacketType,
    frame,
)
from ._core import Rules, SessionCore, Timer
from ._events import Event, Message, NoMoreMessages, SequencedFrames, SequencedMessages

__all__ = ["ClientSession", "ClientState", "one_sequenced_message"]


class ClientState(enum.Enum):
    """Where a `ClientSession` is in its life: idle, login sent, logged in, ended."""

    IDLE = "idle"  # no connection yet: login() next
    LOGIN_SENT = "login sent"  # waiting for Login Accepted / Rejected
    LOGGED_IN = "logged in"
    LOGGING_OUT = "logging out"  # Logout Request sent; the server closes next
    #: Logout Request sent before the login was answered: the answer may still come.
    LOGOUT_BEFORE_ANSWER = "logging out before the login answer"
    DISCONNECTED = "disconnected"  # connection lost; login() may resume the session
    ENDED = "ended"  # End of Session received
    REJECTED = "rejected"  # Login Rejected received
    CLOSED = "closed"  # logged out and the connection is gone
    ERROR = "error"  # a protocol error: the session is unusable


_P = PacketType
_S = ClientState

#: Which server packets are legal in which state, and the state they lead to.
#: Sequenced Data is handled by the batch path but follows the same table.
_RECEIVE: Final[dict[ClientState, dict[int, ClientState]]] = {
    # Some servers send heartbeats from accept: a sign of life, not the login's answer.
    _S.LOGIN_SENT: {_P.DEBUG: _S.LOGIN_SENT, _P.LOGIN_ACCEPTED: _S.LOGGED_IN,
                    _P.LOGIN_REJECTED: _S.REJECTED, _P.SERVER_HEARTBEAT: _S.LOGIN_SENT},
    _S.LOGGED_IN: {_P.DEBUG: _S.LOGGED_IN, _P.SEQUENCED_DATA: _S.LOGGED_IN,
                   _P.UNSEQUENCED_DATA: _S.LOGGED_IN, _P.SERVER_HEARTBEAT: _S.LOGGED_IN,
                   _P.END_OF_SESSION: _S.ENDED},
    _S.LOGGING_OUT: {_P.DEBUG: _S.LOGGING_OUT, _P.SEQUENCED_DATA: _S.LOGGING_OUT,
                     _P.UNSEQUENCED_DATA: _S.LOGGING_OUT, _P.SERVER_HEARTBEAT: _S.LOGGING_OUT,
                     _P.END_OF_SESSION: _S.ENDED},
    _S.LOGOUT_BEFORE_ANSWER: {_P.DEBUG: _S.LOGOUT_BEFORE_ANSWER,
                              _P.LOGIN_ACCEPTED: _S.LOGGING_OUT, _P.LOGIN_REJECTED: _S.REJECTED,
                              _P.SERVER_HEARTBEAT: _S.LOGOUT_BEFORE_ANSWER},
    _S.ENDED: {_P.DEBUG: _S.ENDED, _P.SERVER_HEARTBEAT: _S.ENDED},
    # 2.2.2: Login Rejected is the only non-debug packet; Debug may follow it.
    _S.REJECTED: {_P.DEBUG: _S.REJECTED},
}  # fmt: skip

#: Which calls are legal in which state, and the state they lead to.
_SEND: Final[dict[str, dict[ClientState, ClientState]]] = {
    "login": {_S.IDLE: _S.LOGIN_SENT, _S.DISCONNECTED: _S.LOGIN_SENT},
    "unsequenced": {_S.LOGGED_IN: _S.LOGGED_IN},
    "debug": {s: s for s in (_S.LOGIN_SENT, _S.LOGGED_IN, _S.LOGGING_OUT,
                             _S.LOGOUT_BEFORE_ANSWER, _S.ENDED)},
    # Before the answer the answer may still come; after End of Session there is no
    # logging out to wait for.
    "logout": {_S.LOGIN_SENT: _S.LOGOUT_BEFORE_ANSWER, _S.LOGGED_IN: _S.LOGGING_OUT,
               _S.ENDED: _S.ENDED},
}  # fmt: skip

_RULES: Final[Rules[ClientState]] = Rules(
    receive=_RECEIVE,
    send=_SEND,
    # A timeout leaves the session resumable on a new connection.
    timers={_S.LOGIN_SENT: (Timer.LOGIN, _S.DISCONNECTED),
            _S.LOGGED_IN: (Timer.HEARTBEAT, _S.DISCONNECTED)},
    lost={_S.IDLE: _S.DISCONNECTED, _S.LOGIN_SENT: _S.DISCONNECTED,
          _S.LOGGED_IN: _S.DISCONNECTED, _S.LOGGING_OUT: _S.CLOSED,
          _S.LOGOUT_BEFORE_ANSWER: _S.CLOSED},
    error=_S.ERROR,
    peer="server",
    timeout_name="heartbeat timeout",
    login_timeout_text="no answer to the Login Request in {:g} s",
)  # fmt: skip

_TERMINAL: Final = frozenset({_S.ENDED, _S.REJECTED, _S.CLOSED, _S.ERROR})
_SEQUENCED: Final = int(PacketType.SEQUENCED_DATA)
_UNSEQUENCED: Final = int(PacketType.UNSEQUENCED_DATA)
_UNSEQUENCED_HEAD: Final = struct.Struct(">HB").pack  # length, type


def one_sequenced_message(
    cls: type[Message], data: bytes, sequence: int, limit: int, omega: bool
) -> Message | None:
    """`cls((sequence, data[3:]))` if `data` is exactly one whole Sequenced Data packet with
    at most `limit` bytes after its length field (and, with `omega`, not the empty "no more
    messages"); else None. `PacketDecoder.one_packet`'s check of a Sequenced Data packet.

    The reference; the compiled twin of the same name makes the `Message` in C."""
    n = len(data) - 2
    if (
        n < 1
        or n > limit
        or data[2] != _SEQUENCED
        or (data[0] << 8 | data[1]) != n
        or (n == 1 and omega)
    ):
        return None
    return cls((sequence, data[3:]))


_one_message: Callable[[type[Message], bytes, int, int, bool], Message | None]
if ACCELERATED:
    from .._speedups._core import one_sequenced_message as _one_message
else:
    _one_message = one_sequenced_message


class ClientSession(SessionCore[ClientState]):
    """A SoupBinTCP client session.

    `sequence` is the first sequence number wanted: 1 for the whole session, n to resume at n,
    0 for only new messages. `session_id` "" logs into the server's current session.
    `client_heartbeat_timeout_ms` sends the SoupBinTCP 4.10 login field (None sends 4.00).
    """

    _RULES = _RULES
    _HEARTBEAT = ClientHeartbeat().encode()

    def __init__(
        self,
        username: str,
        password: str,
        *,
        session_id: str = "",
        sequence: int = 1,
        heartbeat_interval: float = 1.0,
        heartbeat_timeout: float = 15.0,
        login_timeout: float = 30.0,
        client_heartbeat_timeout_ms: int | None = None,
        dialect: Dialect = Dialect.SOUPBINTCP,
    ) -> None:
        if sequence < 0:
            raise LocalProtocolError(f"sequence must be 0 or more, not {sequence}")
        if heartbeat_interval <= 0 or heartbeat_timeout <= 0 or login_timeout <= 0:
            raise LocalProtocolError(
                "heartbeat_interval, heartbeat_timeout and login_timeout must be > 0"
            )
        if client_heartbeat_timeout_ms is not None and dialect is Dialect.OMEGA:
            raise LocalProtocolError("the Omega dialect's Login Request has no heartbeat timeout")
        # Validate the credentials now, not at the first connection.
        LoginRequest(username, password, session_id, sequence, client_heartbeat_timeout_ms)
        self._core_init(
            ClientState.IDLE,
            PacketDecoder(Role.SERVER, dialect=dialect),
            interval=heartbeat_interval,
            peer_timeout=heartbeat_timeout,
            login_timeout=login_timeout,
        )
        self.username = username
        self._password = password
        self.client_heartbeat_timeout_ms = client_heartbeat_timeout_ms
        self.dialect = dialect
        self._session_id = session_id
        #: Next sequence number the application will be given; 0 = "whatever the server says".
        self._next_sequence = sequence
        self._skip = 0  # duplicates the server resends after a resume, dropped on arrival
        self.logins = 0  # Login Accepted count, over all connections
        #: Hand runs of sequenced messages over as `SequencedFrames` (offsets into the bytes
        #: received, no object per message) instead of `SequencedMessages`.
        self.frames_view = False

    # --- what the session knows ------------------------------------------------------------

    @property
    def heartbeat_timeout(self) -> float:
        """Seconds of server silence after which the connection is dead."""
        return self._peer_timeout

    @heartbeat_timeout.setter
    def heartbeat_timeout(self, seconds: float) -> None:
        self._peer_timeout = seconds

    @property
    def is_terminal(self) -> bool:
        """Whether the session has ended (closed or failed): no call but reading its verdict."""
        return self._state in _TERMINAL

    # --- calls -----------------------------------------------------------------------------

    def login(self, now: float) -> bytes:
        """Bytes of the Login Request for a new TCP connection."""
        self._check("login")
        packet = LoginRequest(
            self.username,
            self._password,
            self._session_id,
            self._next_sequence,
            self.client_heartbeat_timeout_ms,
        ).encode()
        self._decoder = PacketDecoder(Role.SERVER, dialect=self.dialect)
        self._skip = 0
        self._sent("login", now)
        self._last_received = now
        self._login_deadline = now + self.login_timeout
        return packet

    def send_unsequenced(self, data: bytes, now: float) -> bytes:
        """The bytes of an Unsequenced Data packet carrying `data`, to write to the server."""
        if self._state is not _S.LOGGED_IN or self._error is not None or len(data) >= 0xFFFF:
            self._check("unsequenced")  # raises why (the table allows only LOGGED_IN)
            out = frame(PacketType.UNSEQUENCED_DATA, data)  # raises if it is too long
            self._sent("unsequenced", now)
            return out
        # The order path (issue 22): logged in, so the table's answer is known; one header
        # packed and one concatenation.
        self._last_sent = now
        return _UNSEQUENCED_HEAD(len(data) + 1, _UNSEQUENCED) + data

    def logout(self, now: float) -> bytes:
        """The bytes of a Logout Request; the server then ends the connection."""
        self._sent("logout", now)
        return LogoutRequest().encode()

    # --- receiving -------------------------------------------------------------------------

    def receive_one(self, data: bytes, now: float) -> Message | None:
        """`receive_data`'s fast path for the usual answer to a request: when `data` is
        exactly one Sequenced Data packet, nothing is buffered before it, the state takes
        one and no resent duplicate is to be dropped, its `Message`; else None, and nothing
        was consumed (call `receive_data`)."""
        rx = self._rx
        if rx is None or _SEQUENCED not in rx or self._skip or self._error is not None:
            return None
        # `self._decoder.one_packet(data, _SEQUENCED)` made here (test_round_trip_fast holds
        # the two to the same answers): nothing buffered, and `data` one whole Sequenced Data
        # packet within the limit (a server's decoder always takes that type); the Message
        # made in C when compiled.
        decoder = self._decoder
        if decoder._pos != len(decoder._buf):
            return None
        seq = self._next_sequence
        msg = _one_message(Message, data, seq, decoder._max, decoder._omega)
        if msg is None:
            return None
        decoder._base += decoder._pos + len(data)
        decoder._buf = b""
        decoder._pos = 0
        self._last_received = now
        self._next_sequence = seq + 1
        return msg

    def _decode(self, decoder: PacketDecoder, events: list[Event]) -> None:
        take_run = self._frames_run if self.frames_view else self._payloads_run
        while True:
            take_run(decoder, events)
            packet = decoder.next_packet()
            if packet is None:
                return
            self._packet(packet, events)

    def _payloads_run(self, decoder: PacketDecoder, events: list[Event]) -> None:
        payloads = decoder.next_sequenced_payloads()
        if payloads:
            self._sequenced(payloads, events)

    def _frames_run(self, decoder: PacketDecoder, events: list[Event]) -> None:
        buf, offsets, lengths = decoder.next_sequenced_frames()
        if offsets:
            dropped = self._duplicates(len(offsets))
            if dropped:
                del offsets[:dropped], lengths[:dropped]
            if offsets:
                events.append(SequencedFrames(self._next_sequence, buf, offsets, lengths))
                self._next_sequence += len(offsets)

    def _duplicates(self, arrived: int) -> int:
        """How many of the `arrived` sequenced messages at hand to drop as resent."""
        rx = self._rx
        if rx is None or _SEQUENCED not in rx:
            raise RemoteProtocolError(f"Sequenced Data received in state {self._state.value!r}")
        dropped = min(self._skip, arrived)
        self._skip -= dropped
        return dropped

    def _sequenced(self, payloads: list[bytes], events: list[Event]) -> None:
        dropped = self._duplicates(len(payloads))
        if dropped:
            del payloads[:dropped]
            if not payloads:
                return
        events.append(SequencedMessages(self._next_sequence, payloads))
        self._next_sequence += len(payloads)

    def _packet(self, packet: Packet, events: list[Event]) -> None:
        ptype = packet.packet_type
        allowed = self._rx or {}
        if ptype not in allowed:
            raise RemoteProtocolError(
                f"{type(packet).__name__.removesuffix('Packet')} packet received in state "
                f"{self._state.value!r}"
            )
        if ptype == PacketType.SEQUENCED_DATA:
            # Only an empty message in the Omega dialect takes this path.
            events.append(NoMoreMessages(self._next_sequence))
            return
        if ptype == PacketType.LOGIN_ACCEPTED:
            assert isinstance(packet, LoginAccepted)
            self._accepted(packet)
        self._enter(allowed[ptype])
        events.append(packet)

    def _accepted(self, packet: LoginAccepted) -> None:
        if self._session_id and packet.session != self._session_id:
            raise SessionMismatch(self._session_id, packet.session)
        if packet.sequence < 1:
            raise RemoteProtocolError(f"Login Accepted with sequence number {packet.sequence}")
        expected = self._next_sequence
        if expected == 0 or (self.logins == 0 and packet.sequence < expected):
            # First login: "only new messages", or a request beyond the end of the session,
            # which the server answers with its next sequence number. Nothing was delivered
            # yet, so there is nothing to skip.
            expected = packet.sequence
        elif packet.sequence > expected:
            raise SequenceGap(expected, packet.sequence)
        self._skip = expected - packet.sequence
        self._next_sequence = expected
        self._session_id = packet.session
        self.logins += 1
