"""A deterministic synthetic feed: ITCH-sized messages whose content follows from their
sequence number, so any receiver can check every byte without a copy of the feed."""

from __future__ import annotations

import struct
from typing import Final

_HEADER: Final = struct.Struct(">cQ")  # message type, sequence number
_FILL: Final = bytes(range(33, 33 + 64))


def message_size(sequence: int) -> int:
    """11 to 50 bytes, about 30 on average, like ITCH 5.0."""
    return 11 + (sequence * 2654435761 >> 7) % 40


def synthetic_message(sequence: int) -> bytes:
    size = message_size(sequence)
    return _HEADER.pack(b"S", sequence) + _FILL[: size - _HEADER.size]


def synthetic_messages(first: int, count: int) -> list[bytes]:
    return [synthetic_message(s) for s in range(first, first + count)]
