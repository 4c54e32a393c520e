"""MoldUDP64 1.00 packets: the Downstream packet (data, heartbeat, End of Session) and the
Request packet, encoded and decoded.

Layer 1 (wire): bytes in, packets out, no state, no clock. A Downstream packet is a 20-byte
header (10-byte Session, 8-byte Sequence Number of its first message, 2-byte Message Count)
and then `Message Count` blocks, each a 2-byte length and that many bytes. Count 0 is a
Heartbeat, 0xFFFF End of Session; both carry no blocks and the next sequence number.

The listener's hot path uses `decode_header` and `decode_blocks` (no object per packet); the
frozen classes are for everything else. Every malformed datagram raises `MoldUDP64Error`
with its `fault`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Self

from .._errors import LocalProtocolError, MoldUDP64Error, MoldUDP64Fault
from .._speedups import ACCELERATED

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "END_OF_SESSION_COUNT",
    "HEADER_LENGTH",
    "HEARTBEAT_COUNT",
    "MAX_MESSAGE_COUNT",
    "MAX_SEQUENCE",
    "REQUEST_LENGTH",
    "SESSION_LENGTH",
    "Downstream",
    "Request",
    "decode_blocks",
    "decode_header",
    "decode_request",
    "encode_downstream",
    "encode_request",
    "end_of_session",
    "pack_downstream",
    "parse_session",
    "session_field",
    "unpack_header",
]

SESSION_LENGTH: Final = 10
HEADER_LENGTH: Final = 20
REQUEST_LENGTH: Final = 20
HEARTBEAT_COUNT: Final = 0
END_OF_SESSION_COUNT: Final = 0xFFFF
#: 0xFFFF means End of Session, so a packet carries at most 0xFFFE messages.
MAX_MESSAGE_COUNT: Final = 0xFFFE
MAX_SEQUENCE: Final = 2**64 - 1
#: UDP payload (header and blocks) a transmitter keeps under, as Nassau does: below the
#: Ethernet MTU once IP and UDP headers are added, so no datagram is fragmented.
DEFAULT_MAX_PAYLOAD: Final = 1400

_HEADER: Final = struct.Struct(">10sQH")
_unpack_header: Final = _HEADER.unpack_from
#: (Session field, Sequence Number, Message Count) from the first 20 bytes, unchecked: for hot
#: paths that have checked the length themselves.
unpack_header: Final = _unpack_header
_pack_header: Final = _HEADER.pack
# 2-byte block lengths up to 2 KiB, looked up rather than packed (half the cost per message).
_LENGTHS: Final = tuple(n.to_bytes(2, "big") for n in range(2048))


def session_field(session: str) -> bytes:
    """The 10-byte Session field: alphanumeric ASCII, space-padded on the right (Nassau)."""
    if not session.isascii() or not session.isalnum() or len(session) > SESSION_LENGTH:
        raise LocalProtocolError(
            f"session {session!r} must be 1 to {SESSION_LENGTH} alphanumeric ASCII characters"
        )
    return session.encode("ascii").ljust(SESSION_LENGTH)


def parse_session(raw: bytes) -> str:
    """The session named by a Session field, padding (on either side) stripped."""
    text = raw.strip(b" ")
    if not text.isalnum():  # bytes.isalnum() is ASCII-only; b"".isalnum() is False
        raise MoldUDP64Error(MoldUDP64Fault.BAD_SESSION, f"session field {raw!r}")
    return text.decode("ascii")


def decode_header(data: bytes) -> tuple[bytes, int, int]:
    """(raw Session field, Sequence Number, Message Count) of a Downstream packet."""
    if len(data) < HEADER_LENGTH:
        raise MoldUDP64Error(
            MoldUDP64Fault.SHORT_PACKET, f"{len(data)} bytes, the header alone is 20"
        )
    session, sequence, count = _unpack_header(data)
    return session, sequence, count


def decode_blocks(data: bytes, count: int) -> list[bytes]:
    """The `count` messages of a Downstream packet whose header was read; they must fill the
    datagram exactly. For count 0 (heartbeat) and 0xFFFF (End of Session): no blocks."""
    size = len(data)
    if count == END_OF_SESSION_COUNT:
        count = 0
    pos = HEADER_LENGTH
    out: list[bytes] = []
    append = out.append
    try:
        for _ in range(count):
            end = pos + 2 + ((data[pos] << 8) | data[pos + 1])
            append(data[pos + 2 : end])
            pos = end
    except IndexError:
        pos = size + 1  # a length field itself ran past the end
    if pos != size:
        if pos > size:
            raise MoldUDP64Error(
                MoldUDP64Fault.BLOCK_OVERRUN,
                f"{count} message block(s) do not fit in {size} bytes",
            )
        raise MoldUDP64Error(
            MoldUDP64Fault.TRAILING_BYTES,
            f"{size - pos} byte(s) left after {count} message block(s)",
        )
    return out


pure_decode_blocks = decode_blocks  # the reference the tests compare against

if ACCELERATED:
    from .._speedups._core import mold_blocks as _mold_blocks

    def decode_blocks(data: bytes, count: int) -> list[bytes]:
        """The `count` messages of a Downstream packet whose header was read (compiled loop;
        a malformed datagram goes to the pure loop, which raises its fault in its words)."""
        out, pos = _mold_blocks(data, 0 if count == END_OF_SESSION_COUNT else count, HEADER_LENGTH)
        if pos != len(data):
            return pure_decode_blocks(data, count)
        return out


def _check_sequence(sequence: int) -> None:
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise LocalProtocolError(f"sequence number {sequence} does not fit 8 bytes")


def encode_downstream(session: bytes, sequence: int, messages: Sequence[bytes]) -> bytes:
    """A Downstream packet carrying `messages` (none: a Heartbeat). `session` is the field."""
    _check_sequence(sequence)
    count = len(messages)
    if count > MAX_MESSAGE_COUNT:
        raise LocalProtocolError(f"{count} messages: a packet carries at most 65534")
    parts = [_pack_header(session, sequence, count)]
    lengths = _LENGTHS
    for data in messages:
        n = len(data)
        if n >= 2048:
            if n > 0xFFFF:
                raise LocalProtocolError(f"a message of {n} bytes does not fit a block")
            parts.append(n.to_bytes(2, "big"))
        else:
            parts.append(lengths[n])
        parts.append(data)
    return b"".join(parts)


def end_of_session(session: bytes, sequence: int) -> bytes:
    """An End of Session packet: `sequence` is the next number, as for a heartbeat."""
    _check_sequence(sequence)
    return _pack_header(session, sequence, END_OF_SESSION_COUNT)


def pack_downstream(
    session: bytes,
    sequence: int,
    messages: Sequence[bytes],
    start: int,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
) -> tuple[bytes, int]:
    """One Downstream packet of `messages[start:]`, as many as fit in `max_payload` bytes
    (at least one, even if it alone is bigger), numbered from `sequence`; and how many."""
    parts = [b""]
    append = parts.append
    lengths = _LENGTHS
    room = max_payload - HEADER_LENGTH
    end = min(len(messages), start + MAX_MESSAGE_COUNT)
    i = start
    while i < end:
        data = messages[i]
        n = len(data)
        room -= n + 2
        if room < 0 and i > start:
            break
        append(lengths[n] if n < 2048 else n.to_bytes(2, "big"))
        append(data)
        i += 1
    count = i - start
    parts[0] = _pack_header(session, sequence, count)
    return b"".join(parts), count


def encode_request(session: bytes, sequence: int, count: int) -> bytes:
    """A Request packet: `count` messages from `sequence` on."""
    _check_sequence(sequence)
    if not 0 <= count <= 0xFFFF:
        raise LocalProtocolError(f"requested message count {count} does not fit 2 bytes")
    return _pack_header(session, sequence, count)


def decode_request(data: bytes) -> tuple[bytes, int, int]:
    """(raw Session field, Sequence Number, Requested Message Count) of a Request packet,
    which is exactly 20 bytes."""
    if len(data) != REQUEST_LENGTH:
        if len(data) < REQUEST_LENGTH:
            raise MoldUDP64Error(
                MoldUDP64Fault.SHORT_PACKET, f"request of {len(data)} bytes, not 20"
            )
        raise MoldUDP64Error(MoldUDP64Fault.TRAILING_BYTES, f"request of {len(data)} bytes, not 20")
    session, sequence, count = _unpack_header(data)
    return session, sequence, count


@dataclass(frozen=True, slots=True)
class Downstream:
    """A Downstream packet. `messages[i]` has number `sequence + i`; a heartbeat or End of
    Session has no messages and `sequence` is the next number the transmitter will use."""

    session: str
    sequence: int
    messages: tuple[bytes, ...] = ()
    end_of_session: bool = False

    def __post_init__(self) -> None:
        if self.end_of_session and self.messages:
            raise LocalProtocolError("an End of Session packet carries no messages")

    @property
    def is_heartbeat(self) -> bool:
        """Whether the packet is a heartbeat: no messages and not End of Session."""
        return not self.messages and not self.end_of_session

    @property
    def next_sequence(self) -> int:
        """The sequence number after the packet's last message."""
        return self.sequence + len(self.messages)

    def encode(self) -> bytes:
        """The packet as a datagram: header, then each message with its 2-byte length."""
        field = session_field(self.session)
        if self.end_of_session:
            return end_of_session(field, self.sequence)
        return encode_downstream(field, self.sequence, self.messages)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Parse one downstream datagram; a malformed one raises `MoldUDP64Error`."""
        raw, sequence, count = decode_header(data)
        session = parse_session(raw)
        messages = decode_blocks(data, count)
        return cls(session, sequence, tuple(messages), count == END_OF_SESSION_COUNT)


@dataclass(frozen=True, slots=True)
class Request:
    """A Request packet: `count` messages wanted from `sequence` on."""

    session: str
    sequence: int
    count: int

    def encode(self) -> bytes:
        """The request as a datagram: session, sequence number, message count."""
        return encode_request(session_field(self.session), self.sequence, self.count)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Parse one re-request datagram; a malformed one raises `MoldUDP64Error`."""
        raw, sequence, count = decode_request(data)
        return cls(parse_session(raw), sequence, count)
