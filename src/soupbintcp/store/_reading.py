"""Reading a journal's records back: seeks through the sparse index, runs of whole frames.

Shared by `FileStore` (which also writes) and `JournalReader` (which only reads, beside a
writer): both read through their own descriptor with `os.pread`, up to what is durable.
What a run holds is checked against the journal's checksums (`_checksums`) before it is
handed out: a run stops before the first record of a block that fails, and a read that
starts at such a record raises `JournalCorruptError`.

Record n of a journal is message ``n + base``: `base` is 0 unless the journal's first
message is not 1 (format 3). The index and the owners' counts are in records; the sequence
numbers in and out (the reads' `sequence`, the errors' `sequence`) are the messages'.
"""

from __future__ import annotations

import os
from array import array
from bisect import bisect_right
from typing import TYPE_CHECKING, Final

from .._wire._frames import frame_payloads, hop, walk
from ._frames import check_sequence
from ._protocol import JournalCorruptError, StoreError

if TYPE_CHECKING:
    from ._checksums import Checksums

__all__ = ["READ_CHUNK", "FrameReader", "shifted"]

READ_CHUNK: Final = 1 << 20


def shifted(exc: JournalCorruptError, base: int) -> JournalCorruptError:
    """`exc`, raised about record n, said about message ``n + base``."""
    return JournalCorruptError(exc.path, exc.offset, exc.sequence + base, exc.why)


class FrameReader:
    """Frames of the journal at `path`, open for reading on `fd`, indexed by `index` (the
    offset of every message numbered ``k * interval + 1``; shared with the owner, which
    appends to it). The owner says how far the journal is durable at each call."""

    __slots__ = ("base", "fd", "index", "interval", "path", "sums")

    def __init__(
        self,
        path: str,
        fd: int,
        index: array[int],
        interval: int,
        sums: Checksums | None = None,
        base: int = 0,
    ) -> None:
        self.path = path
        #: The journal's first message is number ``base + 1``.
        self.base = base
        self.fd = fd
        self.index = index
        self.interval = interval
        #: The journal's checksums (None: format 1, or lost): what reads are checked against.
        self.sums = sums

    def pread(self, size: int, offset: int) -> bytes:
        data = os.pread(self.fd, size, offset)
        if len(data) != size:
            raise StoreError(
                f"journal {self.path} is shorter than expected: wanted {size} bytes at "
                f"offset {offset}, got {len(data)}"
            )
        return data

    def _corrupt(self, offset: int, sequence: int, why: str | None) -> StoreError:
        return JournalCorruptError(self.path, offset, sequence, why or "a bad record")

    def record(self, sequence: int) -> int:
        """The record of message `sequence`; `StoreError` if it is before the journal's
        first message."""
        check_sequence(sequence)
        base = self.base
        if sequence <= base:
            raise StoreError(
                f"journal {self.path} starts at message {base + 1:,}: message {sequence:,} "
                "is not in it"
            )
        return sequence - base

    def read_frames(
        self, sequence: int, max_bytes: int, durable: int, dend: int
    ) -> tuple[bytes, int]:
        """`MessageStore.read_frames` of message `sequence` on, over the first `durable`
        records, ending at `dend`, checked against the checksums."""
        base = self.base
        if not base:
            return self._checked(sequence, max_bytes, durable, dend)
        try:
            return self._checked(self.record(sequence), max_bytes, durable, dend)
        except JournalCorruptError as exc:
            raise shifted(exc, base) from None

    def _checked(self, sequence: int, max_bytes: int, durable: int, dend: int) -> tuple[bytes, int]:
        """`read_frames` from record `sequence`."""
        sums = self.sums
        try:
            data, count, start = self._read_frames(sequence, max_bytes, durable, dend)
        except JournalCorruptError as exc:
            # A bad record: a bad checksum before it says more truly where damage starts.
            bad = (
                None
                if sums is None
                else sums.first_bad(self.fd, self.origin(sequence), exc.offset + 3)
            )
            if bad is None:
                raise
            why = f"the checksum of bytes {bad:,} to {bad + 4096:,} does not match"
            raise JournalCorruptError(self.path, bad, sequence, why) from None
        if sums is None or not count or start + len(data) <= sums.good_end:
            return data, count
        # From the indexed message before: a seek hopped over the records in between.
        bad = sums.first_bad(self.fd, self.origin(sequence), start + len(data), data, start)
        if bad is None:
            return data, count
        # Hand out the records wholly before the bad block; the next read starts in it.
        good = walk(data[: max(0, bad - start)]) if bad > start else None
        if good is None or not good.frames:
            why = f"the checksum of bytes {bad:,} to {bad + 4096:,} does not match"
            raise JournalCorruptError(self.path, start, sequence, why)
        return data[: good.end], good.frames

    def origin(self, sequence: int) -> int:
        """Where the indexed message at or before `sequence` starts."""
        return self.index[(sequence - 1) // self.interval]

    def _read_frames(
        self, sequence: int, max_bytes: int, durable: int, dend: int
    ) -> tuple[bytes, int, int]:
        check_sequence(sequence)
        if sequence > durable:
            return b"", 0, 0
        index = self.index
        interval = self.interval
        k, skip = divmod(sequence - 1, interval)
        start = index[k]
        if skip:
            # Seek: the indexed message before, then hop `skip` frames within one read.
            nxt = index[k + 1] if k + 1 < len(index) else dend
            block = self.pread(min(nxt, dend) - start, start)
            pos = hop(block, 0, skip)
            if pos > len(block):
                raise self._corrupt(
                    start, k * interval + 1, f"{skip} frames run past the next indexed one"
                )
            start += pos
        limit = start + max_bytes
        if limit >= dend:
            return self.pread(dend - start, start), durable - sequence + 1, start
        # End on the last indexed message boundary within max_bytes when there is one: no
        # scanning, and the next call starts on an index entry.
        j = bisect_right(index, limit) - 1
        first_after = j * interval + 1
        if first_after > sequence:
            return self.pread(index[j] - start, start), first_after - sequence, start
        # Fewer than N frames fit: hop over them.
        buf = self.pread(limit - start, start)
        run = walk(buf)
        if run.fault is not None:
            if run.frames:
                # The whole frames before the fault go out, once `read_frames` has checked
                # them against the checksums; the next read starts at the faulty one. (Failing
                # the whole read withheld good records that precede a damaged block.)
                return buf[: run.end], run.frames, start
            raise self._corrupt(start + run.end, sequence + run.frames, run.fault)
        if run.frames:
            return buf[: run.end], run.frames, start
        # The first frame alone is over max_bytes: it goes whole all the same.
        head = buf if len(buf) >= 2 else self.pread(2, start)
        size = 2 + ((head[0] << 8) | head[1])
        if start + size > dend:
            raise self._corrupt(start, sequence, f"a record of {size} bytes runs past the end")
        return self.pread(size, start), 1, start

    def read(self, sequence: int, count: int, durable: int, dend: int) -> list[bytes]:
        """`MessageStore.read` of messages from `sequence`, over the first `durable`
        records, ending at `dend`."""
        self.record(sequence)
        last = min(sequence + count - 1, durable + self.base)
        out: list[bytes] = []
        while sequence <= last:
            frames, n = self.read_frames(sequence, READ_CHUNK, durable, dend)
            n = min(n, last - sequence + 1)
            out += frame_payloads(frames, n)
            sequence += n
        return out
