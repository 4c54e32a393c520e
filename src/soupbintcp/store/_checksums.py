"""The journal's checksums ``<journal>.crc``: a CRC-32 of every 4 KiB block of its records.

Why a side file of fixed blocks, not a checksum inside each record or batch: a journal's
records are the Sequenced Data packets exactly as on the wire, so a run of messages is one
`os.pread` written straight to a socket. A checksum between the records would have to be
cut out of every replayed run. Blocks of the file (as HDFS keeps beside its data) leave the
records untouched; an append costs one `zlib.crc32` call over the bytes it writes, and the
side file is written once per 64 KiB of records (`ENTRY_BATCH`) and at each `flush()`.

Why zlib's CRC-32 and not CRC-32C: the core has no dependencies beyond the standard library,
where only `zlib.crc32` (C, about 2.1 to 2.5 GB/s here) exists; CRC-32C in pure Python runs at
about 4.5 MB/s, 500 times slower (measured on this machine, 2026-12). Both catch every burst
of up to 32 flipped bits in a block. Who computes it (`_crc`): the compiled fast path where
the CPU has carry-less multiplies (the blocks of an append in one C loop), else zlib-ng when
installed, else zlib; all give the same CRC-32.

Blocks are checked once per process: a `FileStore` checks them from the start in a thread
of its own as soon as it opens the journal (`_ahead`), so a replay finds them known good; a
read that gets there first checks them itself.

Format (a journal of format version 2 has one; all integers big-endian except entries)::

         0     8  magic b"SBTCPCRC"
         8     2  format version, 1
        10     2  reserved, zero
        12     4  block size B (4096)
        16     8  journal id of the journal it covers
        24     8  tail block: number of the partial block the next two fields describe
        32     4  tail length: bytes of that block covered (0 to B - 1)
        36     4  tail CRC-32 of those bytes
        40     -  4-byte little-endian CRC-32 of each whole block k: the journal's bytes
                  [32 + k * B, 32 + (k + 1) * B)

Entries are written after the records they cover, so after a crash the side file may lag the
journal: records past what it covers ("unchecked") were written just before the crash; the
next writer checks them by their structure (as a format 1 journal is) and checksums them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import sys
import threading
from array import array
from typing import Final

from ._crc import BLOCK, add_blocks, block_crcs, crc32
from ._journal import HEADER_SIZE, fdatasync

__all__ = ["BLOCK", "CRC_MAGIC", "Checksums"]

logger = logging.getLogger("soupbintcp.store")

CRC_MAGIC: Final = b"SBTCPCRC"
CRC_VERSION: Final = 1
_HEADER: Final = 40
_TAIL: Final = struct.Struct(">QII")
_TAIL_AT: Final = 24
_CHUNK: Final = 1 << 20
#: Whole-block entries written to the side file together (64 KiB of records): a `pwrite`
#: per bulk append cost 1.5 % of it. A crash loses at most these, as it loses index entries
#: (`_IDX_BATCH`): the next writer checks their records by their structure and checksums them.
ENTRY_BATCH: Final = 16


def _entry_bytes(entries: array[int]) -> bytes:
    if sys.byteorder == "little":
        return entries.tobytes()
    swapped = array("I", entries)
    swapped.byteswap()
    return swapped.tobytes()


class Checksums:
    """The block checksums of one journal, in memory, and (for its writer) the side file.

    `sums[k]` is the CRC-32 of whole block k; `tail_len` bytes of the next block are covered
    by `tail_crc`. So the first `covered` bytes of the journal can be checked. Blocks once
    found good are remembered: replaying them again costs nothing.
    """

    __slots__ = (
        "_fd",
        "_fsync",
        "_good",
        "_good_to",
        "_lock",
        "_rfd",
        "_written",
        "behind",
        "good_end",
        "path",
        "sums",
        "tail_crc",
        "tail_len",
    )  # fmt: skip

    def __init__(self, path: str) -> None:
        self.path = path  # of the side file
        self.sums: array[int] = array("I")
        self.tail_len = 0
        self.tail_crc = 0
        self._fd = -1
        self._rfd = -1  # the journal, to read back what `behind` counts
        self._fsync = False
        self._written = 0
        #: Bytes written to the journal after `covered` and not checksummed yet: small appends
        #: are checksummed together, read back once their block fills (or at a flush or a
        #: read), which costs one `crc32` per 4 KiB instead of one per message.
        self.behind = 0
        self._good_to = 0  # blocks before it are all known good
        self._good = bytearray()  # per whole block: 1 once found good
        #: The journal's bytes before this offset are all known good: a read that ends there
        #: needs no look at the checksums (the replays of a session after its first).
        self.good_end = HEADER_SIZE
        # Marking blocks good: the reads' thread and the check ahead (`_ahead`) both do.
        self._lock = threading.Lock()

    @property
    def covered(self) -> int:
        """Journal offset up to which the records are covered."""
        return HEADER_SIZE + len(self.sums) * BLOCK + self.tail_len

    # --- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, journal: str, journal_id: bytes) -> Checksums | None:
        """The checksums of `journal`, or None if its side file is missing or not its own."""
        self = cls(journal + ".crc")
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if (
            len(data) < _HEADER
            or data[:8] != CRC_MAGIC
            or int.from_bytes(data[8:10], "big") != CRC_VERSION
            or int.from_bytes(data[12:16], "big") != BLOCK
            or data[16:24] != journal_id
        ):
            return None
        whole = (len(data) - _HEADER) // 4 * 4  # a torn last entry is dropped
        self.sums.frombytes(data[_HEADER : _HEADER + whole])
        if sys.byteorder != "little":
            self.sums.byteswap()
        self._written = len(self.sums)  # what the side file holds
        block, length, crc = _TAIL.unpack_from(data, _TAIL_AT)
        if block == len(self.sums) and length < BLOCK:
            self.tail_len, self.tail_crc = length, crc
        return self

    def refresh(self, journal_id: bytes) -> None:
        """Take the entries a live writer added to the side file since (a reader's view)."""
        fresh = Checksums.load(self.path[: -len(".crc")], journal_id)
        if fresh is not None and len(fresh.sums) >= len(self.sums):
            self.sums = fresh.sums
            self.tail_len, self.tail_crc = fresh.tail_len, fresh.tail_crc

    def clip(self, size: int) -> None:
        """Forget what covers bytes past `size` (a side file ahead of its journal: a power
        cut without fsync can leave one)."""
        if self.covered <= size:
            return
        del self.sums[(size - HEADER_SIZE) // BLOCK :]
        self._written = min(self._written, len(self.sums))
        self.tail_len = self.tail_crc = 0
        with self._lock:
            del self._good[len(self.sums) :]
            self._good_to = min(self._good_to, len(self.sums))
            self.good_end = HEADER_SIZE + self._good_to * BLOCK

    # --- writing (the journal's one writer) ------------------------------------------------

    def open_for_writing(self, journal_id: bytes, rfd: int, *, fsync: bool, rewrite: bool) -> None:
        """Keep the side file up to date from now on (`rfd`: the journal, open for reading);
        `rewrite` writes it whole first (a new or rebuilt one), aside and renamed into place."""
        self._fsync = fsync
        self._rfd = rfd
        if rewrite or not os.path.exists(self.path):
            header = bytearray(_HEADER)
            header[:8] = CRC_MAGIC
            header[8:10] = CRC_VERSION.to_bytes(2, "big")
            header[12:16] = BLOCK.to_bytes(4, "big")
            header[16:24] = journal_id
            header[_TAIL_AT:] = _TAIL.pack(len(self.sums), self.tail_len, self.tail_crc)
            tmp = self.path + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, bytes(header) + _entry_bytes(self.sums))
                if fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            self._written = len(self.sums)
        self._fd = os.open(self.path, os.O_WRONLY)
        # A torn last entry goes; entries added since loading are written by `persist`.
        os.ftruncate(self._fd, _HEADER + 4 * self._written)

    def catch_up(self) -> None:
        """Checksum the `behind` bytes, read back from the journal."""
        if self.behind:
            data = os.pread(self._rfd, self.behind, self.covered)
            self.behind = 0
            self.add(data)

    def add(self, data: bytes | bytearray | memoryview) -> None:
        """Take `data`, just written at `covered + behind` in the journal."""
        if self.behind:
            self.catch_up()
        # The blocks `data` completes, in one call (compiled where it can be: `_crc`).
        self.tail_len, self.tail_crc = add_blocks(data, self.tail_len, self.tail_crc, self.sums)
        if len(self.sums) - self._written >= ENTRY_BATCH:
            self._write_entries()

    def _write_entries(self) -> None:
        if self._fd < 0 or self._written == len(self.sums):
            return
        try:
            os.pwrite(
                self._fd, _entry_bytes(self.sums[self._written :]), _HEADER + 4 * self._written
            )
        except OSError as exc:
            # The records are written: the next open checks what this leaves unchecked by
            # its structure, and checksums it.
            logger.error("journal checksums %s not updated: %s", self.path, exc)
            self.close()
            return
        self._written = len(self.sums)

    def persist(self) -> None:
        """Write the checksum of the partial last block too (at `flush()` and `close()`)."""
        if self._fd < 0:
            return
        self.catch_up()
        self._write_entries()
        try:
            os.pwrite(self._fd, _TAIL.pack(len(self.sums), self.tail_len, self.tail_crc), _TAIL_AT)
            if self._fsync:
                fdatasync(self._fd)
        except OSError as exc:
            logger.error("journal checksums %s not updated: %s", self.path, exc)
            self.close()

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    # --- checking --------------------------------------------------------------------------

    def first_bad(
        self, fd: int, start: int, end: int, served: bytes | None = None, served_at: int = 0
    ) -> int | None:
        """The start of the first block overlapping journal bytes [start, end) whose
        checksum does not match what the file (open on `fd`) holds; None if all match.
        Bytes past `covered` are not checked.

        `served`, the journal's bytes from `served_at` that a read is about to hand out:
        the whole blocks inside it are checked in it, not read again, so the bytes sent are
        the bytes checked (and a replay's first read copies them once, not twice). Only the
        blocks at its edges are read from the file."""
        if served is None:
            return self._first_bad_in_file(fd, start, end)
        if self.behind:
            self.catch_up()
        # Whole blocks [inner, upto) lie in `served`; the ones before and after do not.
        inner = max((served_at - HEADER_SIZE + BLOCK - 1) // BLOCK, (start - HEADER_SIZE) // BLOCK)
        upto = min(
            (served_at + len(served) - HEADER_SIZE) // BLOCK,
            (min(end, self.covered) - HEADER_SIZE) // BLOCK,
            len(self.sums),
        )
        if inner >= upto:
            return self._first_bad_in_file(fd, start, end)
        bad = self._first_bad_in_file(fd, start, HEADER_SIZE + inner * BLOCK)
        if bad is not None:
            return bad
        first = max(inner, self._good_to)
        if first < upto:
            at = HEADER_SIZE + first * BLOCK - served_at
            with memoryview(served) as view:
                crcs = block_crcs(view[at:], upto - first)
            expected = self.sums[first:upto]
            if crcs != expected:
                i = next(i for i in range(upto - first) if crcs[i] != expected[i])
                return HEADER_SIZE + (first + i) * BLOCK
            self._mark_run(first, upto)
        return self._first_bad_in_file(fd, HEADER_SIZE + upto * BLOCK, end)

    def _first_bad_in_file(self, fd: int, start: int, end: int) -> int | None:
        """`first_bad`, every block read from the file."""
        if self.behind:
            self.catch_up()
        whole = len(self.sums)
        first = max(0, (start - HEADER_SIZE) // BLOCK)
        last = (min(end, self.covered) - 1 - HEADER_SIZE) // BLOCK  # inclusive
        good = self._good
        if last < self._good_to or last < first:
            return None
        first = max(first, self._good_to)
        while first <= last and first < len(good) and good[first]:
            first += 1
        if first > last:
            return None
        at = HEADER_SIZE + first * BLOCK
        data = os.pread(fd, min(HEADER_SIZE + (last + 1) * BLOCK, self.covered) - at, at)
        # The whole blocks at once: their CRCs in one comprehension, compared with one array
        # comparison and marked good with one slice. Block by block in Python cost more
        # than the CRCs themselves (a replay read from the page cache ran at 0.23x).
        upto = min(last + 1, whole)
        if upto > first and len(data) >= (upto - first) * BLOCK:
            with memoryview(data) as view:
                crcs = block_crcs(view, upto - first)
            if crcs == self.sums[first:upto]:
                self._mark_run(first, upto)
                if upto > last:
                    return None
                data = data[(upto - first) * BLOCK :]
                at += (upto - first) * BLOCK
                first = upto
        with memoryview(data) as view:
            for k in range(first, last + 1):
                pos = (k - first) * BLOCK
                if k < whole:
                    if len(data) - pos < BLOCK or crc32(view[pos : pos + BLOCK]) != self.sums[k]:
                        return HEADER_SIZE + k * BLOCK
                    self._mark(k)
                elif len(data) - pos != self.tail_len or crc32(view[pos:]) != self.tail_crc:
                    return HEADER_SIZE + k * BLOCK
        return None

    def known_good(self, k: int) -> bool:
        """Whether whole block `k` was found good."""
        return k < self._good_to or (k < len(self._good) and self._good[k] == 1)

    def check_blocks(self, fd: int, first: int, upto: int) -> list[int]:
        """Check whole blocks [first, upto) (the check ahead's step): mark the good ones and
        return the numbers of the bad ones."""
        data = os.pread(fd, (upto - first) * BLOCK, HEADER_SIZE + first * BLOCK)
        with memoryview(data) as view:
            crcs = block_crcs(view, len(data) // BLOCK)
        expected = self.sums[first : first + len(crcs)]
        if crcs == expected and len(crcs) == upto - first:
            self._mark_run(first, upto)
            return []
        bad = [first + i for i in range(upto - first) if i >= len(crcs) or crcs[i] != expected[i]]
        for k in range(first, upto):
            if k not in bad:
                self._mark(k)
        return bad

    def _mark_run(self, first: int, upto: int) -> None:
        """Blocks [first, upto) are good."""
        with self._lock:
            self._mark_run_locked(first, upto)

    def _mark_run_locked(self, first: int, upto: int) -> None:
        good = self._good
        if upto > len(good):
            good.extend(bytes(upto - len(good)))
        good[first:upto] = b"\x01" * (upto - first)
        if first <= self._good_to:
            gap = good.find(0, self._good_to)  # in C: a byte at a time in Python cost 10 %
            self._good_to = len(good) if gap < 0 else gap
            self.good_end = HEADER_SIZE + self._good_to * BLOCK

    def _mark(self, k: int) -> None:
        with self._lock:
            self._mark_locked(k)

    def _mark_locked(self, k: int) -> None:
        good = self._good
        if k >= len(good):
            good.extend(bytes(k + 1 - len(good)))
        good[k] = 1
        while self._good_to < len(good) and good[self._good_to]:
            self._good_to += 1
        self.good_end = HEADER_SIZE + self._good_to * BLOCK

    def checksum_from(self, fd: int, start: int, end: int) -> None:
        """Checksum the journal's bytes [start, end), `start` being `covered`: records that
        were checked by their structure only (a format 1 journal, a crash, a lost side file)."""
        while start < end:
            data = os.pread(fd, min(_CHUNK, end - start), start)
            if not data:
                break
            self.add(data)
            start += len(data)


def remove(journal: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal + ".crc")
