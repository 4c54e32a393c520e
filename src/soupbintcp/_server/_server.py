"""The asyncio SoupBinTCP server: the `Server` that `serve()` returns.

Layer 3 (drivers). Each connection drives a sans-IO `ServerSession` and is a cursor into the
`Stream` it follows: a `MessageStore` plus the connections reading it. Everything hangs on
one rule, "one number, one message": a message goes to clients only once the store holds it
durably (`durable_count`), and every client reads the same store, so sequence number n means
the same message to everyone, across reconnects and server restarts.

Where each part lives:

- `_serve`: `serve()`, its options checked once into a frozen `ServerConfig` (`_config`).
- `_stream`: a stream, publishing into it and the live fan-out (one write per connection
  per loop turn, the same bytes object to all); `_flusher` its timed store flushes,
  `_follower` what it sees of a connection.
- `_feed_session`: the spec's session (`FeedSession`): its id and its streams.
- `_listener`: the listening socket, TLS handshakes, admission under the caps.
- `_protocol`: one connection's machinery (asyncio callbacks, timers, closing), with its
  parts `_login`, `_replay` (the pump: catching up straight from the store in bounded
  memory) and `_inbox` (Unsequenced Data to `on_unsequenced`, in order).
- `_connection`: `Connection`, what the application sees of a connection.
- `_drain`: `close()` letting the logged-in clients finish.
- `_context`: what the connections of one server share.
- `_events`: what happens to connections and sessions as typed events; the server's log
  lines are made from them. `_status`: counters kept from them, and `Server.status()`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from collections.abc import AsyncIterator, Iterable
from typing import Self

from .._errors import LocalProtocolError
from ..store import MessageStore
from ._auth import Authenticate
from ._config import (
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
from ._drain import drain
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
    "start_server",
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
        self._mirrors: list[Listener] = []  # more ports serving the same session (`listen`)
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

    async def listen(
        self, address: Address, *, ssl: _ssl.SSLContext | None = None, backlog: int = 1024
    ) -> Address:
        """Listen on another address too and return it as bound: every port serves the same
        session, streams and caps (OUCH's mirrored ports: a client may fail over between
        them and resume where it was). Closed with the server."""
        if self._admission.closing:
            raise LocalProtocolError("the server is closed")
        ctx = self._ctx
        listener = Listener(
            self._loop, ctx.admission, lambda admitted: ServerProtocol(ctx, admitted=admitted),
            self._config.login_timeout, self._events,
        )  # fmt: skip
        await listener.listen(address[0], address[1], ssl, backlog)
        self._mirrors.append(listener)
        return listener.address

    @property
    def addresses(self) -> list[Address]:
        """Every (host, port) served: `address` first, then those added by `listen`."""
        return [self.address, *(listener.address for listener in self._mirrors)]

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

    def refuse_logins(self, why: str | None) -> None:
        """Answer Login Requests with Login Rejected "session not available" for now, `why`
        being the reason logged (a gateway that cannot follow its feed: a client given
        several servers then tries the next); None to accept them again."""
        self._ctx.refusing = why

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
        for listener in self._mirrors:
            listener.close()
        for session in self._sessions:
            for stream in session.streams():
                stream.stop_publishing("the server is closing")
        conns = list(self._admission.connections)
        for conn in conns:
            if conn.connection.login_time is None:
                conn.close("server_closing", "the server is closing", logging.INFO)
        await drain(conns, drain_timeout)
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
        for listener in self._mirrors:
            await listener.wait_closed()
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


async def start_server(
    config: ServerConfig,
    session_id: str,
    store: MessageStore | None,
    user_store: UserStoreFactory | None,
    address: Address,
    ssl: _ssl.SSLContext | None,
    backlog: int,
) -> Server:
    """A `Server` listening on `address`, its session started (what `serve()` awaits)."""
    server = Server(config, session_id, store, user_store)
    await server._listener.listen(address[0], address[1], ssl, backlog)
    server._events.emit(SessionStarted(session=session_id))
    host, port = server.address
    log.info(
        "serving session %s on %s:%s (%s)",
        session_id,
        host,
        port,
        "shared feed" if store is not None else "per-user streams",
    )
    return server
