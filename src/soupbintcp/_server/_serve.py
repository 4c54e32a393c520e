"""`serve()`: the options of a server, checked, and the `Server` they start.

Layer 3 (server driver). The options become one frozen `ServerConfig` (`_config`); the
`Server` itself is in `_server`.
"""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any

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
from ._server import Server, start_server

__all__ = ["serve"]


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
    that client's connection alone; once the session has ended (publishing then raises), that
    client still gets the rest and End of Session, and what it sends next is dropped.

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
    client has not; longer while a slow client is still taking what was sent, so that
    End of Session reaches it), `drain_timeout` (how long `close()` lets the logged-in
    clients finish).

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
        return await start_server(config, sid, store, user_store, address, ssl, backlog)

    return _Serving(make)
