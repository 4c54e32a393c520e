"""Packets as bytes, without packet objects: the type byte (`PacketType`), `frame()` (one
whole packet from a type and a payload) and the Sequenced Data frames a journal stores and a
server sends, one or many at once (the hot path: compiled when built).

Layer 1 (wire): no state, no clock. The packet classes, which encode through `frame()`, are
`_packets`'s, which re-exports these names.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Final

from .._errors import LocalProtocolError
from .._speedups import ACCELERATED

__all__ = [
    "MAX_PAYLOAD_LENGTH",
    "PacketType",
    "frame",
    "pure_sequenced_frames",
    "sequenced_frame",
    "sequenced_frames",
]


class PacketType(enum.IntEnum):
    """The packet type byte. Values are the ASCII letters of the spec."""

    DEBUG = 0x2B  # "+" either direction
    LOGIN_ACCEPTED = 0x41  # "A" server
    LOGIN_REJECTED = 0x4A  # "J" server
    SEQUENCED_DATA = 0x53  # "S" server
    UNSEQUENCED_DATA = 0x55  # "U" either direction
    SERVER_HEARTBEAT = 0x48  # "H" server
    END_OF_SESSION = 0x5A  # "Z" server
    LOGIN_REQUEST = 0x4C  # "L" client
    CLIENT_HEARTBEAT = 0x52  # "R" client
    LOGOUT_REQUEST = 0x4F  # "O" client


#: The length field counts the type byte, so a payload is at most 65535 - 1 bytes.
MAX_PAYLOAD_LENGTH: Final = 0xFFFF - 1


# Headers (length of type + payload, b"S") of Sequenced Data up to 1 KiB, looked up rather
# than packed: about half the cost per message of struct.pack (50 vs 96 ns).
_SEQUENCED_HEADERS: Final = tuple((n + 1).to_bytes(2, "big") + b"S" for n in range(1024))

# The compiled encoder (one bytes, one copy per message) when built; `sequenced_frames` falls
# back to the pure loop for whatever it declines.
_encode_sequenced: Callable[[object], tuple[bytes, int] | None] | None = None
if ACCELERATED:
    from .._speedups._core import encode_sequenced as _compiled_encode

    _encode_sequenced = _compiled_encode


def sequenced_frame(data: bytes) -> bytes:
    """One Sequenced Data packet: the frame a journal stores and a client reads."""
    try:
        return _SEQUENCED_HEADERS[len(data)] + data
    except IndexError:
        return frame(PacketType.SEQUENCED_DATA, data)


def sequenced_frames(messages: Iterable[bytes]) -> tuple[bytes, int]:
    """Sequenced Data packets for `messages`, back to back, and how many there are.
    A message too big for a packet raises `LocalProtocolError`."""
    if _encode_sequenced is not None:
        done = _encode_sequenced(messages)  # a list or tuple of bytes; else None
        if done is not None:
            return done
    return pure_sequenced_frames(messages)


def pure_sequenced_frames(messages: Iterable[bytes]) -> tuple[bytes, int]:
    """`sequenced_frames` in Python: the reference of the compiled `encode_sequenced`, and
    what encodes anything else (bytearrays, iterators, a message too big, to raise)."""
    headers = _SEQUENCED_HEADERS
    parts: list[bytes] = []
    append = parts.append
    for data in messages:
        try:
            append(headers[len(data)])
        except IndexError:
            append(frame(PacketType.SEQUENCED_DATA, data)[:3])  # raises if too big
        append(data)
    return b"".join(parts), len(parts) >> 1


def frame(packet_type: int, payload: bytes = b"") -> bytes:
    """Prefix `payload` with the length and type: one whole packet as it goes on the wire."""
    n = len(payload) + 1
    if n > 0xFFFF:
        raise LocalProtocolError(
            f"payload of {len(payload)} bytes does not fit a packet (max {MAX_PAYLOAD_LENGTH})"
        )
    return n.to_bytes(2, "big") + bytes((packet_type,)) + payload
