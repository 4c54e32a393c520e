"""What a server reports: the events `serve(on_event=...)` receives and the server logs.

Each is a frozen dataclass with `time` (wall clock) and a one-line `describe()`; those about
one connection are `ConnectionEvent`s and carry its number, peer and user. Their names say
what happened, in the past tense (`LoggedIn`, `LoginRejectedSent`, `HeartbeatTimedOut`),
which keeps them apart from the errors a client raises (`soupbintcp.LoginRejected`,
`soupbintcp.HeartbeatTimeout`) and from the packets (`soupbintcp.lowlevel`). See
docs/operations.md for the table of events, their fields and log levels.
"""

from ._server._events import (
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

__all__ = [
    "CONNECTION_CLOSED_REASONS",
    "PROTOCOL_FAULTS",
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
    "ProtocolViolation",
    "ServerEvent",
    "SessionEnding",
    "SessionStarted",
    "Stalled",
    "StoreFlushFailed",
    "StoreFlushed",
    "TLSHandshakeFailed",
]
