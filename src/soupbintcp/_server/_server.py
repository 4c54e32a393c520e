"""The asyncio SoupBinTCP server: `serve()` and the `Server` it returns.

Layer 3 (drivers). Each connection drives a sans-IO `ServerSession` and is a cursor into the
`Stream` it follows: a `MessageStore` plus the connections reading it. Everything hangs on
one rule, "one number, one message": a message goes to clients only once the store holds it
durably (`durable_count`), and every client reads the same store, so sequence number n means
the same message to everyone, across reconnects and server restarts.

Where each part lives:

- `_config`: the options of `serve()`, checked once into a frozen `ServerConfig`.
- `_stream`: a stream, publishing into it and the live fan-out (one write per connection
  per loop turn, the same bytes object to all).
- `_feed_session`: the spec's session (`FeedSession`): its id and its streams.
- `_listener`: the listening socket, TLS handshakes, admission under the caps.
- `_protocol`: one connection's machinery (asyncio callbacks, timers, closing), with its
  parts `_login`, `_replay` (the pump: catching up straight from the store in bounded
  memory) and `_inbox` (Unsequenced Data to `on_unsequenced`, in order).
- `_connection`: `Connection`, what the application sees of a connection.
- `_context`: what the connections of one server share.
- `_events`: what happens to connections and sessions as typed events; the server's log
  lines are made from them. `_status`: counters kept from them, and `Server.status()`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping
from typing import Any, Self

from .._errors import LocalProtocolError
from .._wire._framing import Dialect
from ..store import MessageStore
from ._auth import Authenticate, Credentials
from ._config import (
    DEFAULT_BACKLOG,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PENDING_LOGINS,
    DEFAULT_REPLAY_CHUNK,
    DEFAULT_WRITE_BUFFER_HIGH,
    Address,
    OnEvent,
    OnUnsequenced,
    ServerConfig,
    UserStoreFactory,
    session_id_for,
)
from ._connection import Connection, buffered
from ._context import ServerContext
from ._dispatch import EventDispatcher
from ._events import ServerEvent, SessionStarted
from ._feed_session import FeedSession
from ._listener import Listener
from ._protocol import ServerProtocol
from ._status import ServerStats, ServerStatus, stream_status
from ._stream import Stream

__all__ = [
    "Authenticate",
    "Connection",
    "OnEvent",
    "OnUnsequenced",
    "Server",
    "Stream",
    "UserStoreFactory",
    "serve",
]

log = logging.getLogger("soupbintcp.server")


class Server:
    """A running SoupBinTCP server. Create it with `serve()`.

    One session at a time (`session_id`), with either a shared feed (`store`) or per-user
    streams (`user_store`). Publish with `publish` / `publish_many`, end the session with
    `end_session`, start the next with `start_session`, stop with `close` (or `async with`).
    """

    def __init__(
        self,
        config: ServerConfig,
        session_id: str,
        store: MessageStore | None,
        user_store: UserStoreFactory | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._config = config
        self._stats = stats = ServerStats()
        self._events = events = EventDispatcher(loop, config.on_event, stats.count)
        session = FeedSession(config, loop, session_id, store, user_store, events)
        self._sessions = [session]  # every session served, for queued_bytes and close
        self._ctx = ctx = ServerContext(config, loop, session, events, stats)
        self._admission = ctx.admission
        self._listener = Listener(
            loop, ctx.admission, lambda admitted: ServerProtocol(ctx, admitted=admitted),
            config.login_timeout, events,
        )  # fmt: skip
        self._closed = loop.create_future()

    def __repr__(self) -> str:
        return (
            f"<Server session={self.session_id!r} connections={len(self._admission.connections)}"
            f"{' closed' if self._admission.closing else ''}>"
        )

    # --- figures ---------------------------------------------------------------------------

    @property
    def address(self) -> Address:
        """(host, port) actually bound (the first socket's, if several)."""
        return self._listener.address

    @property
    def session_id(self) -> str:
        """The current session."""
        return self._ctx.session.id

    @property
    def store(self) -> MessageStore:
        """The store of the shared feed (`LocalProtocolError` with per-user streams)."""
        return self.stream().store

    @property
    def session_ended(self) -> bool:
        """Whether End of Session has been sent for the current session."""
        return self._ctx.session.ended

    @property
    def connections(self) -> list[Connection]:
        """Every open connection, logged in or not."""
        return [conn.connection for conn in self._admission.connections]

    @property
    def queued_bytes(self) -> int:
        """Bytes the server holds for its clients: transport write buffers plus frames
        waiting for the fan-out. Bounded by about `write_buffer_high` plus one chunk per
        connection, whatever the clients' lag."""
        total = sum(buffered(conn.transport) for conn in self._admission.connections)
        for session in self._sessions:
            for stream in session.streams():
                total += stream.pending_bytes
        return total

    @property
    def is_serving(self) -> bool:
        """Whether the server still accepts connections (until `close`)."""
        return not self._admission.closing

    @property
    def stats(self) -> ServerStats:
        """Counters kept from the server's events since it started: logins by result,
        disconnects by reason, refusals by cap, flush durations (live: read, do not keep)."""
        return self._stats

    def status(self) -> ServerStatus:
        """Everything the server's figures say, at this moment, in one snapshot: each open
        connection's lag, send buffer and counts, each stream's last and durable sequence
        numbers, and a copy of `stats`. Call it from the event loop's thread."""
        current = self._ctx.session
        return ServerStatus.of(
            self._loop.time(),
            current.id,
            [conn.connection.status() for conn in self._admission.connections],
            # Past sessions' streams only while connections still finish them.
            [
                stream_status(stream)
                for session in self._sessions
                for stream in session.streams()
                if session is current or stream.connections
            ],
            self._admission.pending_logins,
            self.queued_bytes,
            self._stats,
        )

    def events(self) -> AsyncIterator[ServerEvent]:
        """`async for event in server.events()`: every `ServerEvent` from now until the
        server closes (then the loop ends). The server never waits for the consumer: one that
        falls 10,000 events behind loses the oldest."""
        return self._events.iterate()

    # --- streams and publishing ------------------------------------------------------------

    def stream(self, user: str | None = None) -> Stream:
        """The shared feed (`user` None), or `user`'s own stream with per-user streams
        (created from `user_store` if it does not exist yet)."""
        return self._ctx.session.stream(user, closing=self._admission.closing)

    @property
    def streams(self) -> list[Stream]:
        """The streams of the current session (the feed, or every user's created so far)."""
        return self._ctx.session.streams()

    def publish(self, data: bytes, *, user: str | None = None) -> int:
        """Append a message to the feed (or to `user`'s stream) and deliver it to every
        logged-in client following it once the store holds it durably. Returns its sequence
        number. Raises `LocalProtocolError` after `end_session()` or `close()`."""
        shared = self._ctx.session.shared
        stream = shared if user is None and shared is not None else self.stream(user)
        return stream.publish(data)

    def publish_many(self, messages: Iterable[bytes], *, user: str | None = None) -> int:
        """`publish` for several messages, encoded and appended in one go; returns the first
        sequence number."""
        shared = self._ctx.session.shared
        stream = shared if user is None and shared is not None else self.stream(user)
        return stream.publish_many(messages)

    def flush(self) -> None:
        """Flush the stores of the current session now (rather than at the next
        `flush_interval`) and release what they then hold durably to the clients."""
        for stream in self._ctx.session.streams():
            stream.flush_now()

    # --- sessions --------------------------------------------------------------------------

    async def end_session(self) -> None:
        """End the current session: flush the stores, then End of Session to every client
        after all that was published before it. A client still catching up gets Z once it
        has everything; one that logs in to this session again (it stays current until
        `start_session`) gets the rest of its stream and then Z. Publishing is refused from
        now on."""
        self._ctx.session.end()

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
        (per-user ones) are closed with the server; `store` stays the caller's.

        A wrong combination of arguments raises `ConfigurationError` (a `ValueError`),
        a `store` that is not a `MessageStore` `TypeError`."""
        if self._admission.closing:
            raise LocalProtocolError("the server is closed")
        session_id = session_id_for(session_id, store, user_store)
        await self.end_session()
        session = FeedSession(self._config, self._loop, session_id, store, user_store, self._events)
        self._ctx.session = session
        self._sessions.append(session)
        self._events.emit(SessionStarted(session=session_id))

    # --- closing ---------------------------------------------------------------------------

    async def close(self, timeout: float | None = None) -> None:
        """Stop listening and publishing, drain the clients, stop the handlers, flush the
        stores and close those the server made. The `store` passed to `serve` is flushed,
        not closed.

        Draining: connections not logged in are closed at once; logged-in clients get up to
        `timeout` seconds (default: the `drain_timeout` given to `serve`) to receive everything
        published before the close (a client still replaying goes on replaying) and, if the
        session has ended, End of Session. Then each is closed, its `close_reason` saying
        whether it was drained ("end of session", "drained: everything sent") or cut off
        ("drain timeout ...", with what it had not been sent).
        """
        if self._admission.closing:
            await asyncio.shield(self._closed)
            return
        drain_timeout = self._config.drain_timeout if timeout is None else timeout
        self._admission.closing = True
        self._listener.close()
        for session in self._sessions:
            for stream in session.streams():
                stream.stop_publishing("the server is closing")
        conns = list(self._admission.connections)
        for conn in conns:
            if conn.connection.login_time is None:
                conn.close("server_closing", "the server is closing", logging.INFO)
        loop = self._loop
        deadline = loop.time() + drain_timeout
        while any(not c.closed and not c.drained() for c in conns) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for conn in conns:
            if conn.closed:
                continue
            if conn.drained():
                conn.close(*conn.drained_reason(), logging.INFO)
            else:
                conn.close(
                    "drain_timeout", conn.undrained_reason(drain_timeout), logging.WARNING,
                    abort=True,
                )  # fmt: skip
        # What was written to the drained ones goes out (a second at most), then the rest.
        transports = [conn.transport for conn in conns]
        flushed = loop.time() + 1.0
        while any(map(buffered, transports)) and loop.time() < flushed:
            await asyncio.sleep(0.01)
        for transport in transports:
            transport.abort()  # a no-op for those already closed
        # Not the handler calling close(), if one is.
        workers = [task for task in self._ctx.workers if task is not asyncio.current_task()]
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        for session in self._sessions:
            for stream in session.streams():
                stream.shutdown()
        await self._listener.wait_closed()
        await self._events.close()
        self._ctx.lines.flush()
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
    on_event: OnEvent | None = None,
    heartbeat_interval: float = 1.0,
    client_heartbeat_timeout: float = 15.0,
    login_timeout: float = 30.0,
    stall_timeout: float | None = 30.0,
    flush_interval: float = 0.005,
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
    max_pending_logins: int | None = DEFAULT_MAX_PENDING_LOGINS,
    max_packet_length: int = 0xFFFF,
    dialect: Dialect = Dialect.SOUPBINTCP,
    ssl: _ssl.SSLContext | None = None,
    backlog: int = DEFAULT_BACKLOG,
    write_buffer_high: int = DEFAULT_WRITE_BUFFER_HIGH,
    replay_chunk: int = DEFAULT_REPLAY_CHUNK,
    end_of_session_linger: float = 5.0,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
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
    A failed check is answered with Login Rejected "A". Passwords are never logged. After
    5 failures from one address for one username, its attempts are checked one at a time,
    0.1 s apart and doubling with each failure up to 5 s (other addresses are not slowed);
    repeated warning lines are written 20 times per 10 s, then counted in one line.

    `on_unsequenced(connection, data)` (function or coroutine function) receives each
    Unsequenced Data packet of a logged-in client, in order per user: the next call waits
    for the previous one, and when a user reconnects, its new connection's messages wait
    until the old connection's are handled. Reading from a client stops while 1,024 of its
    messages or 1 MiB wait, or 64 MiB for all clients together; bytes nobody consumes (Debug
    packets, Unsequenced Data with no handler) are read at 64 KiB/s at most, and a client
    that sends more than 4 KiB before it is logged in is closed. It answers with
    `connection.send_unseq_data(...)` or `connection.publish(...)`. An exception raised by
    `on_unsequenced`, `authenticate` or `user_store` is logged with its traceback and closes
    that client's connection alone.

    `on_event(event)` (function or coroutine function) receives every `ServerEvent`: each
    connection accepted or refused at admission (and which cap), logged in (user, requested
    and granted sequence) or rejected (reason), logged out, timed out, stalled, in protocol
    error (kind), closed (reason and figures); End of Session sent; the store flushed or
    failing. The server's own log lines are made from the same events. A coroutine
    function's calls are awaited one after the other, in order, never holding up the server;
    an exception from `on_event` is logged and changes nothing. `server.events()` is the
    same as an async iterator, and `server.stats` / `server.status()` the figures.

    Timing: `heartbeat_interval` (Server Heartbeat after this long without sending),
    `client_heartbeat_timeout` (close after this long without hearing from a logged-in
    client; a 4.10 Login Request's Heartbeat Timeout wins), `login_timeout` (close without
    a Login Request), `stall_timeout` (close a client whose writes stayed paused this long;
    None: never), `flush_interval` (how often a `Durability.TIMER` store is flushed and its
    messages released), `end_of_session_linger` (close this long after End of Session if the
    client has not), `drain_timeout` (how long `close()` lets the logged-in clients finish).

    Limits: `max_connections`, `max_pending_logins` (connections open but not logged in),
    `max_packet_length` (of client packets). When the connections awaiting login (or all
    connections) are at their cap, the oldest connection that has not sent a Login Request
    is evicted to admit the new one; only when there is none is the new one refused. With
    the defaults (2,000 connections, 1,024 awaiting login, `write_buffer_high` 256 KiB) the
    clients that do not read hold at most 512 KiB each in write buffers until
    `stall_timeout` (up to about 640 KiB of memory, measured): at most some 1.25 GiB for
    2,000, within the 1.5 GiB budget the defaults are chosen for (docs/reliability.md). `backlog`
    is the listen backlog (1,024: a burst of as many logins at once loses no SYN).
    `write_buffer_high` is each transport's high-water mark (low: a quarter of it);
    `replay_chunk` how many bytes of frames one store read gives.
    `ssl`: an `SSLContext` for TLS. `dialect`: `Dialect.OMEGA` serves SoupTCPBinary 1.03
    (no End of Session: connections close instead).

    Misuse is reported at once, before anything listens: options out of range or in
    conflict raise `ConfigurationError` (a `SoupBinTCPError` and a `ValueError`), a `store`
    that is not a `MessageStore` raises `TypeError`, a session id that cannot go on the
    wire `LocalProtocolError`.
    """
    config = ServerConfig(
        credentials=None if credentials is None else Credentials(credentials),
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
        drain_timeout=drain_timeout,
        on_event=on_event,
    )
    sid = session_id_for(session_id, store, user_store)

    async def make() -> Server:
        server = Server(config, sid, store, user_store)
        await server._listener.listen(address[0], address[1], ssl, backlog)
        server._events.emit(SessionStarted(session=sid))
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
