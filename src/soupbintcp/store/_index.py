"""The journal's side index ``<journal>.idx``: a cache of every Nth record's offset.

Format (a cache: missing, corrupt or stale, it is rebuilt)::

         0     8  magic b"SBTCPIDX"
         8     2  format version, 1
        10     2  reserved, zero
        12     4  interval N
        16     8  journal id of the journal it indexes
        24     -  8-byte little-endian file offsets of records 1, N+1, 2N+1, ... (record
                  n is message n, or n + first - 1 in a journal whose first message is
                  `first`: the index counts records and knows nothing of numbering)
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from array import array
from bisect import bisect_right
from itertools import islice
from operator import lt
from typing import Final

from .._wire._frames import walk
from ._journal import HEADER_SIZE

__all__ = ["IDX_HEADER_SIZE", "IDX_MAGIC", "IDX_VERSION", "IndexFile", "load_index"]

logger = logging.getLogger("soupbintcp.store")

IDX_MAGIC: Final = b"SBTCPIDX"
IDX_VERSION: Final = 1
IDX_HEADER_SIZE: Final = 24


def _index_bytes(entries: array[int]) -> bytes:
    if sys.byteorder == "little":
        return entries.tobytes()
    swapped = array("Q", entries)
    swapped.byteswap()
    return swapped.tobytes()


def load_index(
    path: str, rfd: int, size: int, interval: int, journal_id: bytes, start: int = HEADER_SIZE
) -> array[int] | None:
    """The side index of the journal at `path` (open on `rfd`, `size` bytes, its first
    record at `start`) if it belongs to this journal and its end agrees with the file; None
    if it is missing or stale."""
    try:
        with open(path + ".idx", "rb") as f:
            data = f.read()
    except OSError:
        return None
    if (
        len(data) < IDX_HEADER_SIZE
        or data[:8] != IDX_MAGIC
        or int.from_bytes(data[8:10], "big") != IDX_VERSION
        or int.from_bytes(data[12:16], "big") != interval
        or data[16:24] != journal_id
    ):
        return None
    entries: array[int] = array("Q")
    whole = (len(data) - IDX_HEADER_SIZE) // 8 * 8  # a torn last entry is dropped
    entries.frombytes(data[IDX_HEADER_SIZE : IDX_HEADER_SIZE + whole])
    if sys.byteorder != "little":
        entries.byteswap()
    if not entries:
        return entries
    if entries[0] != start or not all(map(lt, entries, islice(entries, 1, None))):
        return None
    # Entries at or past the end of the file index data that never reached it.
    del entries[bisect_right(entries, size - 1) :]
    if len(entries) >= 2:
        a, b = entries[-2], entries[-1]
        block = os.pread(rfd, b - a, a)
        done = walk(block, 0, interval)
        if done.fault is not None or done.frames != interval or done.end != len(block):
            return None
    return entries


class IndexFile:
    """The side file being kept up to date by the one writer of a journal.

    Rewritten whole at open (small: 8 bytes per N messages), then appended to. The index is a
    cache: if it cannot be written, the journal works on and the next open scans.
    """

    __slots__ = ("_fd", "_journal", "_written")

    def __init__(self, journal: str, interval: int, journal_id: bytes, index: array[int]) -> None:
        self._journal = journal
        self._fd = -1
        self._written = 0
        header = bytearray(IDX_HEADER_SIZE)
        header[:8] = IDX_MAGIC
        header[8:10] = IDX_VERSION.to_bytes(2, "big")
        header[12:16] = interval.to_bytes(4, "big")
        header[16:24] = journal_id
        idx_path = journal + ".idx"
        tmp = idx_path + ".tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, bytes(header) + _index_bytes(index))
            finally:
                os.close(fd)
            os.replace(tmp, idx_path)
            self._fd = os.open(idx_path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            logger.warning("journal %s: cannot write its index %s: %s", journal, idx_path, exc)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        self._written = len(index)

    def behind(self, index: array[int]) -> int:
        """Entries of `index` not yet in the file."""
        return len(index) - self._written if self._fd >= 0 else 0

    def persist(self, index: array[int]) -> None:
        """Append the entries of `index` not in the file yet (all of data already written)."""
        if self._fd < 0 or len(index) <= self._written:
            return
        try:
            os.write(self._fd, _index_bytes(index[self._written :]))
        except OSError as exc:
            # The append it follows succeeded; the next open rebuilds what is missing.
            logger.warning("journal %s: index not updated: %s", self._journal, exc)
            self.close()
            return
        self._written = len(index)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
