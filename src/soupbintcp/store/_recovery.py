"""Opening a journal: find its end from the side index and a scan of the tail, and cut a
torn last record.

On open, a torn last record (a partial frame at the end, a zero length field, a type byte
other than b"S": what a crash in the middle of a write leaves) is cut off, logged as a
warning on the ``soupbintcp.store`` logger and counted in `recovered_bytes`; everything
before it is served. A bad record followed by more data (anything but zeros past where it
says it ends) is not a torn last record but a corrupt journal: opening it raises `StoreError`
rather than throw away messages that clients may have received.

Checksums (format 2, `_checksums`): what they cover is never cut. The blocks the tail scan
walked are checked against them, and a mismatch, or a bad record in covered bytes, is
corruption (`JournalCorruptError`), never a torn record. Records past what they cover were
written just before a crash (or the journal is of format 1, or its side file was lost): they
are checked by their structure, as before, and a writer checksums them. After a power cut
without `fsync`, the filesystem decides what the tail holds.
"""

from __future__ import annotations

import logging
import os
from array import array
from bisect import bisect_right
from typing import Final, NamedTuple

from ._checksums import BLOCK, Checksums
from ._frames import scan
from ._index import load_index
from ._journal import HEADER_SIZE, Header, fdatasync, set_version
from ._protocol import JournalCorruptError, StoreError

__all__ = ["Recovered", "check_torn_tail", "find_end", "open_checksums", "recover"]

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
    #: Where the walk started (the side index's last entry, or the first record).
    scanned_from: int = HEADER_SIZE
    #: Messages before `scanned_from`.
    scanned_after: int = 0


def find_end(
    path: str, rfd: int, size: int, interval: int, journal_id: bytes, start: int = HEADER_SIZE
) -> Recovered:
    """Walk the journal (its first record at `start`) from its side index's last entry (or
    the first record) to `size`."""
    index = load_index(path, rfd, size, interval, journal_id, start)
    if index is None or not index:
        if index is None and os.path.exists(path + ".idx"):
            logger.info("rebuilding the stale index of journal %s", path)
        index = array("Q")
        offset, count = start, 0
    else:
        offset, count = index[-1], (len(index) - 1) * interval
    before = count
    end, count, why = scan(rfd, offset, count, size, index, interval)
    del index[bisect_right(index, end - 1) :]  # an entry may name the torn frame
    return Recovered(index, count, end, size - end, why, offset, before)


def recover(
    path: str,
    rfd: int,
    wfd: int | None,
    size: int,
    interval: int,
    journal_id: bytes,
    *,
    fsync: bool,
    sums: Checksums | None = None,
    start: int = HEADER_SIZE,
) -> Recovered:
    """`find_end`, check what it walked against `sums`, then cut a torn last record (with
    `wfd`) or ignore it (read-only)."""
    found = find_end(path, rfd, size, interval, journal_id, start)
    end = found.end
    if sums is not None:
        if start > HEADER_SIZE and sums.first_bad(rfd, HEADER_SIZE, start) is not None:
            # Format 3: the first sequence number numbers every message; the walk from the
            # index's last entry would not look at it.
            why = (
                "the checksum of the first block, which holds the first sequence number, "
                "does not match"
            )
            raise JournalCorruptError(path, HEADER_SIZE, 1, why)
        check_walked(path, rfd, found, sums, interval)
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
            if sums is not None:
                sums.clip(end)  # the block the cut fell in is checksummed again
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


def check_walked(path: str, rfd: int, found: Recovered, sums: Checksums, interval: int) -> None:
    """Check the blocks the tail walk went over; a bad record where checksums cover the
    bytes is corruption, not a torn record: `JournalCorruptError`."""
    size = found.end + found.tail
    # A record the end of the file cut is torn, even where the checksums cover its first
    # bytes (a cut at the end of a block, the side file ahead): once those bytes match.
    torn = found.end < size and cut_by_the_end(rfd, found.end, size)
    bad = sums.first_bad(rfd, found.scanned_from, size if torn else found.end)
    if bad is not None:
        # The block may start before the walk did: find its first record from the index.
        k = max(0, bisect_right(found.entries, bad) - 1)
        # (No entries: the walk started at the first record.)
        start, before = (
            (found.entries[k], k * interval) if found.entries else (found.scanned_from, 0)
        )
        at, before, _ = first_record_in(rfd, start, before, bad)
        why = f"the checksum of bytes {bad:,} to {bad + BLOCK:,} does not match"
        raise JournalCorruptError(path, at, before + 1, why)
    if found.end < sums.covered and not torn:
        why = found.why or "a bad record"
        raise JournalCorruptError(
            path, found.end, found.messages + 1, f"{why}, in checksummed bytes"
        )


def cut_by_the_end(rfd: int, end: int, size: int) -> bool:
    """Whether the record at `end` runs past the end of the file (`size`): a header that is
    not whole, or a Sequenced Data frame whose length reaches past it."""
    head = os.pread(rfd, 3, end)
    if len(head) < 3:
        return bool(head)
    return head[2] == ord("S") and end + 2 + ((head[0] << 8) | head[1]) > size


def first_record_in(rfd: int, start: int, before: int, bad: int) -> tuple[int, int, str | None]:
    """Walk from record boundary `start` (with `before` messages before it) to offset `bad`:
    the offset of the first record that reaches `bad` or past it, and how many precede it."""
    return scan(rfd, start, before, bad, array("Q"), 1 << 62)


def open_checksums(
    path: str,
    rfd: int,
    wfd: int,
    header: Header,
    found: Recovered,
    sums: Checksums | None,
    *,
    fsync: bool,
) -> Checksums:
    """For a writer: bring the checksums up to the journal's end (checksumming records
    that have none yet) and keep them from now on; upgrade a format 1 journal."""
    rewrite = sums is None
    if sums is None:
        if header.version == 1:
            logger.info("journal %s: upgrading to format 2 (checksums)", path)
        elif found.end > header.records_at:
            logger.warning(
                "journal %s: its checksums %s.crc are missing or not its own: rebuilt from "
                "the records, which were checked by their structure only",
                path,
                path,
            )
        sums = Checksums(path + ".crc")
    elif found.end > sums.covered:
        logger.warning(
            "journal %s: %d bytes at the end had no checksum yet (written just before a "
            "crash): checked by their structure, and checksummed now",
            path,
            found.end - sums.covered,
        )
    try:
        sums.checksum_from(rfd, sums.covered, found.end)
        sums.open_for_writing(header.journal_id, rfd, fsync=fsync, rewrite=rewrite)
        sums.persist()
    except OSError as exc:
        raise StoreError(f"cannot write the checksums of journal {path}: {exc}") from exc
    if header.version == 1:
        set_version(wfd, path)
    return sums
