"""Layer 1, the wire: bytes in, packets out; no state, no clock, nothing of ours but layer 0.

Offers the layers above: the SoupBinTCP packets (one frozen class per type, `decode_packet`),
`PacketDecoder` (any chunking in, whole packets out) with its `Dialect` and `Role`, the one
length-prefix frame walk (`walk`, `hop`, `frame_payloads`) the stores use, the Sequenced Data
framing helpers, and the MoldUDP64 packet codec (`_moldudp64`). The public ones are
re-exported by `soupbintcp` and `soupbintcp.lowlevel`; the rest are for layers 2 and 3.
"""

from __future__ import annotations

from ._frames import SEQUENCED, frame_payloads, hop, walk
from ._framing import Dialect, PacketDecoder, Role
from ._moldudp64 import (
    DEFAULT_MAX_PAYLOAD,
    END_OF_SESSION_COUNT,
    HEADER_LENGTH,
    HEARTBEAT_COUNT,
    MAX_MESSAGE_COUNT,
    REQUEST_LENGTH,
    Downstream,
    Request,
    decode_blocks,
    encode_downstream,
    encode_request,
    end_of_session,
    pack_downstream,
    parse_session,
    session_field,
    unpack_header,
)
from ._packets import (
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
    frame,
    sequenced_frame,
    sequenced_frames,
)

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "END_OF_SESSION_COUNT",
    "HEADER_LENGTH",
    "HEARTBEAT_COUNT",
    "MAX_MESSAGE_COUNT",
    "REQUEST_LENGTH",
    "SEQUENCED",
    "ClientHeartbeat",
    "Debug",
    "Dialect",
    "Downstream",
    "EndOfSession",
    "LoginAccepted",
    "LoginReject",
    "LoginRequest",
    "LogoutRequest",
    "Packet",
    "PacketDecoder",
    "PacketType",
    "Request",
    "Role",
    "SequencedData",
    "ServerHeartbeat",
    "UnsequencedData",
    "decode_blocks",
    "decode_packet",
    "encode_downstream",
    "encode_request",
    "end_of_session",
    "frame",
    "frame_payloads",
    "hop",
    "pack_downstream",
    "parse_session",
    "sequenced_frame",
    "sequenced_frames",
    "session_field",
    "unpack_header",
    "walk",
]
