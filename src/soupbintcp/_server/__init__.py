"""Layer 3, the server driver: asyncio connections, login, replay from a store, streams.

Offers the layers above: `serve` / `Server` and what a server is configured with
(`Authenticate`, `UserStoreFactory`, `OnEvent`, `OnUnsequenced`), its connections and per-user
`Stream`s, the events it reports (`ServerEvent` and its kinds, `CONNECTION_CLOSED_REASONS`,
`PROTOCOL_FAULTS`) and its status (`ServerStatus`, `ClientStatus`, `status_line`, ...).
Never imports `_client` or `moldudp64`, its siblings at layer 3.
"""

from __future__ import annotations

from ._events import (
    CONNECTION_CLOSED_REASONS,
    PROTOCOL_FAULTS,
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionEvent,
    ConnectionRefused,
    EndOfSessionSent,
    HandlerFailed,
    HeartbeatTimedOut,
    LoggedIn,
    LoggedOut,
    LoginRejectedSent,
    LoginTimedOut,
    ProtocolViolation,
    ServerEvent,
    SessionEnding,
    SessionStarted,
    Stalled,
    StoreFlushed,
    StoreFlushFailed,
    TLSHandshakeFailed,
)
from ._serve import serve
from ._server import (
    Authenticate,
    Connection,
    OnEvent,
    OnUnsequenced,
    Server,
    Stream,
    UserStoreFactory,
)
from ._status import ClientStatus, ServerStats, ServerStatus, StreamStatus, status_line

__all__ = [
    "CONNECTION_CLOSED_REASONS",
    "PROTOCOL_FAULTS",
    "Authenticate",
    "ClientStatus",
    "Connection",
    "ConnectionAccepted",
    "ConnectionClosed",
    "ConnectionEvent",
    "ConnectionRefused",
    "EndOfSessionSent",
    "HandlerFailed",
    "HeartbeatTimedOut",
    "LoggedIn",
    "LoggedOut",
    "LoginRejectedSent",
    "LoginTimedOut",
    "OnEvent",
    "OnUnsequenced",
    "ProtocolViolation",
    "Server",
    "ServerEvent",
    "ServerStats",
    "ServerStatus",
    "SessionEnding",
    "SessionStarted",
    "Stalled",
    "StoreFlushFailed",
    "StoreFlushed",
    "Stream",
    "StreamStatus",
    "TLSHandshakeFailed",
    "UserStoreFactory",
    "serve",
    "status_line",
]
