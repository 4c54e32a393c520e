"""soupbintcp: Nasdaq SoupBinTCP 4.00 / 4.10 for Python.

The top level is what an application uses: connect (`connect`, `connect_async`), serve
(`serve`), the stores, `Message`, the errors and the options. Two namespaces hold the rest:
`soupbintcp.events` (what a server reports to `on_event=`) and `soupbintcp.lowlevel` (the
packets, the decoder and the sans-IO state machines, for those who bring their own I/O).

`accelerated` is True when the optional compiled fast path is in use (built at install where a
C compiler exists; ``SOUPBINTCP_PURE_PYTHON=1`` forces the pure-Python code, the reference).

Names that moved or were renamed in 0.2 still resolve here, with a `DeprecationWarning`
naming the new place, until 0.3 (`DEPRECATED_NAMES`; CHANGELOG.md lists each).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Final

from ._client._async import AsyncClient, BatchItem, connect_async
from ._client._blocking import BlockingClient, connect
from ._client._figures import Client
from ._client._reconnect import CloseReason, ReconnectPolicy
from ._errors import (
    ConfigurationError,
    ConnectionLost,
    HeartbeatTimeout,
    LocalProtocolError,
    LoginRejected,
    LoginTimeout,
    ProtocolError,
    RejectReason,
    RemoteProtocolError,
    SequenceGap,
    SessionEnded,
    SessionMismatch,
    SessionTimeout,
    SoupBinTCPError,
)
from ._server._serve import serve
from ._server._server import (
    Authenticate,
    Connection,
    OnEvent,
    OnUnsequenced,
    Server,
    Stream,
    UserStoreFactory,
)
from ._server._status import ClientStatus, ServerStats, ServerStatus, StreamStatus, status_line
from ._session._client import ClientState
from ._session._events import Message
from ._speedups import ACCELERATED as accelerated
from ._version import __version__
from ._wire._framing import Dialect
from .store import Durability, FileStore, MemoryStore, MessageStore, StoreError

__all__ = [
    "AsyncClient",
    "Authenticate",
    "BatchItem",
    "BlockingClient",
    "Client",
    "ClientState",
    "ClientStatus",
    "CloseReason",
    "ConfigurationError",
    "Connection",
    "ConnectionLost",
    "Dialect",
    "Durability",
    "FileStore",
    "HeartbeatTimeout",
    "LocalProtocolError",
    "LoginRejected",
    "LoginTimeout",
    "MemoryStore",
    "Message",
    "MessageStore",
    "OnEvent",
    "OnUnsequenced",
    "ProtocolError",
    "ReconnectPolicy",
    "RejectReason",
    "RemoteProtocolError",
    "SequenceGap",
    "Server",
    "ServerStats",
    "ServerStatus",
    "SessionEnded",
    "SessionMismatch",
    "SessionTimeout",
    "SoupBinTCPError",
    "StoreError",
    "Stream",
    "StreamStatus",
    "UserStoreFactory",
    "__version__",
    "accelerated",
    "connect",
    "connect_async",
    "serve",
    "status_line",
]

_LOWLEVEL = "soupbintcp.lowlevel"
_EVENTS = "soupbintcp.events"

#: 0.1 top-level name -> (the module it lives in now, its name there). Removed in 0.3.
DEPRECATED_NAMES: Final[dict[str, tuple[str, str]]] = {
    # The sans-IO layer: soupbintcp.lowlevel.
    **{
        name: (_LOWLEVEL, name)
        for name in (
            "ClientSession",
            "ServerConnectionState",
            "ServerState",
            "Event",
            "FramesItem",
            "NoMoreMessages",
            "SequencedFrames",
            "SequencedMessages",
            "PacketDecoder",
            "Role",
            "Packet",
            "PacketType",
            "decode_packet",
        )
    },
    # 0.1's own deprecated alias: one connection, not the spec's session.
    "ServerSession": (_LOWLEVEL, "ServerConnectionState"),
    # Packets are named by the spec with "Packet" after: the packet, not the error or event.
    "ClientHeartbeat": (_LOWLEVEL, "ClientHeartbeatPacket"),
    "Debug": (_LOWLEVEL, "DebugPacket"),
    "EndOfSession": (_LOWLEVEL, "EndOfSessionPacket"),
    "LoginAccepted": (_LOWLEVEL, "LoginAcceptedPacket"),
    "LoginReject": (_LOWLEVEL, "LoginRejectedPacket"),
    "LoginRequest": (_LOWLEVEL, "LoginRequestPacket"),
    "LogoutRequest": (_LOWLEVEL, "LogoutRequestPacket"),
    "SequencedData": (_LOWLEVEL, "SequencedDataPacket"),
    "ServerHeartbeat": (_LOWLEVEL, "ServerHeartbeatPacket"),
    "UnsequencedData": (_LOWLEVEL, "UnsequencedDataPacket"),
    # What a server reports: soupbintcp.events.
    **{
        name: (_EVENTS, name)
        for name in (
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
            "LoginTimedOut",
            "ProtocolViolation",
            "ServerEvent",
            "SessionStarted",
            "Stalled",
            "StoreFlushFailed",
            "StoreFlushed",
            "TLSHandshakeFailed",
        )
    },
    "LoginRefused": (_EVENTS, "LoginRejectedSent"),
    "SessionEnd": (_EVENTS, "SessionEnding"),
    "CLOSE_REASONS": (_EVENTS, "CONNECTION_CLOSED_REASONS"),
}


# The two namespaces, importable as attributes of the package (`soupbintcp.lowlevel.X`).
from . import events, lowlevel  # noqa: E402, F401 (after the names; attributes, not __all__)


def __getattr__(name: str) -> Any:
    """A 0.1 name: its new home's object, with a DeprecationWarning that names it."""
    try:
        module, new = DEPRECATED_NAMES[name]
    except KeyError:
        raise AttributeError(f"module 'soupbintcp' has no attribute {name!r}") from None
    warnings.warn(
        f"soupbintcp.{name} is deprecated and goes in 0.3: use {module}.{new}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), new)


def __dir__() -> list[str]:
    return sorted(set(__all__) | {"events", "lowlevel", "store"})
