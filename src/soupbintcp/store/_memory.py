"""`MemoryStore`: every message in memory, durable at once. For tests and demos."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable
from itertools import accumulate, repeat
from operator import add
from typing import Self

from ._frames import (
    OVERHEAD,
    S,
    as_sequence,
    check_sequence,
    encode_many,
    encode_one,
    extend_offsets,
    normalize_session,
    payloads,
)
from ._journal import check_first_sequence
from ._protocol import StoreError

__all__ = ["MemoryStore"]

_READ_CHUNK = 1 << 20


class MemoryStore:
    """A `MessageStore` in memory: nothing survives the process, so everything appended is
    "durable" at once (`durable_count == count`).

    Frames sit back to back in one `bytearray`, with the offset of every message in an
    `array('Q')`, so `read_frames` is a binary search and one slice.

    `first_sequence` numbers the first message (1 by default), as `FileStore`'s does:
    `count` is then the last number held, and reading before it raises `StoreError`.
    """

    __slots__ = ("_base", "_closed", "_frames", "_offsets", "_session_id")

    def __init__(self, *, session_id: str | None = None, first_sequence: int = 1) -> None:
        check_first_sequence(first_sequence)
        self._base = first_sequence - 1
        self._session_id = normalize_session(session_id)
        self._frames = bytearray()
        # _offsets[i] is where message i + 1 starts; the last entry is the end of the frames.
        self._offsets: array[int] = array("Q", (0,))
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"count={self.count}"
        return f"MemoryStore({state}, session_id={self._session_id!r})"

    @property
    def first_sequence(self) -> int:
        """The number of the first message."""
        return self._base + 1

    @property
    def count(self) -> int:
        return len(self._offsets) - 1 + self._base

    @property
    def durable_count(self) -> int:
        return len(self._offsets) - 1 + self._base

    def _record(self, sequence: int) -> int:
        """The index of message `sequence` counted from 1."""
        check_sequence(sequence)
        if sequence <= self._base:
            raise StoreError(
                f"the store starts at message {self._base + 1:,}: message {sequence:,} is not in it"
            )
        return sequence - self._base

    @property
    def session_id(self) -> str | None:
        return self._session_id

    @property
    def closed(self) -> bool:
        """Whether `close` has been called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def append(self, data: bytes) -> int:
        self._check_open()
        self._frames += encode_one(data)
        self._offsets.append(len(self._frames))
        return len(self._offsets) - 1 + self._base

    def append_many(self, messages: Iterable[bytes]) -> int:
        self._check_open()
        first = len(self._offsets) + self._base
        msgs = as_sequence(messages)
        if not msgs:
            return first
        self._frames += encode_many(msgs)
        offsets = self._offsets
        # The offsets are running sums of frame sizes: itertools does them without a loop.
        offsets.extend(
            accumulate(map(add, map(len, msgs), repeat(OVERHEAD)), initial=offsets.pop())
        )
        return first

    def append_frames(self, frames: bytes, count: int) -> int:
        if self._closed:
            self._check_open()  # raises
        offsets = self._offsets
        first = len(offsets) + self._base
        # The server's publish: one whole Sequenced Data frame (`is_one_frame`, inlined).
        if (
            count == 1
            and len(frames) >= 3
            and frames[2] == S
            and ((frames[0] << 8) | frames[1]) + 2 == len(frames)
        ):
            buf = self._frames
            buf += frames
            offsets.append(len(buf))
            return first
        extend_offsets(frames, count, self._offsets)
        self._frames += frames
        return first

    def read_frames(self, sequence: int, max_bytes: int) -> tuple[bytes, int]:
        self._check_open()
        sequence = self._record(sequence)
        offsets = self._offsets
        last = len(offsets) - 1  # index of the end offset == records held
        if sequence > last:
            return b"", 0
        start = offsets[sequence - 1]
        # The last message boundary within max_bytes; at least the first frame.
        j = bisect_right(offsets, start + max_bytes, sequence, last + 1) - 1
        if j < sequence:
            j = sequence
        with memoryview(self._frames) as view:
            return bytes(view[start : offsets[j]]), j - sequence + 1

    def read(self, sequence: int, count: int) -> list[bytes]:
        self._check_open()
        sequence = self._record(sequence)
        end = min(sequence + count, len(self._offsets))  # one past the last to read
        if end <= sequence:
            return []
        offsets = self._offsets
        with memoryview(self._frames) as view:
            frames = bytes(view[offsets[sequence - 1] : offsets[end - 1]])
        return payloads(frames, end - sequence)

    def flush(self) -> None:
        self._check_open()

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
