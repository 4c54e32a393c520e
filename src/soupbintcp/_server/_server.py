"""The asyncio SoupBinTCP server: connections as cursors into a message store.

Layer 3 (drivers). Each connection drives a sans-IO `ServerSession` and is a cursor into the
`Stream` it follows: a `MessageStore` plus the connections reading it. Everything hangs on
one rule, "one number, one message": a message goes to clients only once the store holds it
durably (`durable_count`), and every client reads the same store, so sequence number n means
the same message to everyone, across reconnects and server restarts.

How bytes move:

- Live fan-out. `publish` encodes a message once, appends the frame to the store and, once
  it is durable, writes the same bytes object to every connection that is caught up and not
  paused (`Stream._live`). Publishes made within one turn of the event loop are joined and
  written once per connection.
- The pump. Any other connection (replaying history, or paused by a slow reader) catches up
  on its own: `read_frames(cursor, chunk)` is written straight to the transport while the
  transport's write buffer is below its high-water mark (`pause_writing` / `resume_writing`),
  so replay runs in bounded memory however long the history. Once the cursor reaches the
  head of the stream the connection joins the live set again.
- The store is every slow client's buffer: no queue grows with a client's lag. A client
  whose writes stay paused longer than `stall_timeout` is disconnected.
- Timers are lazy: one `call_at` per connection, rescheduled when it fires (heartbeats,
  the client's heartbeat timeout, the login timeout, the stall timeout), never per write.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import ssl as _ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from typing import Any, Final, Self, cast

from .._errors import LocalProtocolError, RejectReason, SessionTimeout, SoupBinTCPError
from .._session._server import ServerSession, ServerState
from .._wire._framing import Dialect
from .._wire._packets import (
    LoginAccepted,
    LoginRequest,
    LogoutRequest,
    UnsequencedData,
    sequenced_frame,
    sequenced_frames,
)
from ..store import MessageStore
from ._auth import Authenticate, Credentials, normalize_username

__all__ = [
    "Authenticate",
    "Connection",
    "OnUnsequenced",
    "Server",
    "Stream",
    "UserStoreFactory",
    "serve",
]

log = logging.getLogger("soupbintcp.server")

Address = tuple[str, int]
#: `on_unsequenced(connection, data)`: called with each Unsequenced Data packet a logged-in
#: client sends, in order per connection. May be a coroutine function.
OnUnsequenced = Callable[["Connection", bytes], Awaitable[None] | None]
#: `user_store(username) -> MessageStore`: the store of one user's stream (per-user mode).
UserStoreFactory = Callable[[str], MessageStore]

_DEFAULT_WRITE_BUFFER_HIGH: Final = 256 * 1024
_DEFAULT_REPLAY_CHUNK: Final = 64 * 1024
# Chunks one pump step writes before yielding to the loop, so a fast reader catching up on
# a long history does not starve the other connections.
_PUMP_CHUNKS: Final = 16
# Unsequenced messages waiting for a slow handler before we stop reading from that client.
_INBOX_HIGH: Final = 1024
_INBOX_LOW: Final = 256
# A lazily rescheduled timer that fired a hair early must not spin.
_TIMER_SLACK: Final = 0.001


def _check_session_id(session_id: str) -> str:
    if not session_id:
        raise ValueError("a session id is needed: 1 to 10 alphanumeric characters")
    LoginAccepted(session_id, 1).encode()  # raises LocalProtocolError if it cannot go on the wire
    return session_id


# --- streams -----------------------------------------------------------------------------------


class Stream:
    """One sequenced stream of the current session: a store numbered from 1, and the
    connections following it.

    The shared feed is one stream that every client follows (ITCH style); with per-user
    streams each username has its own (OUCH style), created from the server's `user_store`
    factory the first time it is needed and kept across reconnects for the whole session.

    `publish` appends to the store and returns the sequence number; the message goes to the
    clients once the store holds it durably, at the end of the current turn of the event
    loop (with `Durability.TIMER`, after the next flush, at most `flush_interval` later).
    Call it from the event loop's thread.
    """

    __slots__ = (
        "_counts",
        "_deliver_handle",
        "_ended",
        "_flush_handle",
        "_followers",
        "_live",
        "_loop",
        "_owned",
        "_pending",
        "_pending_bytes",
        "_pending_total",
        "_refuse",
        "_server",
        "head",
        "store",
        "user",
    )

    def __init__(
        self, server: Server, store: MessageStore, user: str | None, *, owned: bool
    ) -> None:
        self._server = server
        self._loop = server._loop
        self.store = store
        #: The username of a per-user stream (normalized: lower case), None for the feed.
        self.user = user
        self._owned = owned  # the server made the store and closes it
        #: The last sequence number released to clients (held durably by the store).
        self.head = store.durable_count
        # Frames published, not yet written to the live connections: sequence numbers
        # head + 1 .. head + _pending_total, in entries of _counts[i] messages each.
        self._pending: list[bytes] = []
        self._counts: list[int] = []
        self._pending_total = 0
        self._pending_bytes = 0
        self._live: dict[Connection, None] = {}  # caught up and writable: fan-out targets
        self._followers: dict[Connection, None] = {}  # every logged-in connection on it
        self._deliver_handle: asyncio.Handle | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._ended = False
        self._refuse: str | None = None  # why publishing is refused, if it is

    def __repr__(self) -> str:
        name = "feed" if self.user is None else f"user {self.user!r}"
        return f"<Stream {name} head={self.head} connections={len(self._followers)}>"

    @property
    def ended(self) -> bool:
        """Whether End of Session was sent: nothing more can be published."""
        return self._ended

    @property
    def connections(self) -> list[Connection]:
        """The logged-in connections following this stream."""
        return list(self._followers)

    # --- publishing ----------------------------------------------------------------------

    def _refuse_empty(self, messages: list[bytes]) -> None:
        if self._server._dialect is Dialect.OMEGA and not all(messages):
            # There an empty message means "no more messages": clients would not count it.
            raise LocalProtocolError("the Omega dialect cannot carry an empty message")

    def publish(self, data: bytes) -> int:
        """Append one message; return its sequence number."""
        if self._refuse is not None:
            raise LocalProtocolError(self._refuse)
        if not data:
            self._refuse_empty([data])
        frame = sequenced_frame(data)
        seq = self.store.append_frames(frame, 1)
        self._appended(frame, 1, seq)
        return seq

    def publish_many(self, messages: Iterable[bytes]) -> int:
        """Append messages in order; return the sequence number of the first one (or the
        next number if there are none)."""
        if self._refuse is not None:
            raise LocalProtocolError(self._refuse)
        if self._server._dialect is Dialect.OMEGA:
            messages = list(messages)
            self._refuse_empty(messages)
        frames, count = sequenced_frames(messages)
        if not count:
            return self.store.count + 1
        seq = self.store.append_frames(frames, count)
        self._appended(frames, count, seq)
        return seq

    def publish_frames(self, frames: bytes, count: int) -> int:
        """Append `count` messages already encoded as Sequenced Data frames (2-byte length,
        b"S", payload, back to back); return the first sequence number."""
        if self._refuse is not None:
            raise LocalProtocolError(self._refuse)
        if not count:
            return self.store.count + 1
        seq = self.store.append_frames(frames, count)
        self._appended(frames, count, seq)
        return seq

    def _appended(self, frames: bytes, count: int, seq: int) -> None:
        # Keep the encoded frames for the fan-out only while they line up with the head and
        # stay small; otherwise the live connections will read them back from the store.
        if (
            self._live
            and seq == self.head + self._pending_total + 1
            and self._pending_bytes + len(frames) <= self._server._max_fanout
        ):
            self._pending.append(frames)
            self._counts.append(count)
            self._pending_total += count
            self._pending_bytes += len(frames)
        elif self._pending:
            self._drop_pending()
        store = self.store
        durable = store.durable_count
        if durable > self.head and self._deliver_handle is None:
            self._deliver_handle = self._loop.call_soon(self._deliver_soon)
        if durable < store.count and self._flush_handle is None:
            self._flush_handle = self._loop.call_later(
                self._server._flush_interval, self._flush_soon
            )

    # --- delivering ----------------------------------------------------------------------

    def _drop_pending(self) -> None:
        self._pending.clear()
        self._counts.clear()
        self._pending_total = 0
        self._pending_bytes = 0

    def _deliver_soon(self) -> None:
        self._deliver_handle = None
        self._deliver()

    def _flush_soon(self) -> None:
        self._flush_handle = None
        try:
            self.store.flush()
        except Exception:
            log.exception("flushing the store of %r failed; retrying", self)
            self._flush_handle = self._loop.call_later(
                self._server._flush_interval, self._flush_soon
            )
            return
        self._deliver()

    def _deliver(self) -> None:
        """Release what the store now holds durably: to the live connections from the
        pending frames, or by sending them back to the store."""
        durable = self.store.durable_count
        head = self.head
        if durable <= head:
            return
        counts = self._counts
        if counts:
            take = total = 0
            while take < len(counts) and head + total + counts[take] <= durable:
                total += counts[take]
                take += 1
            if take:
                pending = self._pending
                data = pending[0] if take == 1 else b"".join(pending[:take])
                del pending[:take]
                del counts[:take]
                self._pending_total -= total
                self._pending_bytes -= len(data)
                head += total
                self.head = head
                self._fan_out(data, total)
        if head < durable:
            # Durable beyond the frames we hold: the live connections read from the store.
            self.head = durable
            self._drop_pending()
            self._unlive_all()

    def _fan_out(self, data: bytes, count: int) -> None:
        live = self._live
        if not live:
            return
        now = self._loop.time()
        size = len(data)
        # A copy: pause_writing, called from inside write(), takes a connection out of _live.
        for conn in tuple(live):
            conn._transport.write(data)
            conn._session.sequenced_sent(count, now)
            conn.bytes_sent += size

    def _unlive_all(self) -> None:
        live = self._live
        if live:
            conns = tuple(live)
            live.clear()
            for conn in conns:
                conn._schedule_pump()

    def _flush_now(self) -> None:
        """Make everything published durable and release it."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self.store.durable_count < self.store.count:
            self.store.flush()
        self._deliver()

    def _end(self) -> None:
        """End of Session: to the caught-up connections now, to the others once caught up."""
        self._ended = True
        self._refuse = "the session has ended: start_session() a new one to publish"
        if self._deliver_handle is not None:
            self._deliver_handle.cancel()
            self._deliver_handle = None
        live = tuple(self._live)
        self._live.clear()
        for conn in live:
            conn._end_of_session()

    def _shutdown(self) -> None:
        self._refuse = "the server is closed"
        for handle in (self._deliver_handle, self._flush_handle):
            if handle is not None:
                handle.cancel()
        self._deliver_handle = self._flush_handle = None
        self._live.clear()
        self._drop_pending()


