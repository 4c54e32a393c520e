"""The server side of one SoupBinTCP connection as a sans-IO state machine.

Layer 2: no sockets, no event loop, no clock reads. The caller passes `now` into every call,
sends the bytes the calls return and calls `handle_timer(now)` once `now` reaches
`next_timer()`. The login decision is the caller's: a Login Request moves the connection to
LOGIN_PENDING and the caller answers with `accept()` or `reject()`.
Everything that affects transitions lives in `_RULES` below (what is received, what is sent,
timers, connection loss); the error latch, heartbeat clock and receive loop are the shared
`SessionCore`.

`ServerConnectionState` was `ServerSession` in 0.1: it is one connection, not the spec's
session (which outlives connections, and which the server driver keeps with its streams).
The old name stays as a deprecated alias.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final

from .._errors import LocalProtocolError, RejectReason, RemoteProtocolError
from .._wire._framing import Dialect, PacketDecoder, Role
from .._wire._packets import (
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
from ._core import Rules, SessionCore, Timer
from ._events import Event

__all__ = ["ServerConnectionState", "ServerSession", "ServerState"]


class ServerState(enum.Enum):
    """Where the server's end of one connection is: awaiting login, pending, logged in, ended."""

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

#: Which calls are legal in which state, and the state they lead to.
_SEND: Final[dict[str, dict[ServerState, ServerState]]] = {
    "accept": {_S.LOGIN_PENDING: _S.LOGGED_IN},
    "reject": {_S.LOGIN_PENDING: _S.REJECTED},
    "sequenced": {_S.LOGGED_IN: _S.LOGGED_IN},
    "unsequenced": {_S.LOGGED_IN: _S.LOGGED_IN},
    "end_session": {_S.LOGGED_IN: _S.ENDED},
    "debug": {s: s for s in (_S.AWAITING_LOGIN, _S.LOGIN_PENDING, _S.LOGGED_IN, _S.ENDED)},
}

_RULES: Final[Rules[ServerState]] = Rules(
    receive=_RECEIVE,
    send=_SEND,
    # After End of Session no heartbeats are sent, but a silent client is still dropped.
    timers={_S.AWAITING_LOGIN: (Timer.LOGIN, _S.CLOSED),
            _S.LOGIN_PENDING: (Timer.LOGIN, _S.CLOSED),
            _S.LOGGED_IN: (Timer.HEARTBEAT, _S.CLOSED),
            _S.ENDED: (Timer.WATCH, _S.CLOSED)},
    lost={s: _S.CLOSED for s in ServerState if s is not _S.ERROR},
    error=_S.ERROR,
    peer="client",
    timeout_name="client heartbeat timeout",
    login_timeout_text="no Login Request within {:g} s",
)  # fmt: skip

_UNSEQUENCED: Final = int(_P.UNSEQUENCED_DATA)
_NAMES: Final[dict[int, str]] = {
    _P.DEBUG: "Debug",
    _P.LOGIN_REQUEST: "Login Request",
    _P.UNSEQUENCED_DATA: "Unsequenced Data",
    _P.CLIENT_HEARTBEAT: "Client Heartbeat",
    _P.LOGOUT_REQUEST: "Logout Request",
}


