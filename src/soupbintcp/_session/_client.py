"""The client side of a SoupBinTCP session as a sans-IO state machine.

Layer 2: no sockets, no event loop, no clock reads. The caller passes `now` (any monotonic
clock, in seconds) into every call, sends the bytes the calls return, and calls
`handle_timer(now)` once `now` reaches `next_timer()`.

One `ClientSession` follows one logical session across any number of TCP connections: after
`connection_lost()` it can `login()` again, asking for its session id and the next sequence
number it expects, and it drops the duplicates a server may resend. Everything that decides
which packet is legal in which state lives in `_RECEIVE` and `_SEND` below.
"""

from __future__ import annotations

import enum
from typing import Final

from .._errors import (
    HeartbeatTimeout,
    LocalProtocolError,
    LoginTimeout,
    RemoteProtocolError,
    SequenceGap,
    SessionMismatch,
    SoupBinTCPError,
)
from .._wire._framing import Dialect, PacketDecoder, Role
from .._wire._packets import (
    ClientHeartbeat,
    Debug,
    LoginAccepted,
    LoginRequest,
    LogoutRequest,
    Packet,
    PacketType,
    frame,
)
from ._events import Event, NoMoreMessages, SequencedMessages

__all__ = ["ClientSession", "ClientState"]


class ClientState(enum.Enum):
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

#: Which calls are legal in which state.
_SEND: Final[dict[str, frozenset[ClientState]]] = {
    "login": frozenset({_S.IDLE, _S.DISCONNECTED}),
    "unsequenced": frozenset({_S.LOGGED_IN}),
    "debug": frozenset(
        {_S.LOGIN_SENT, _S.LOGGED_IN, _S.LOGGING_OUT, _S.LOGOUT_BEFORE_ANSWER, _S.ENDED}
    ),
    "logout": frozenset({_S.LOGIN_SENT, _S.LOGGED_IN, _S.ENDED}),
}

_TERMINAL: Final = frozenset({_S.ENDED, _S.REJECTED, _S.CLOSED, _S.ERROR})
_HEARTBEAT: Final = ClientHeartbeat().encode()