class _Session:
    """A SoupBinTCP session as the server runs it: its id and its streams."""

    __slots__ = ("ended", "id", "shared", "user_store", "users")

    def __init__(
        self, session_id: str, shared: Stream | None, user_store: UserStoreFactory | None
    ) -> None:
        self.id = session_id
        self.shared = shared
        self.user_store = user_store
        self.users: dict[str, Stream] = {}
        self.ended = False

    def streams(self) -> list[Stream]:
        out = list(self.users.values())
        if self.shared is not None:
            out.append(self.shared)
        return out


# --- connections -------------------------------------------------------------------------------


class _Protocol(asyncio.Protocol):
    """Plugs a `Connection` into the event loop (the asyncio callbacks stay off its API)."""

    __slots__ = ("_conn",)

    def __init__(self, server: Server, *, admitted: bool = False) -> None:
        self._conn = Connection(server, admitted=admitted)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports do not derive from asyncio's.
        self._conn._made(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self._conn._data_received(data)

    def eof_received(self) -> bool | None:
        return None  # the client is done sending: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn._lost(exc)

    def pause_writing(self) -> None:
        self._conn._pause_writing()

    def resume_writing(self) -> None:
        self._conn._resume_writing()


class Connection:
    """One client connection, from accept to close.

    Handed to `on_unsequenced` and listed by `Server.connections`. Its figures (`username`,
    `address`, `login_time`, `messages_sent`, `bytes_sent`, `next_sequence`, `lag`) are read
    on demand; the server logs them in one line when the connection closes.
    """

    __slots__ = (
        "_admitted",
        "_closed",
        "_end_deadline",
        "_first_sequence",
        "_inbox",
        "_login_task",
        "_loop",
        "_opened",
        "_paused",
        "_paused_since",
        "_pump_handle",
        "_reading_paused",
        "_server",
        "_session",
        "_session_id",
        "_stream",
        "_timer",
        "_transport",
        "_worker",
        "address",
        "bytes_sent",
        "login_time",
        "unsequenced_dropped",
        "username",
    )

    def __init__(self, server: Server, *, admitted: bool = False) -> None:
        self._server = server
        self._loop = server._loop
        self._admitted = admitted  # counted against the caps already (TLS, at TCP accept)
        self._opened = self._loop.time()
        self._session = ServerSession(
            self._opened,
            heartbeat_interval=server._heartbeat_interval,
            client_heartbeat_timeout=server._client_heartbeat_timeout,
            login_timeout=server._login_timeout,
            dialect=server._dialect,
            max_packet_length=server._max_packet_length,
        )
        self._transport: asyncio.Transport = None  # type: ignore[assignment]  # set at once
        self._stream: Stream | None = None
        self._session_id = ""
        self._closed = False
        self._paused = False
        self._paused_since: float | None = None
        self._reading_paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._pump_handle: asyncio.Handle | None = None
        self._end_deadline: float | None = None
        self._login_task: asyncio.Task[None] | None = None
        self._inbox: deque[bytes] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._first_sequence = 0
        #: (host, port) of the client.
        self.address: Address = ("", 0)
        #: The username: as configured in `credentials`, else as the client sent it; before
        #: login, the one it asked for ("" until its Login Request arrives).
        self.username = ""
        #: Wall-clock time (`time.time()`) of the Login Accepted, None before.
        self.login_time: float | None = None
        #: Bytes written to this connection (every packet).
        self.bytes_sent = 0
        #: Unsequenced Data dropped because the client was not reading (best effort).
        self.unsequenced_dropped = 0

    def __repr__(self) -> str:
        host, port = self.address
        return f"<Connection {host}:{port} user={self.username!r} {self._session.state.value}>"

    # --- figures -------------------------------------------------------------------------

    @property
    def state(self) -> ServerState:
        return self._session.state

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def logged_in(self) -> bool:
        return self.login_time is not None

    @property
    def session_id(self) -> str:
        """The session logged into ("" before login)."""
        return self._session_id

    @property
    def stream(self) -> Stream | None:
        """The stream this connection follows (None before login)."""
        return self._stream

    @property
    def next_sequence(self) -> int:
        """Sequence number of the next Sequenced Data this connection will send."""
        return self._session.next_sequence

    @property
    def messages_sent(self) -> int:
        """Sequenced messages sent on this connection."""
        return self._session.next_sequence - self._first_sequence if self._first_sequence else 0

    @property
    def lag(self) -> int:
        """Messages the store holds durably that this connection has not sent yet."""
        stream = self._stream
        if stream is None:
            return 0
        return max(0, stream.store.durable_count - self._session.next_sequence + 1)

    @property
    def paused(self) -> bool:
        """Whether the transport's write buffer is over its high-water mark."""
        return self._paused

    @property
    def write_buffer_size(self) -> int:
        """Bytes written to the transport and not yet sent to the client."""
        return _buffered(self._transport) if self._transport is not None else 0

    # --- API -----------------------------------------------------------------------------

    def send_unseq_data(self, data: bytes) -> None:
        """Send an Unsequenced Data packet to this client alone.

        Best effort, as the protocol says: dropped (and counted in `unsequenced_dropped`)
        if the connection is closed, ended or not reading.
        """
        session = self._session
        if self._closed or session.state is not ServerState.LOGGED_IN:
            self.unsequenced_dropped += 1
            return
        if self._transport.get_write_buffer_size() > self._server._unsequenced_limit:
            self.unsequenced_dropped += 1
            return
        out = session.send_unsequenced(data, self._loop.time())
        self._transport.write(out)
        self.bytes_sent += len(out)

    def publish(self, data: bytes) -> int:
        """Publish a message into the stream this connection follows: the user's own
        stream with per-user streams (it reaches the user on every connection, now or at
        the next login), the shared feed otherwise. Returns the sequence number."""
        stream = self._stream
        if stream is None:
            raise LocalProtocolError("cannot publish for a connection that is not logged in")
        return stream.publish(data)

    def publish_many(self, messages: Iterable[bytes]) -> int:
        """`publish` for several messages; returns the first sequence number."""
        stream = self._stream
        if stream is None:
            raise LocalProtocolError("cannot publish for a connection that is not logged in")
        return stream.publish_many(messages)

    def close(self) -> None:
        """Close this connection (what was written still goes out)."""
        self._close("closed by the server application", logging.INFO)

    # --- transport callbacks -------------------------------------------------------------

    def _made(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.address = (str(peer[0]), int(peer[1]))
        server = self._server
        refusal = server._admission(self, checked=self._admitted)
        if refusal is not None:
            self._closed = True
            transport.abort()
            host, port = self.address
            log.warning("connection %s:%s refused: %s", host, port, refusal)
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        high = server._write_buffer_high
        transport.set_write_buffer_limits(high=high, low=high // 4)
        self._schedule_timer()

    def _data_received(self, data: bytes) -> None:
        # Never called once closed: closing the transport stops reading at once.
        session = self._session
        try:
            events = session.receive_data(data, self._loop.time())
        except SoupBinTCPError as exc:
            self._protocol_error(exc)
            return
        if session.error is not None:
            # The packets before the fault are dropped with the connection: a Login Request
            # among them can no longer be answered, and unsequenced data is best effort.
            self._protocol_error(session.error)
            return
        for event in events:
            kind = type(event)
            if kind is UnsequencedData:
                self._unsequenced(event.data)  # type: ignore[union-attr]
            elif kind is LoginRequest:
                self._login(event)  # type: ignore[arg-type]
            elif kind is LogoutRequest:
                self._close("logged out", logging.INFO)
            # Client Heartbeat and Debug only prove the client is alive.
            if self._closed:
                return

    def _lost(self, exc: Exception | None) -> None:
        if self._closed:
            return
        partial = _unfinished(self._session)
        if partial:
            self._close(
                f"closed by the client in the middle of a packet ({partial} bytes of it)",
                logging.WARNING,
            )
        elif exc is not None:
            self._close(f"connection lost: {exc}", logging.INFO)
        elif self._session.state is ServerState.ENDED:
            self._close("end of session, closed by the client", logging.INFO)
        else:
            self._close("closed by the client", logging.INFO)

    def _pause_writing(self) -> None:
        self._paused = True
        self._paused_since = self._loop.time()
        stream = self._stream
        if stream is not None:
            stream._live.pop(self, None)
        if self._server._stall_timeout is not None and not self._closed:
            self._schedule_timer()

    def _resume_writing(self) -> None:
        self._paused = False
        self._paused_since = None
        if self._stream is not None and self._session.state is ServerState.LOGGED_IN:
            # Not from inside the transport's own callback: one loop turn later.
            self._schedule_pump()

    # --- login ---------------------------------------------------------------------------

    def _login(self, request: LoginRequest) -> None:
        self.username = request.username
        server = self._server
        try:
            if server._credentials is not None:
                # The configured spelling of the username, or None.
                self._decided(
                    request, server._credentials.check(request.username, request.password)
                )
                return
            assert server._authenticate is not None
            verdict = server._authenticate(
                request.username, request.password, request.session, request.sequence
            )
        except Exception:
            self._handler_failed("authenticate")
            return
        if inspect.isawaitable(verdict):
            self._login_task = self._loop.create_task(self._login_later(request, verdict))
        else:
            self._decided(request, request.username if verdict else None)

    async def _login_later(self, request: LoginRequest, verdict: Awaitable[bool]) -> None:
        try:
            allowed = await verdict
        except asyncio.CancelledError:
            raise
        except Exception:
            self._handler_failed("authenticate")
            return
        finally:
            self._login_task = None
        self._decided(request, request.username if allowed else None)

    def _decided(self, request: LoginRequest, username: str | None) -> None:
        """Answer the Login Request of a client known as `username` (None: not authorized)."""
        if self._closed:
            return
        if username is None:
            self._reject(RejectReason.NOT_AUTHORIZED, "not authorized")
            return
        server = self._server
        session = server._session
        if request.session and request.session != session.id:
            self._reject(
                RejectReason.SESSION_NOT_AVAILABLE,
                f"session {request.session!r} not available (current session {session.id!r})",
            )
            return
        try:
            stream = server._stream_for_login(session, username)
            stream._deliver()  # the head is now everything durable
        except Exception:
            self._handler_failed("opening the stream (user_store or the store)")
            return
        head = stream.head
        sequence = request.sequence
        if sequence == 0 or sequence > head + 1:
            sequence = head + 1
        now = self._loop.time()
        out = self._session.accept(session.id, sequence, now)
        self._transport.write(out)
        self.bytes_sent += len(out)
        self.username = username
        self._session_id = session.id
        self._stream = stream
        self._first_sequence = sequence
        self.login_time = time.time()
        server._pending_logins -= 1
        stream._followers[self] = None
        if log.isEnabledFor(logging.INFO):
            host, port = self.address
            log.info(
                "connection %s:%s logged in as %s to session %s at sequence %d (head %d)",
                host,
                port,
                username,
                session.id,
                sequence,
                head,
            )
        self._schedule_timer()
        self._pump()

    def _reject(self, reason: RejectReason, detail: str) -> None:
        out = self._session.reject(reason, self._loop.time())
        self._transport.write(out)
        self.bytes_sent += len(out)
        self._close(f"login rejected: {detail} ({reason.value!r})", logging.WARNING)

    # --- sending sequenced data ----------------------------------------------------------

    def _schedule_pump(self) -> None:
        if self._pump_handle is None and not self._closed:
            self._pump_handle = self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        """Write from the store while the transport takes it; join the live set once
        caught up."""
        self._pump_handle = None
        if not self._writable():
            return
        stream = self._stream
        session = self._session
        if stream is None or session.state is not ServerState.LOGGED_IN:
            return
        stream._deliver()  # nothing released is left unwritten to the live connections
        store = stream.store
        transport = self._transport
        chunk = self._server._replay_chunk
        now = self._loop.time()
        try:
            for _ in range(_PUMP_CHUNKS):
                cursor = session.next_sequence
                if cursor > stream.head:
                    if stream._ended:
                        self._end_of_session()
                    else:
                        stream._live[self] = None
                    return
                data, count = store.read_frames(cursor, chunk)
                transport.write(data)
                session.sequenced_sent(count, now)
                self.bytes_sent += len(data)
                if self._paused:
                    return  # resume_writing pumps again
        except Exception as exc:  # the store failed (closed by its owner, disk error)
            self._close(f"replay failed: {exc!r}", logging.ERROR, abort=True)
            return
        self._pump_handle = self._loop.call_soon(self._pump)

    def _writable(self) -> bool:
        return not (self._closed or self._paused)

    def _end_of_session(self) -> None:
        if self._closed or self._session.state is not ServerState.LOGGED_IN:
            return
        server = self._server
        if server._dialect is Dialect.OMEGA:  # no End of Session packet in that dialect
            self._close("end of session", logging.INFO)
            return
        now = self._loop.time()
        out = self._session.end_session(now)
        transport = self._transport
        transport.write(out)
        self.bytes_sent += len(out)
        if transport.can_write_eof():
            # Half-close: the client sees Z then EOF, and can still say goodbye; closing
            # outright could reset the connection under a heartbeat in flight and lose Z.
            transport.write_eof()
        self._end_deadline = now + server._end_linger
        self._schedule_timer()

    # --- unsequenced data from the client ------------------------------------------------

    def _unsequenced(self, data: bytes) -> None:
        handler = self._server._on_unsequenced
        if handler is None:
            return
        if self._worker is not None:
            # A handler is still awaiting: queue, in order, and stop reading if it falls behind.
            inbox = self._inbox
            inbox.append(data)
            if len(inbox) >= _INBOX_HIGH and not self._reading_paused:
                self._reading_paused = True
                self._transport.pause_reading()
            return
        try:
            result = handler(self, data)
        except Exception:
            self._handler_failed("on_unsequenced")
            return
        if result is not None and inspect.isawaitable(result):
            self._worker = self._loop.create_task(self._work(result))
            self._server._workers.add(self._worker)

    async def _work(self, first: Awaitable[None]) -> None:
        """Await the handler, then run it over what was queued meanwhile, in order. Keeps
        going if the connection closes: the client sent those messages."""
        handler = self._server._on_unsequenced
        assert handler is not None
        inbox = self._inbox
        try:
            await first
            while inbox:
                data = inbox.popleft()
                if self._reading_paused and len(inbox) <= _INBOX_LOW:
                    self._reading_paused = False
                    if not self._closed:
                        self._transport.resume_reading()
                result = handler(self, data)
                if result is not None and inspect.isawaitable(result):
                    await result
        except asyncio.CancelledError:
            raise
        except Exception:
            self._handler_failed("on_unsequenced")
        finally:
            self._server._workers.discard(asyncio.current_task())
            self._worker = None

    def _handler_failed(self, what: str) -> None:
        # The application's bug, not the client's: its traceback matters.
        log.exception("%s raised for %s; closing that connection", what, self._who())
        self._inbox.clear()
        self._close(f"{what} raised", logging.WARNING, abort=True)

    # --- timers --------------------------------------------------------------------------

    def _schedule_timer(self, earliest: float = 0.0) -> None:
        deadline = self._session.next_timer()
        since = self._paused_since
        stall = self._server._stall_timeout
        if (
            since is not None
            and stall is not None
            and (deadline is None or since + stall < deadline)
        ):
            deadline = since + stall
        end = self._end_deadline
        if end is not None and (deadline is None or end < deadline):
            deadline = end
        if deadline is None:
            return
        deadline = max(deadline, earliest)
        timer = self._timer
        if timer is not None:
            if timer.when() <= deadline:
                return  # it fires first and reschedules itself
            timer.cancel()
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed:
            return
        now = self._loop.time()
        since = self._paused_since
        stall = self._server._stall_timeout
        if since is not None and stall is not None and now >= since + stall:
            self._close(
                f"stalled: the client read nothing for {now - since:.3g} s "
                f"(stall_timeout {stall:g} s), {self.write_buffer_size} bytes waiting",
                logging.WARNING,
                abort=True,
            )
            return
        if self._end_deadline is not None and now >= self._end_deadline:
            self._close("end of session", logging.INFO)
            return
        session = self._session
        if self._reading_paused:
            session.receive_data(b"", now)  # we stopped reading, not the client sending
        try:
            out = session.handle_timer(now)
        except SessionTimeout as exc:
            self._close(str(exc), logging.WARNING, abort=True)
            return
        if out:
            self._transport.write(out)
            self.bytes_sent += len(out)
        self._schedule_timer(now + _TIMER_SLACK)

    # --- closing -------------------------------------------------------------------------

    def _protocol_error(self, exc: SoupBinTCPError) -> None:
        self._close(f"protocol error: {_redact(str(exc))}", logging.WARNING, abort=True)

    def _close(self, reason: str, level: int, *, abort: bool = False) -> None:
        """Close once, and say why in one log line with the connection's figures."""
        if self._closed:
            return
        self._closed = True
        server = self._server
        stream = self._stream
        if stream is not None:
            stream._live.pop(self, None)
            stream._followers.pop(self, None)
        for handle in (self._timer, self._pump_handle):
            if handle is not None:
                handle.cancel()
        self._timer = self._pump_handle = None
        if self._login_task is not None:
            self._login_task.cancel()
            self._login_task = None
        server._forget(self)
        self._session.connection_lost()
        if self._transport is not None:
            if abort:
                self._transport.abort()
            else:
                self._transport.close()
        if log.isEnabledFor(level):
            log.log(level, "%s", self._summary(reason))

    def _who(self) -> str:
        host, port = self.address
        user = f" ({self.username})" if self.username else ""
        return f"{host}:{port}{user}"

    def _summary(self, reason: str) -> str:
        if self.login_time is None:
            return f"connection {self._who()} closed before login: {reason}"
        up = self._loop.time() - self._opened
        return (
            f"connection {self._who()} closed: {reason}; session {self._session_id}, "
            f"{self.messages_sent} messages / {self.bytes_sent} bytes sent, "
            f"next sequence {self.next_sequence}, lag {self.lag}, up {up:.1f} s"
        )


def _buffered(transport: asyncio.WriteTransport) -> int:
    try:
        return transport.get_write_buffer_size()
    except AttributeError:  # a TLS transport whose connection is gone has no buffer
        return 0


def _unfinished(session: ServerSession) -> int:
    """Bytes of an incomplete packet the session holds."""
    return session.buffered


def _redact(message: str) -> str:
    # A malformed password field would be quoted in the error: never let it reach a log.
    head, sep, _ = message.partition("password")
    return f"{head}password field malformed (value withheld)" if sep else message


# --- the server --------------------------------------------------------------------------------


class Server:
    """A running SoupBinTCP server. Create it with `serve()`.

    One session at a time (`session_id`), with either a shared feed (`store`) or per-user
    streams (`user_store`). Publish with `publish` / `publish_many`, end the session with
    `end_session`, start the next with `start_session`, stop with `close` (or `async with`).
    """

    def __init__(
        self,
        *,
        credentials: Credentials | None,
        authenticate: Authenticate | None,
        on_unsequenced: OnUnsequenced | None,
        heartbeat_interval: float,
        client_heartbeat_timeout: float,
        login_timeout: float,
        stall_timeout: float | None,
        flush_interval: float,
        max_connections: int | None,
        max_pending_logins: int | None,
        max_packet_length: int,
        dialect: Dialect,
        write_buffer_high: int,
        replay_chunk: int,
        end_of_session_linger: float,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._session = _Session("", None, None)  # until _install()
        self._credentials = credentials
        self._authenticate = authenticate
        self._on_unsequenced = on_unsequenced
        self._heartbeat_interval = heartbeat_interval
        self._client_heartbeat_timeout = client_heartbeat_timeout
        self._login_timeout = login_timeout
        self._stall_timeout = stall_timeout
        self._flush_interval = flush_interval
        self._max_connections = max_connections
        self._max_pending = max_pending_logins
        self._max_packet_length = max_packet_length
        self._dialect = dialect
        self._write_buffer_high = write_buffer_high
        self._replay_chunk = replay_chunk
        # Fan-out batches bigger than this are read back from the store instead, so no
        # connection's buffer grows past high water by more than one such batch.
        self._max_fanout = max(write_buffer_high, replay_chunk)
        self._unsequenced_limit = 4 * write_buffer_high
        self._end_linger = end_of_session_linger
        self._connections: dict[Connection, None] = {}
        self._pending_logins = 0
        self._workers: set[asyncio.Task[None]] = set()
        self._sessions: list[_Session] = []
        self._server: asyncio.Server | None = None
        # TLS listening (see _listen): our own socket, accept task and handshakes under way.
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()
        self._handshaking = 0
        self._closing = False
        self._closed = self._loop.create_future()

    async def _listen(
        self, host: str | None, port: int, ssl: _ssl.SSLContext | None, backlog: int
    ) -> None:
        if ssl is None:
            self._server = await self._loop.create_server(
                lambda: _Protocol(self), host, port, backlog=backlog
            )
            return
        # TLS: accept here rather than in create_server, whose protocol sees a connection
        # only once its handshake is done. A client that connects and never handshakes must
        # count against the caps and meet the login timeout like any other.
        listener = socket.create_server((host or "", port), backlog=backlog)
        listener.setblocking(False)
        self._listener = listener
        self._accepting = self._loop.create_task(self._accept_tls(listener, ssl))

    async def _accept_tls(self, listener: socket.socket, ssl: _ssl.SSLContext) -> None:
        loop = self._loop
        while not self._closing:
            try:
                sock, peer = await loop.sock_accept(listener)
            except OSError as exc:
                if not self.is_serving:  # the listener was closed under us
                    return
                log.warning("accepting a connection failed: %s", exc)
                await asyncio.sleep(0.05)  # e.g. out of file descriptors: do not spin
                continue
            refusal = self._refusal()
            if refusal is not None:
                sock.close()
                log.warning("connection %s:%s refused: %s", peer[0], peer[1], refusal)
                continue
            self._handshaking += 1
            task = loop.create_task(self._tls_handshake(sock, peer, ssl))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _tls_handshake(
        self, sock: socket.socket, peer: tuple[str, int], ssl: _ssl.SSLContext
    ) -> None:
        try:
            await self._loop.connect_accepted_socket(
                lambda: _Protocol(self, admitted=True),
                sock,
                ssl=ssl,
                ssl_handshake_timeout=self._login_timeout,
            )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            sock.close()
            log.warning("connection %s:%s closed: TLS handshake failed: %s", peer[0], peer[1],
                        exc or type(exc).__name__)  # fmt: skip
        finally:
            self._handshaking -= 1

    def __repr__(self) -> str:
        return (
            f"<Server session={self._session.id!r} connections={len(self._connections)}"
            f"{' closed' if self._closing else ''}>"
        )

    # --- figures -------------------------------------------------------------------------

    @property
    def address(self) -> Address:
        """(host, port) actually bound (the first socket's, if several)."""
        if self._listener is not None:
            name = self._listener.getsockname()
        else:
            assert self._server is not None
            name = self._server.sockets[0].getsockname()
        return (str(name[0]), int(name[1]))

    @property
    def session_id(self) -> str:
        """The current session."""
        return self._session.id

    @property
    def store(self) -> MessageStore:
        """The store of the shared feed (`LocalProtocolError` with per-user streams)."""
        return self.stream().store

    @property
    def session_ended(self) -> bool:
        return self._session.ended

    @property
    def connections(self) -> list[Connection]:
        """Every open connection, logged in or not."""
        return list(self._connections)

    @property
    def queued_bytes(self) -> int:
        """Bytes the server holds for its clients: transport write buffers plus frames
        waiting for the fan-out. Bounded by about `write_buffer_high` plus one chunk per
        connection, whatever the clients' lag."""
        total = sum(conn.write_buffer_size for conn in self._connections)
        for session in self._sessions:
            for stream in session.streams():
                total += stream._pending_bytes
        return total

    @property
    def is_serving(self) -> bool:
        return not self._closing

    # --- streams and publishing ----------------------------------------------------------

    def stream(self, user: str | None = None) -> Stream:
        """The shared feed (`user` None), or `user`'s own stream with per-user streams
        (created from `user_store` if it does not exist yet)."""
        session = self._session
        if user is None:
            if session.shared is None:
                raise LocalProtocolError("this server has per-user streams: name the user")
            return session.shared
        if session.user_store is None:
            raise LocalProtocolError("this server has one shared feed, not per-user streams")
        return self._user_stream(session, user)

    @property
    def streams(self) -> list[Stream]:
        """The streams of the current session (the feed, or every user's created so far)."""
        return self._session.streams()

    def publish(self, data: bytes, *, user: str | None = None) -> int:
        """Append a message to the feed (or to `user`'s stream) and deliver it to every
        logged-in client following it once the store holds it durably. Returns its sequence
        number. Raises `LocalProtocolError` after `end_session()` or `close()`."""
        shared = self._session.shared
        stream = shared if user is None and shared is not None else self.stream(user)
        return stream.publish(data)

    def publish_many(self, messages: Iterable[bytes], *, user: str | None = None) -> int:
        """`publish` for several messages, encoded and appended in one go; returns the first
        sequence number."""
        shared = self._session.shared
        stream = shared if user is None and shared is not None else self.stream(user)
        return stream.publish_many(messages)

    def flush(self) -> None:
        """Flush the stores of the current session now (rather than at the next
        `flush_interval`) and release what they then hold durably to the clients."""
        for stream in self._session.streams():
            stream._flush_now()

    def _user_stream(self, session: _Session, user: str) -> Stream:
        key = normalize_username(user)
        stream = session.users.get(key)
        if stream is None:
            assert session.user_store is not None
            store = session.user_store(key)
            if store.session_id is not None and store.session_id != session.id:
                raise LocalProtocolError(
                    f"the store for user {key!r} records session {store.session_id!r}, "
                    f"not {session.id!r}"
                )
            stream = Stream(self, store, key, owned=True)
            if session.ended or self._closing:
                stream._end()
            session.users[key] = stream
        return stream

    def _stream_for_login(self, session: _Session, username: str) -> Stream:
        if session.shared is not None:
            return session.shared
        return self._user_stream(session, username)

    # --- sessions ------------------------------------------------------------------------

    async def end_session(self) -> None:
        """End the current session: flush the stores, then End of Session to every client
        after all that was published before it. A client still catching up gets Z once it
        has everything; one that logs in to this session again (it stays current until
        `start_session`) gets the rest of its stream and then Z. Publishing is refused from
        now on."""
        session = self._session
        if session.ended:
            return
        streams = session.streams()
        for stream in streams:
            stream._flush_now()
        session.ended = True
        for stream in streams:
            stream._end()
        log.info("session %s ended", session.id)

    async def start_session(
        self,
        session_id: str,
        store: MessageStore | None = None,
        *,
        user_store: UserStoreFactory | None = None,
    ) -> None:
        """Start a new session (new id, new store or per-user factory), ending the current
        one first if needed. Logins for the old session id are then refused with "S";
        connections still catching up on it finish it and get Z. Stores the server made
        (per-user ones) are closed with the server; `store` stays the caller's."""
        if self._closing:
            raise LocalProtocolError("the server is closed")
        session_id = _session_id_for(session_id, store, user_store)
        await self.end_session()
        self._install(session_id, store, user_store)
        log.info("session %s started", session_id)

    def _install(
        self, session_id: str, store: MessageStore | None, user_store: UserStoreFactory | None
    ) -> None:
        session = _Session(session_id, None, user_store)
        if store is not None:
            session.shared = Stream(self, store, None, owned=False)
        self._session = session
        self._sessions.append(session)

    # --- admission and bookkeeping -------------------------------------------------------

    def _refusal(self) -> str | None:
        """Why one more connection may not be served, or None.

        A TLS connection still in its handshake counts as a connection awaiting login."""
        if self._closing:
            return "the server is closing"
        if (
            self._max_connections is not None
            and len(self._connections) + self._handshaking >= self._max_connections
        ):
            return f"too many connections (max_connections {self._max_connections})"
        if (
            self._max_pending is not None
            and self._pending_logins + self._handshaking >= self._max_pending
        ):
            return f"too many connections awaiting login (max_pending_logins {self._max_pending})"
        return None

    def _admission(self, conn: Connection, *, checked: bool = False) -> str | None:
        """Why `conn` may not be served, or None and it is registered. `checked`: the caps
        were applied when TCP accepted it (TLS)."""
        refusal = "the server is closing" if self._closing else None
        if not checked:
            refusal = self._refusal()
        if refusal is not None:
            return refusal
        self._connections[conn] = None
        self._pending_logins += 1
        return None

    def _forget(self, conn: Connection) -> None:
        if conn in self._connections:
            del self._connections[conn]
            if conn.login_time is None:
                self._pending_logins -= 1

    # --- closing -------------------------------------------------------------------------

    async def close(self, timeout: float = 1.0) -> None:
        """Stop listening, close every connection, stop the handlers, flush the stores and
        close those the server made. The `store` passed to `serve` is flushed, not closed.

        Connections get up to `timeout` seconds to send what is already written to them
        (an End of Session, say); those whose clients are not reading are then dropped.
        """
        if self._closing:
            await asyncio.shield(self._closed)
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in (self._accepting, *self._handshakes):
            if task is not None:
                task.cancel()
        if self._listener is not None:
            self._listener.close()
        conns = list(self._connections)
        for conn in conns:
            conn._close("the server is closing", logging.INFO)
        transports = [conn._transport for conn in conns]
        deadline = self._loop.time() + timeout
        while any(map(_buffered, transports)) and self._loop.time() < deadline:
            await asyncio.sleep(0.01)
        for transport in transports:
            transport.abort()  # a no-op for those already closed
        # Not the handler calling close(), if one is.
        workers = [task for task in self._workers if task is not asyncio.current_task()]
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        for session in self._sessions:
            for stream in session.streams():
                stream._shutdown()
                try:
                    if stream._owned:
                        stream.store.close()
                    elif not getattr(stream.store, "closed", False):
                        stream.store.flush()
                except Exception:
                    log.exception("closing the store of %r failed", stream)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if not self._closed.done():
            self._closed.set_result(None)
        log.info("server closed")

    async def wait_closed(self) -> None:
        """Wait until `close()` has finished (from anywhere)."""
        await asyncio.shield(self._closed)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _session_id_for(
    session_id: str | None, store: MessageStore | None, user_store: UserStoreFactory | None
) -> str:
    """The id of a session to serve from `store` or `user_store`: checked, or ValueError."""
    if (store is None) == (user_store is None):
        raise ValueError("give either store= (one shared feed) or user_store= (per-user streams)")
    if store is not None:
        if not isinstance(store, MessageStore):
            raise TypeError(f"store must be a MessageStore, not {type(store).__name__}")
        if session_id is None:
            session_id = store.session_id
        elif store.session_id is not None and store.session_id != session_id:
            raise ValueError(f"the store records session {store.session_id!r}, not {session_id!r}")
    if session_id is None:
        raise ValueError("a session id is needed: 1 to 10 alphanumeric characters")
    return _check_session_id(session_id)


class _Serving:
    """What `serve()` returns: await it for the `Server`, or `async with` it."""

    __slots__ = ("_make", "_server")

    def __init__(self, make: Callable[[], Awaitable[Server]]) -> None:
        self._make = make
        self._server: Server | None = None

    def __await__(self) -> Generator[Any, None, Server]:
        return self._make().__await__()

    async def __aenter__(self) -> Server:
        self._server = await self._make()
        return self._server

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            await self._server.close()


def serve(
    address: Address,
    *,
    store: MessageStore | None = None,
    user_store: UserStoreFactory | None = None,
    session_id: str | None = None,
    credentials: Mapping[str, str] | None = None,
    authenticate: Authenticate | None = None,
    on_unsequenced: OnUnsequenced | None = None,
    heartbeat_interval: float = 1.0,
    client_heartbeat_timeout: float = 15.0,
    login_timeout: float = 30.0,
    stall_timeout: float | None = 30.0,
    flush_interval: float = 0.005,
    max_connections: int | None = None,
    max_pending_logins: int | None = 256,
    max_packet_length: int = 0xFFFF,
    dialect: Dialect = Dialect.SOUPBINTCP,
    ssl: _ssl.SSLContext | None = None,
    backlog: int = 100,
    write_buffer_high: int = _DEFAULT_WRITE_BUFFER_HIGH,
    replay_chunk: int = _DEFAULT_REPLAY_CHUNK,
    end_of_session_linger: float = 5.0,
) -> _Serving:
    """Start a SoupBinTCP server on `address` ((host, port); port 0 picks a free one).

    `server = await serve(...)`, or `async with serve(...) as server:`.

    Streams, one of:
      - `store`: one shared feed that every client follows (ITCH style). The caller owns
        the store (the server flushes it at close but does not close it).
      - `user_store`: per-user streams (OUCH style). `user_store(username)` makes the store
        of a user's own stream the first time that user logs in or is published to
        (`username` lower-cased: usernames are case-insensitive); the stream lives for the
        whole session, across reconnects. Publish into it with `connection.publish(data)`
        (typically from `on_unsequenced`) or `server.publish(data, user=...)`. The server
        closes these stores. E.g. a directory of journals:
        `user_store=lambda user: FileStore(directory / f"{user}.soup", session_id="S1")`.

    `session_id` (1 to 10 alphanumeric characters) defaults to the one `store` records.
    Logins asking for another (non-blank) session are rejected with "S".

    Authentication, one of:
      - `credentials`: {username: password}, compared case-insensitively and in constant
        time. `connection.username` is then the username as configured here.
      - `authenticate(username, password, requested_session, requested_sequence) -> bool`,
        a function or a coroutine function.
    A failed check is answered with Login Rejected "A". Passwords are never logged.

    `on_unsequenced(connection, data)` (function or coroutine function) receives each
    Unsequenced Data packet of a logged-in client, in order per connection (the next call
    waits for the previous one; reading from a client stops while 1024 of its messages wait).
    It answers with `connection.send_unseq_data(...)` or `connection.publish(...)`.
    An exception raised by `on_unsequenced`, `authenticate` or `user_store` is logged with
    its traceback and closes that client's connection alone.

    Timing: `heartbeat_interval` (Server Heartbeat after this long without sending),
    `client_heartbeat_timeout` (close after this long without hearing from a logged-in
    client; a 4.10 Login Request's Heartbeat Timeout wins), `login_timeout` (close without
    a Login Request), `stall_timeout` (close a client whose writes stayed paused this long;
    None: never), `flush_interval` (how often a `Durability.TIMER` store is flushed and its
    messages released), `end_of_session_linger` (close this long after End of Session if the
    client has not).

    Limits: `max_connections`, `max_pending_logins` (connections open but not logged in),
    `max_packet_length` (of client packets); past them the connection alone is closed with
    one warning line. `write_buffer_high` is each transport's high-water mark (low: a
    quarter of it); `replay_chunk` how many bytes of frames one store read gives.
    `ssl`: an `SSLContext` for TLS. `dialect`: `Dialect.OMEGA` serves SoupTCPBinary 1.03
    (no End of Session: connections close instead).
    """
    if credentials is None and authenticate is None:
        raise ValueError(
            "give credentials= or authenticate= (authenticate=lambda *a: True lets everyone in)"
        )
    if credentials is not None and authenticate is not None:
        raise ValueError("give credentials= or authenticate=, not both")
    creds = Credentials(credentials) if credentials is not None else None
    for name, value in (
        ("heartbeat_interval", heartbeat_interval),
        ("client_heartbeat_timeout", client_heartbeat_timeout),
        ("login_timeout", login_timeout),
        ("flush_interval", flush_interval),
    ):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, not {value!r}")
    if stall_timeout is not None and not stall_timeout > 0:
        raise ValueError(f"stall_timeout must be > 0 or None, not {stall_timeout!r}")
    if write_buffer_high < 1 or replay_chunk < 1:
        raise ValueError("write_buffer_high and replay_chunk must be positive")
    if not 1 <= max_packet_length <= 0xFFFF:
        raise ValueError(f"max_packet_length must be 1..65535, not {max_packet_length}")

    sid = _session_id_for(session_id, store, user_store)

    async def make() -> Server:
        server = Server(
            credentials=creds,
            authenticate=authenticate,
            on_unsequenced=on_unsequenced,
            heartbeat_interval=heartbeat_interval,
            client_heartbeat_timeout=client_heartbeat_timeout,
            login_timeout=login_timeout,
            stall_timeout=stall_timeout,
            flush_interval=flush_interval,
            max_connections=max_connections,
            max_pending_logins=max_pending_logins,
            max_packet_length=max_packet_length,
            dialect=dialect,
            write_buffer_high=write_buffer_high,
            replay_chunk=replay_chunk,
            end_of_session_linger=end_of_session_linger,
        )
        server._install(sid, store, user_store)
        await server._listen(address[0], address[1], ssl, backlog)
        host, port = server.address
        log.info(
            "serving session %s on %s:%s (%s)",
            sid,
            host,
            port,
            "shared feed" if store is not None else "per-user streams",
        )
        return server

    return _Serving(make)
