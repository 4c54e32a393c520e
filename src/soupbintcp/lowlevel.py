"""The protocol itself, without I/O: packets, the decoder and the sans-IO state machines.

For those who drive SoupBinTCP over their own transport, test a peer, or build a tool; an
application that connects or serves needs only `soupbintcp`. The advanced API is kept here,
as `trio.lowlevel` keeps trio's, so the top level stays small.

- Packets, one class per packet type of the specification, named by it with ``Packet`` after
  it (`LoginRejectedPacket` is the packet; `soupbintcp.LoginRejected` the error a client
  raises; `soupbintcp.events.LoginRejectedSent` the event a server reports), `PacketType`,
  `decode_packet`, and `PacketDecoder` (any chunking in, whole packets out) with its `Role`.
- The state machines, with time passed in (``now``) and bytes in and out:
  `ClientSession` (a client session across connections; its `ClientState` is
  `soupbintcp.ClientState`, which the clients' `state` reports too) and
  `ServerConnectionState` / `ServerState` (the server's end of one connection).
- The events they return: `Event`, `SequencedMessages`, `SequencedFrames` (a zero-copy
  view), `FramesItem`, `NoMoreMessages`; the messages in them are `soupbintcp.Message`.
"""

from ._session._client import ClientSession
from ._session._events import Event, FramesItem, NoMoreMessages, SequencedFrames, SequencedMessages
from ._session._server import ServerConnectionState, ServerState
from ._wire._framing import PacketDecoder, Role
from ._wire._packets import (
    ClientHeartbeatPacket,
    DebugPacket,
    EndOfSessionPacket,
    LoginAcceptedPacket,
    LoginRejectedPacket,
    LoginRequestPacket,
    LogoutRequestPacket,
    Packet,
    PacketType,
    SequencedDataPacket,
    ServerHeartbeatPacket,
    UnsequencedDataPacket,
    decode_packet,
)

__all__ = [
    "ClientHeartbeatPacket",
    "ClientSession",
    "DebugPacket",
    "EndOfSessionPacket",
    "Event",
    "FramesItem",
    "LoginAcceptedPacket",
    "LoginRejectedPacket",
    "LoginRequestPacket",
    "LogoutRequestPacket",
    "NoMoreMessages",
    "Packet",
    "PacketDecoder",
    "PacketType",
    "Role",
    "SequencedDataPacket",
    "SequencedFrames",
    "SequencedMessages",
    "ServerConnectionState",
    "ServerHeartbeatPacket",
    "ServerState",
    "UnsequencedDataPacket",
    "decode_packet",
]
