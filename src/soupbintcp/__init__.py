"""soupbintcp: Nasdaq SoupBinTCP 4.00 / 4.10 for Python.

Layers, each importing only from those below it: the wire (packets and framing), the sans-IO
sessions, the asyncio and blocking drivers, the stores, and the command line.

`accelerated` is True when the optional compiled fast path is in use (built at install where a
C compiler exists; ``SOUPBINTCP_PURE_PYTHON=1`` forces the pure-Python code, the reference).
"""

from ._client._async import AsyncClient, BatchItem, connect_async
from ._client._blocking import BlockingClient, connect
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
from ._server._server import (
    Authenticate,
    Connection,
    OnUnsequenced,
    Server,
    Stream,
    UserStoreFactory,
    serve,
)
from ._session._client import ClientSession, ClientState
from ._session._events import (
    Event,
    FramesItem,
    Message,
    NoMoreMessages,
    SequencedFrames,
    SequencedMessages,
)
from ._session._server import ServerConnectionState, ServerSession, ServerState
from ._speedups import ACCELERATED as accelerated
from ._version import __version__
from ._wire._framing import Dialect, PacketDecoder, Role
from ._wire._packets import (
    ClientHeartbeat,
    Debug,
    EndOfSession,
    LoginAccepted,
    LoginReject,
    LoginRequest,
    LogoutRequest,
    Packet,
    PacketType,
    SequencedData,
    ServerHeartbeat,
    UnsequencedData,
    decode_packet,
)
from .store import Durability, FileStore, MemoryStore, MessageStore, StoreError

__all__ = [
    "AsyncClient",
    "Authenticate",
    "BatchItem",
    "BlockingClient",
    "ClientHeartbeat",
    "ClientSession",
    "ClientState",
    "CloseReason",
    "ConfigurationError",
    "Connection",
    "ConnectionLost",
    "Debug",
    "Dialect",
    "Durability",
    "EndOfSession",
    "Event",
    "FileStore",
    "FramesItem",
    "HeartbeatTimeout",
    "LocalProtocolError",
    "LoginAccepted",
    "LoginReject",
    "LoginRejected",
    "LoginRequest",
    "LoginTimeout",
    "LogoutRequest",
    "MemoryStore",
    "Message",
    "MessageStore",
    "NoMoreMessages",
    "OnUnsequenced",
    "Packet",
    "PacketDecoder",
    "PacketType",
    "ProtocolError",
    "ReconnectPolicy",
    "RejectReason",
    "RemoteProtocolError",
    "Role",
    "SequenceGap",
    "SequencedData",
    "SequencedFrames",
    "SequencedMessages",
    "Server",
    "ServerConnectionState",
    "ServerHeartbeat",
    "ServerSession",  # deprecated alias of ServerConnectionState
    "ServerState",
    "SessionEnded",
    "SessionMismatch",
    "SessionTimeout",
    "SoupBinTCPError",
    "StoreError",
    "Stream",
    "UnsequencedData",
    "UserStoreFactory",
    "__version__",
    "accelerated",
    "connect",
    "connect_async",
    "decode_packet",
    "serve",
]