class ServerConnectionState(SessionCore[ServerState]):
    """The server's end of one connection, created when the TCP connection is accepted.

    `client_heartbeat_timeout` (seconds) applies unless the client's 4.10 Login Request sets
    its own Heartbeat Timeout, which then wins.
    """

    _RULES = _RULES
    _HEARTBEAT = ServerHeartbeat().encode()

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
        self._core_init(
            ServerState.AWAITING_LOGIN,
            PacketDecoder(Role.CLIENT, dialect=dialect, max_packet_length=max_packet_length),
            interval=heartbeat_interval,
            peer_timeout=client_heartbeat_timeout,
            login_timeout=login_timeout,
        )
        self.default_client_heartbeat_timeout = client_heartbeat_timeout
        self.dialect = dialect
        self._last_sent = self._last_received = now
        self._login_deadline = now + login_timeout
        self._login_request: LoginRequest | None = None
        self._session_id = ""
        self._next_sequence = 0

    # --- what the session knows ------------------------------------------------------------

    @property
    def login_request(self) -> LoginRequest | None:
        """The client's Login Request, once received (None before)."""
        return self._login_request

    @property
    def client_heartbeat_timeout(self) -> float:
        """Seconds of client silence after which the connection is dead."""
        return self._peer_timeout

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole packet (a truncated packet at EOF)."""
        return self._decoder.buffered

    # --- calls -----------------------------------------------------------------------------

    def accept(self, session_id: str, sequence: int, now: float) -> bytes:
        """Login Accepted: the client is in `session_id`, next Sequenced Data is `sequence`."""
        self._check("accept")
        if sequence < 1:
            raise LocalProtocolError(f"the next sequence number must be 1 or more, not {sequence}")
        packet = LoginAccepted(session_id, sequence).encode()
        self._sent("accept", now)
        self._session_id = session_id
        self._next_sequence = sequence
        self._last_received = now
        return packet

    def reject(self, reason: RejectReason, now: float) -> bytes:
        """Login Rejected; the caller closes the connection after sending it."""
        self._check("reject")
        packet = LoginReject(RejectReason(reason)).encode()
        self._sent("reject", now)
        return packet

    def _check_omega_message(self, data: bytes) -> None:
        if not data and self.dialect is Dialect.OMEGA:
            # An empty message means "no more messages" there: the client does not count it.
            raise LocalProtocolError(
                "the Omega dialect cannot carry an empty message (send_no_more_messages "
                "sends the empty 'no more messages' packet)"
            )

    def send_sequenced(self, data: bytes, now: float) -> bytes:
        """The bytes of a Sequenced Data packet carrying `data`; counts it as sent."""
        self._check("sequenced")
        self._check_omega_message(data)
        out = sequenced_frame(data)
        self._sent("sequenced", now)
        self._next_sequence += 1
        return out

    def send_sequenced_many(self, messages: Iterable[bytes], now: float) -> bytes:
        """Sequenced Data packets for `messages`, in one buffer for one write."""
        self._check("sequenced")
        if self.dialect is Dialect.OMEGA:
            messages = list(messages)
            if not all(messages):
                self._check_omega_message(b"")
        frames, count = sequenced_frames(messages)
        self._sent("sequenced", now)
        self._next_sequence += count
        return frames

    def sequenced_sent(self, count: int, now: float) -> None:
        """Record `count` Sequenced Data packets that the caller wrote already encoded
        (replay straight from a journal that stores them as they go on the wire)."""
        if count < 0:
            raise LocalProtocolError(f"a count of sent messages cannot be negative ({count})")
        if self._error is not None or self._tx.get("sequenced") is not self._state:
            self._sent("sequenced", now)  # raises, or takes the transition
        else:
            self._last_sent = now  # the fan-out's case: the state stays
        self._next_sequence += count

    def send_unsequenced(self, data: bytes, now: float) -> bytes:
        """The bytes of an Unsequenced Data packet carrying `data` (not in the Omega dialect)."""
        self._check("unsequenced")
        if self.dialect is Dialect.OMEGA:
            raise LocalProtocolError("the Omega dialect has no server Unsequenced Data")
        out = frame(PacketType.UNSEQUENCED_DATA, data)
        self._sent("unsequenced", now)
        return out

    def send_no_more_messages(self, now: float) -> bytes:
        """Omega dialect: the empty Sequenced Data packet, "no more messages available"."""
        self._check("sequenced")
        if self.dialect is not Dialect.OMEGA:
            raise LocalProtocolError("only the Omega dialect has a 'no more messages' packet")
        self._sent("sequenced", now)
        return frame(PacketType.SEQUENCED_DATA)

    def end_session(self, now: float) -> bytes:
        """End of Session: no more messages in this session; close the connection soon."""
        self._check("end_session")
        if self.dialect is Dialect.OMEGA:
            raise LocalProtocolError("the Omega dialect has no End of Session packet")
        self._sent("end_session", now)
        return EndOfSession().encode()

    # --- receiving -------------------------------------------------------------------------

    def receive_one_unsequenced(self, data: bytes, now: float) -> bytes | None:
        """`receive_data`'s fast path for the usual request: when `data` is exactly one
        Unsequenced Data packet, nothing is buffered before it and the current state takes
        one, its payload; else None, and nothing was consumed (call `receive_data`)."""
        rx = self._rx
        if rx is None or rx.get(_UNSEQUENCED) is not self._state or self._error is not None:
            return None
        # `self._decoder.one_packet(data, _UNSEQUENCED)` inlined (one Python call less per
        # request; test_round_trip_fast holds the two to the same answers): nothing
        # buffered, `data` is one whole Unsequenced Data packet within the limit (a
        # client's packets always include that type).
        decoder = self._decoder
        n = len(data) - 2
        if (
            decoder._pos != len(decoder._buf)
            or n < 1
            or n > decoder._max
            or data[2] != _UNSEQUENCED
            or (data[0] << 8 | data[1]) != n
        ):
            return None
        decoder._base += decoder._pos + len(data)
        decoder._buf = b""
        decoder._pos = 0
        self._last_received = now
        return data[3:]

    def _decode(self, decoder: PacketDecoder, events: list[Event]) -> None:
        while (packet := decoder.next_packet()) is not None:
            self._packet(packet, decoder.offset, events)

    def _packet(self, packet: Packet, offset: int, events: list[Event]) -> None:
        ptype = packet.packet_type
        allowed = self._rx
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
                self._peer_timeout = packet.heartbeat_timeout_ms / 1000
        self._enter(allowed[ptype])
        events.append(packet)


#: Deprecated: the 0.1 name of `ServerConnectionState`.
ServerSession = ServerConnectionState
