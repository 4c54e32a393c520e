"""One client connection's machinery: the asyncio callbacks, the writes, the close.

Layer 3 (server driver). A `ServerProtocol` drives a sans-IO `ServerSession` and is a cursor
into the `Stream` it follows (it is that stream's `Follower`). The application sees it only
through its `Connection`. Login (`_login`), the replay pump (`_replay`) and the unsequenced
inbox (`_inbox`) are its parts, and its clocks (`_timers`: the one lazy timer, the read
budget of bytes nobody consumes); they call it back through the methods below.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from inspect import isawaitable
from typing import Final, cast

from .._errors import RejectReason, SoupBinTCPError
from .._session._server import ServerSession, ServerState
from .._wire._framing import Dialect
from .._wire._packets import LoginRequest, LogoutRequest, UnsequencedData
from ._auth import normalize_username
from ._connection import Connection
from ._context import ServerContext
from ._events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionFields,
    ConnectionRefused,
    EndOfSessionSent,
    HandlerFailed,
    LoggedIn,
    LoggedOut,
    LoginRejectedSent,
    ProtocolViolation,
    protocol_fault,
    refusal_cap,
)
from ._inbox import Inbox
from ._login import Login
from ._replay import Replay
from ._stream import Stream
from ._timers import ConnectionTimer, NoiseBudget

__all__ = ["ServerProtocol"]

log = logging.getLogger("soupbintcp.server")

# What a client may send before it is logged in: a Login Request (49 or 54 bytes) and a few
# heartbeats or Debug packets while it waits for the answer. Past that it is closed: two
# connections that never logged in had pushed 25 GB of Debug packets in 20 s (issue 15).
_PRELOGIN_BYTES: Final = 4096


class ServerProtocol(asyncio.Protocol):
    """One client connection, from accept to close."""

    __slots__ = ("_admitted", "_ctx", "_holds", "_noise", "_received", "bytes_sent",
                 "close_reason", "closed", "config", "connection", "events", "first_sequence",
                 "id", "inbox", "login", "loop", "opened", "paused", "replay", "session",
                 "session_id", "stream", "timer", "transport")  # fmt: skip

    def __init__(self, ctx: ServerContext, *, admitted: bool = False) -> None:
        config = ctx.config
        loop = ctx.loop
        self._ctx = ctx
        self.config = config
        self.loop = loop
        self._admitted = admitted  # counted against the caps already (TLS, at TCP accept)
        #: This connection's number (events and metrics name it so), and its accept time.
        self.id = ctx.connection_id()
        self.events = ctx.events
        self.opened = loop.time()
        self.session = ServerSession(
            self.opened,
            heartbeat_interval=config.heartbeat_interval,
            client_heartbeat_timeout=config.client_heartbeat_timeout,
            login_timeout=config.login_timeout,
            dialect=config.dialect,
            max_packet_length=config.max_packet_length,
        )
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set at once
        #: What the application sees of this connection.
        self.connection = Connection(self)
        self.stream: Stream | None = None
        self.session_id = ""
        self.first_sequence = 0
        self.bytes_sent = 0
        self.closed = False
        self.close_reason: str | None = None
        self.paused = False  # writes paused: the transport's buffer is over high water
        #: The one lazy timer (heartbeats, timeouts, stall, end-of-session linger).
        self.timer = ConnectionTimer(self)
        self.login: Login | None = None
        handler = config.on_unsequenced
        self.inbox = (
            Inbox(self, handler, loop, ctx.workers, ctx.inboxes) if handler is not None else None
        )
        self._received = 0  # bytes, until login
        self._holds: set[str] = set()  # why reading is paused (the inbox, the noise budget)
        self._noise = NoiseBudget(self, self.opened)
        self.replay = Replay(self, loop, config.replay_chunk)

    # --- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not derive from asyncio's.
        self.transport = transport = cast(asyncio.Transport, transport)
        conn = self.connection
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            conn.address = (str(peer[0]), int(peer[1]))
        refusal = self._ctx.admission.admit(self, checked=self._admitted)
        if refusal is not None:
            self.closed = True
            transport.abort()
            cap = refusal_cap(refusal)
            self.events.emit(ConnectionRefused(peer=conn.address, cap=cap, detail=refusal))
            return
        self.events.emit(ConnectionAccepted(connection=self.id, peer=conn.address))
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        high = self.config.write_buffer_high
        transport.set_write_buffer_limits(high=high, low=high // 4)
        self.timer.schedule()

    def data_received(self, data: bytes) -> None:
        # Never called once closed: closing the transport stops reading at once.
        if self.connection.login_time is None:
            self._received += len(data)
            if self._received > _PRELOGIN_BYTES:
                self.close(
                    "prelogin_limit",
                    f"sent {self._received} bytes before logging in (at most {_PRELOGIN_BYTES})",
                    logging.WARNING,
                    abort=True,
                )
                return
        stream = self.stream
        if stream is None:
            self._handle(data)
            return
        # What the handlers publish on this connection's stream goes out when this call
        # ends, not one loop iteration later (issue 22: the round trip's answer).
        # `Stream.hold` and `release`, inlined: two calls of the round trip's ~15.
        stream._held += 1
        try:
            inbox = self.inbox
            if inbox is not None:
                # The usual request: exactly one Unsequenced Data packet.
                payload = self.session.receive_one_unsequenced(data, self.loop.time())
                if payload is not None:
                    if inbox.idle:
                        # `inbox.put`'s usual case, inlined: the handler runs at once.
                        try:
                            result = inbox.handler(self.connection, payload)
                        except Exception:
                            self.handler_failed("on_unsequenced")
                            return
                        if result is not None and isawaitable(result):
                            inbox.start(result)
                    else:
                        inbox.put(payload)
                    return
            self._handle(data)
        finally:
            stream._held -= 1
            if stream._due and not stream._held:
                stream._due = False
                stream.deliver()

    def _handle(self, data: bytes) -> None:
        """The bytes received, through the session's general path."""
        session = self.session
        try:
            events = session.receive_data(data, self.loop.time())
        except SoupBinTCPError as exc:
            self.protocol_error(exc)
            return
        if session.error is not None:
            # The packets before the fault are dropped with the connection: a Login Request
            # among them can no longer be answered, and unsequenced data is best effort.
            self.protocol_error(session.error)
            return
        inbox = self.inbox
        noise = len(data)
        for event in events:
            kind = type(event)
            if kind is UnsequencedData:
                if inbox is not None:
                    payload: bytes = event.data  # type: ignore[union-attr]
                    noise -= len(payload) + 3
                    inbox.put(payload)
            elif kind is LoginRequest:
                self.login = Login(self, self._ctx, event)  # type: ignore[arg-type]
                self.login.start()
            elif kind is LogoutRequest:
                self.events.emit(LoggedOut(**self.about()))
                self.close("logout", "logged out", logging.INFO)
            # Client Heartbeat and Debug only prove the client is alive.
            if self.closed:
                return
        if noise > 0:
            self._noise.spend(noise)

    def eof_received(self) -> bool | None:
        return None  # the client is done sending: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        partial = self.session.buffered
        if partial:
            self.close(
                "truncated_packet",
                f"closed by the client in the middle of a packet ({partial} bytes of it)",
                logging.WARNING,
            )
        elif exc is not None:
            self.close("connection_lost", f"connection lost: {exc}", logging.INFO)
        elif self.session.state is ServerState.ENDED:
            self.close("end_of_session", "end of session, closed by the client", logging.INFO)
        else:
            self.close("closed_by_client", "closed by the client", logging.INFO)

    def pause_writing(self) -> None:
        self.paused = True
        self.timer.writes_paused(self.loop.time())
        stream = self.stream
        if stream is not None:
            stream.leave_live(self)
        if self.config.stall_timeout is not None and not self.closed:
            self.timer.schedule()

    def resume_writing(self) -> None:
        self.paused = False
        self.timer.writes_paused(None)
        if self.stream is not None and self.session.state is ServerState.LOGGED_IN:
            # Not from inside the transport's own callback: one loop turn later.
            self.replay.schedule()

    # --- for the parts: login, replay, inbox, stream ---------------------------------------

    def writable(self) -> bool:
        return not (self.closed or self.paused)

    def write(self, out: bytes) -> None:
        """Write a packet the session made (not on the fan-out path: that writes itself)."""
        self.transport.write(out)
        self.bytes_sent += len(out)

    def accept_login(
        self, username: str, session_id: str, stream: Stream, sequence: int, requested: int
    ) -> None:
        """Login Accepted: follow `stream` from `sequence` on (the client asked for
        `requested`)."""
        self.write(self.session.accept(session_id, sequence, self.loop.time()))
        conn = self.connection
        conn.username = username
        conn.login_time = time.time()
        self.session_id = session_id
        self.stream = stream
        self.first_sequence = sequence
        self._ctx.admission.logged_in(self)
        if self.inbox is not None:
            self.inbox.logged_in(normalize_username(username))
        stream.follow(self)
        self.events.emit(
            LoggedIn(**self.about(), session=session_id, requested_sequence=requested,
                     sequence=sequence, head=stream.head)
        )  # fmt: skip
        self.timer.schedule()
        self.replay.run()

    def reject_login(self, reason: RejectReason, detail: str) -> None:
        self.write(self.session.reject(reason, self.loop.time()))
        self.events.emit(LoginRejectedSent(**self.about(), reason=reason, detail=detail))
        self.close(
            "login_rejected", f"login rejected: {detail} ({reason.value!r})", logging.WARNING
        )

    def catch_up(self) -> None:
        self.replay.schedule()

    def end_of_session(self) -> None:
        if self.closed or self.session.state is not ServerState.LOGGED_IN:
            return
        if self.config.dialect is Dialect.OMEGA:  # no End of Session packet in that dialect
            self.close("end_of_session", "end of session", logging.INFO)
            return
        now = self.loop.time()
        self.write(self.session.end_session(now))
        self.events.emit(
            EndOfSessionSent(**self.about(), session=self.session_id,
                             sequence=self.session.next_sequence)
        )  # fmt: skip
        transport = self.transport
        if transport.can_write_eof():
            # Half-close: the client sees Z then EOF, and can still say goodbye; closing
            # outright could reset the connection under a heartbeat in flight and lose Z.
            transport.write_eof()
        self.timer.end_by(now, self.config.end_of_session_linger)
        self.timer.schedule()

    def pause_reading(self, why: str) -> None:
        """Stop reading from the client (the inbox is full, or the noise budget spent) until
        every reason is gone. Its heartbeats wait in the socket with the rest, so its
        heartbeat clock stops too."""
        holds = self._holds
        if not holds and not self.closed:
            self.transport.pause_reading()
            self.session.reading_paused(self.loop.time())
        holds.add(why)

    def resume_reading(self, why: str) -> None:
        holds = self._holds
        holds.discard(why)
        if not holds and not self.closed:
            self.transport.resume_reading()
            self.session.reading_resumed(self.loop.time())
            self.timer.schedule()  # the client's timeout runs again, from now

    def evict(self, reason: str) -> None:
        """Closed to make room for a newer connection (see `Admission`)."""
        self.close("evicted", reason, logging.WARNING, abort=True)

    def handler_failed(self, what: str) -> None:
        # The application's bug, not the client's: its traceback matters.
        error = sys.exc_info()[1]
        assert error is not None  # called from an except block
        inbox, stream = self.inbox, self.stream
        # Once the session ended the client is owed the rest and End of Session, which an
        # abort would drop from the write buffer (answering a late request raises then).
        ended = inbox is not None and stream is not None and stream.ended and not self.closed
        self.events.emit(HandlerFailed(**self.about(), what=what, error=error, session_ended=ended))
        if inbox is not None:
            inbox.clear(drop_from_now=ended)  # then it finishes as after End of Session
        if not ended:
            self.close("handler_failed", f"{what} raised", logging.WARNING, abort=True)

    # --- closing ---------------------------------------------------------------------------

    def protocol_error(self, exc: SoupBinTCPError) -> None:
        detail = _redact(str(exc))
        kind = protocol_fault(detail)
        self.events.emit(ProtocolViolation(**self.about(), kind=kind, detail=detail))
        self.close("protocol_error", f"protocol error: {detail}", logging.WARNING, abort=True)

    def close(self, reason: str, detail: str, level: int, *, abort: bool = False) -> None:
        """Close once, and say why in one event (and so one log line) with the connection's
        figures: `reason` is one of `CONNECTION_CLOSED_REASONS`, `detail` says it for a person."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = detail
        if self.stream is not None:
            self.stream.unfollow(self)
        self.timer.cancel()
        self.replay.cancel()
        self._noise.cancel()
        if self.inbox is not None:
            self.inbox.closed()
        if self.login is not None:
            self.login.cancel()
            self.login = None
        self._ctx.admission.forget(self)
        self.session.connection_lost()
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()
        self.events.emit(self._closed_event(reason, detail, level))

    def about(self) -> ConnectionFields:
        """The fields every event of this connection has."""
        conn = self.connection
        return {"connection": self.id, "peer": conn.address, "user": conn.username}

    def _closed_event(self, reason: str, detail: str, level: int) -> ConnectionClosed:
        conn = self.connection
        up = self.loop.time() - self.opened
        if conn.login_time is None:
            return ConnectionClosed(**self.about(), reason=reason, detail=detail,
                                    logged_in=False, up=up, level=level)  # fmt: skip
        return ConnectionClosed(
            **self.about(), reason=reason, detail=detail, logged_in=True,
            session=self.session_id, messages_sent=conn.messages_sent,
            bytes_sent=self.bytes_sent, next_sequence=conn.next_sequence, lag=conn.lag, up=up,
            level=level,
        )  # fmt: skip


def _redact(message: str) -> str:
    # A malformed password field would be quoted in the error: never let it reach a log.
    head, sep, _ = message.partition("password")
    return f"{head}password field malformed (value withheld)" if sep else message
