"""Opening a journal: find its end from the side index and a scan of the tail, and cut a
torn last record.

On open, a torn last record (a partial frame at the end, a zero length field, a type byte
other than b"S": what a crash in the middle of a write leaves) is cut off, logged as a
warning on the ``soupbintcp.store`` logger and counted in `recovered_bytes`; everything
before it is served. A bad record followed by more data (anything but zeros past where it
says it ends) is not a torn last record but a corrupt journal: opening it raises `StoreError`
rather than throw away messages that clients may have received. Frames carry no checksum:
after a power cut without `fsync`, the filesystem decides what the tail holds.
"""

from __future__ import annotations

import logging
import os
from array import array
from bisect import bisect_right
from typing import Final, NamedTuple

from ._frames import scan
from ._index import load_index
from ._journal import HEADER_SIZE, fdatasync
from ._protocol import StoreError

__all__ = ["Recovered", "check_torn_tail", "find_end", "recover"]

logger = logging.getLogger("soupbintcp.store")

_READ_CHUNK: Final = 1 << 20


class Recovered(NamedTuple):
    """What an open found: the sparse index, the messages and where the last one ends."""

    entries: array[int]
    messages: int
    end: int
    #: Bytes after `end`: a torn last record (or, for a reader, a write in progress).
    tail: int
    #: Why the bytes at `end` are not a whole valid record (None if there are none).
    why: str | None


def find_end(path: str, rfd: int, size: int, interval: int, journal_id: bytes) -> Recovered:
    """Walk the journal from its side index's last entry (or the start) to `size`."""
    index = load_index(path, rfd, size, interval, journal_id)
    if index is None or not index:
        if index is None and os.path.exists(path + ".idx"):
            logger.info("rebuilding the stale index of journal %s", path)
        index = array("Q")
        offset, count = HEADER_SIZE, 0
    else:
        offset, count = index[-1], (len(index) - 1) * interval
    end, count, why = scan(rfd, offset, count, size, index, interval)
    del index[bisect_right(index, end - 1) :]  # an entry may name the torn frame
    return Recovered(index, count, end, size - end, why)


def recover(
    path: str,
    rfd: int,
    wfd: int | None,
    size: int,
    interval: int,
    journal_id: bytes,
    *,
    fsync: bool,
) -> Recovered:
    """`find_end`, then cut a torn last record (with `wfd`) or ignore it (read-only)."""
    found = find_end(path, rfd, size, interval, journal_id)
    end = found.end
    if end < size:
        check_torn_tail(path, rfd, end, size, found.why)
        if wfd is None:
            logger.warning(
                "journal %s: ignoring %d bytes at offset %d (%s); serving %d messages",
                path,
                size - end,
                end,
                found.why,
                found.messages,
            )
        else:
            logger.warning(
                "journal %s: cut %d bytes of a torn last record at offset %d (%s); "
                "%d messages recovered",
                path,
                size - end,
                end,
                found.why,
                found.messages,
            )
            os.ftruncate(wfd, end)
            if fsync:
                fdatasync(wfd)
    return found


def data_after(rfd: int, end: int, size: int) -> bool:
    """Whether anything but zeros follows the bad record at `end`.

    A torn record is the last: after where its length field says it ends (right after the
    field, if that says 0) there may only be zeros (a file extended but never written, as a
    power cut can leave).
    """
    head = os.pread(rfd, 2, end)
    at = end + 2 + (((head[0] << 8) | head[1]) if len(head) == 2 else 0)
    while at < size:
        chunk = os.pread(rfd, min(_READ_CHUNK, size - at), at)
        if not chunk:
            break
        if chunk.count(0) != len(chunk):
            return True
        at += len(chunk)
    return False


def check_torn_tail(path: str, rfd: int, end: int, size: int, why: str | None) -> None:
    """Refuse to cut a bad record that is not the last one: that is corruption, not a tear."""
    if data_after(rfd, end, size):
        raise StoreError(
            f"journal {path} is corrupt at offset {end} ({why}) and has data "
            f"after it: not a torn last record, so it is not cut (truncate the file "
            f"to {end} bytes to give up the {size - end} bytes from there on)"
        )