class ClientSession:
    """A SoupBinTCP client session.

    `sequence` is the first sequence number wanted: 1 for the whole session, n to resume at n,
    0 for only new messages. `session_id` "" logs into the server's current session.
    `client_heartbeat_timeout_ms` sends the SoupBinTCP 4.10 login field (None sends 4.00).
    """

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
        self.username = username
        self._password = password
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.login_timeout = login_timeout
        self.client_heartbeat_timeout_ms = client_heartbeat_timeout_ms
        self.dialect = dialect
        self._state = ClientState.IDLE
        self._session_id = session_id
        #: Next sequence number the application will be given; 0 = "whatever the server says".
        self._next_sequence = sequence
        self._skip = 0  # duplicates the server resends after a resume, dropped on arrival
        self._decoder = PacketDecoder(Role.SERVER, dialect=dialect)
        self._last_sent = 0.0
        self._last_received = 0.0
        self._login_sent = 0.0
        self._reading_paused = False
        self._error: SoupBinTCPError | None = None
        self.logins = 0  # Login Accepted count, over all connections

    # --- what the session knows ------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def session_id(self) -> str:
        """The session being followed: as requested until a Login Accepted names it."""
        return self._session_id

    @property
    def next_sequence(self) -> int:
        """The sequence number of the next sequenced message the application will receive."""
        return self._next_sequence

    @property
    def error(self) -> SoupBinTCPError | None:
        """The error that ended the session, if one did: a `RemoteProtocolError`,
        `SequenceGap` or `SessionMismatch`."""
        return self._error

    @property
    def is_terminal(self) -> bool:
        return self._state in _TERMINAL

    # --- calls -----------------------------------------------------------------------------

    def _check(self, call: str) -> None:
        if self._error is not None:
            raise self._error
        if self._state not in _SEND[call]:
            raise LocalProtocolError(f"cannot {call} in state {self._state.value!r}")

    def login(self, now: float) -> bytes:
        """Bytes of the Login Request for a new TCP connection."""
        self._check("login")
        self._decoder = PacketDecoder(Role.SERVER, dialect=self.dialect)
        self._skip = 0
        self._state = ClientState.LOGIN_SENT
        self._last_sent = self._last_received = self._login_sent = now
        return LoginRequest(
            self.username,
            self._password,
            self._session_id,
            self._next_sequence,
            self.client_heartbeat_timeout_ms,
        ).encode()

    def send_unsequenced(self, data: bytes, now: float) -> bytes:
        self._check("unsequenced")
        self._last_sent = now
        return frame(PacketType.UNSEQUENCED_DATA, data)

    def send_debug(self, text: str, now: float) -> bytes:
        self._check("debug")
        self._last_sent = now
        return Debug(text).encode()

    def logout(self, now: float) -> bytes:
        self._check("logout")
        if self._state is ClientState.LOGIN_SENT:
            self._state = ClientState.LOGOUT_BEFORE_ANSWER
        elif self._state is not ClientState.ENDED:
            self._state = ClientState.LOGGING_OUT
        self._last_sent = now
        return LogoutRequest().encode()

    def connection_lost(self) -> None:
        """The TCP connection is gone. The session may `login()` again unless it is over."""
        if self._state in (ClientState.LOGIN_SENT, ClientState.LOGGED_IN, ClientState.IDLE):
            self._state = ClientState.DISCONNECTED
        elif self._state in (ClientState.LOGGING_OUT, ClientState.LOGOUT_BEFORE_ANSWER):
            self._state = ClientState.CLOSED

    def peer_alive(self, now: float) -> None:
        """The driver knows the server is alive without reading from it: it stopped reading
        on purpose (back-pressure) while unread data waits in the socket."""
        self._last_received = now

    def reading_paused(self, now: float) -> None:
        """The driver stopped reading on purpose (back-pressure): until `reading_resumed`,
        silence is ours, not the server's, so the heartbeat timeout does not run."""
        self._reading_paused = True

    def reading_resumed(self, now: float) -> None:
        """The driver reads again; the server's silence counts from `now`."""
        self._reading_paused = False
        self._last_received = now

    # --- timers ----------------------------------------------------------------------------

    def next_timer(self) -> float | None:
        """When `handle_timer` must next be called, or None if no timer is running."""
        if self._state is ClientState.LOGIN_SENT:
            return self._login_sent + self.login_timeout
        if self._state is ClientState.LOGGED_IN:
            if self._reading_paused:
                return self._last_sent + self.heartbeat_interval
            return min(
                self._last_sent + self.heartbeat_interval,
                self._last_received + self.heartbeat_timeout,
            )
        return None

    def handle_timer(self, now: float) -> bytes:
        """Bytes to send (a Client Heartbeat) or b"". Raises `LoginTimeout` or
        `HeartbeatTimeout` when the server has been silent too long; the session is then
        DISCONNECTED and may log in again on a new connection."""
        if self._state is ClientState.LOGIN_SENT:
            if now >= self._login_sent + self.login_timeout:
                self._state = ClientState.DISCONNECTED
                raise LoginTimeout(f"no answer to the Login Request in {self.login_timeout:g} s")
            return b""
        if self._state is not ClientState.LOGGED_IN:
            return b""
        if not self._reading_paused and now >= self._last_received + self.heartbeat_timeout:
            self._state = ClientState.DISCONNECTED
            raise HeartbeatTimeout(
                f"nothing received from the server for {now - self._last_received:.3g} s "
                f"(heartbeat timeout {self.heartbeat_timeout:g} s)"
            )
        if now >= self._last_sent + self.heartbeat_interval:
            self._last_sent = now
            return _HEARTBEAT
        return b""

    # --- receiving -------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Events for the bytes received.

        If the server broke the protocol, the events decoded before the fault are returned
        first and the error is raised by the next call (and kept in `error`); a fault at the
        start of `data` raises at once. Either way the session is then in ERROR.
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
            while True:
                payloads = decoder.next_sequenced_payloads()
                if payloads:
                    self._sequenced(payloads, events)
                packet = decoder.next_packet()
                if packet is None:
                    break
                self._packet(packet, events)
        except SoupBinTCPError as exc:
            self._state = ClientState.ERROR
            self._error = exc
            if not events:
                raise
        return events

    def _sequenced(self, payloads: list[bytes], events: list[Event]) -> None:
        if self._state not in (ClientState.LOGGED_IN, ClientState.LOGGING_OUT):
            raise RemoteProtocolError(f"Sequenced Data received in state {self._state.value!r}")
        if self._skip:
            dropped = min(self._skip, len(payloads))
            self._skip -= dropped
            del payloads[:dropped]
            if not payloads:
                return
        events.append(SequencedMessages(self._next_sequence, payloads))
        self._next_sequence += len(payloads)

    def _packet(self, packet: Packet, events: list[Event]) -> None:
        ptype = packet.packet_type
        allowed = _RECEIVE.get(self._state, {})
        if ptype not in allowed:
            raise RemoteProtocolError(
                f"{type(packet).__name__} packet received in state {self._state.value!r}"
            )
        if ptype == PacketType.SEQUENCED_DATA:
            # Only an empty message in the Omega dialect takes this path.
            events.append(NoMoreMessages(self._next_sequence))
            return
        if ptype == PacketType.LOGIN_ACCEPTED:
            assert isinstance(packet, LoginAccepted)
            self._accepted(packet)
        self._state = allowed[ptype]
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
