"""The venue's input journal: every inbound message and venue action, in order, with its time.

The engine is deterministic, so replaying this journal into a fresh engine rebuilds the
day exactly (books, UserRefNums, reference and match numbers): that is how a restarted
venue resumes the same day. A record is kind (1 byte), timestamp (u64 ns since midnight),
account name (u8 length + ASCII), then the rest: an inbound OUCH payload (kind ``I``) or an
action (``S`` start of day, ``E`` end of day, ``K`` cancel all of an account's orders,
``R`` reject the next N orders, with N as u32 and the reason as u16).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["Input", "decode_input", "encode_input", "iterate", "read_reject", "reject_data"]

_HEAD = struct.Struct(">cQB")


class Input(NamedTuple):
    kind: str
    timestamp: int
    account: str
    data: bytes


def encode_input(kind: str, timestamp: int, account: str, data: bytes = b"") -> bytes:
    name = account.encode("ascii")
    return _HEAD.pack(kind.encode("ascii"), timestamp, len(name)) + name + data


def decode_input(record: bytes) -> Input:
    kind, timestamp, length = _HEAD.unpack_from(record)
    start = _HEAD.size
    name = record[start : start + length].decode("ascii")
    return Input(kind.decode("ascii"), timestamp, name, bytes(record[start + length :]))


def reject_data(count: int, reason: int) -> bytes:
    return struct.pack(">IH", count, reason)


def read_reject(data: bytes) -> tuple[int, int]:
    count, reason = struct.unpack(">IH", data)
    return count, reason


def iterate(records: list[bytes]) -> Iterator[Input]:
    return map(decode_input, records)
