"""Opening a journal for a `FileStore`: create it if asked, take the writer's lock, check its
header against what was asked, cut a torn last record (`_recovery`), and load the checksums
(for a writer: bring them up to the journal's end, upgrading a format 1 journal).

Apart from `_file`, where the store is what it does once open (append, read, flush, close):
this is the one-off work before, with its own clean-up, so a journal that fails to open
leaves no descriptor behind.
"""

from __future__ import annotations

import fcntl
import os
from typing import NamedTuple

from ._checksums import Checksums
from ._journal import create_journal, read_header
from ._protocol import JournalCorruptError, StoreError
from ._reading import shifted
from ._recovery import Recovered, open_checksums, recover

__all__ = ["OpenJournal", "open_journal"]


class OpenJournal(NamedTuple):
    """An opened journal: its descriptors, what its header records, what recovery found."""

    rfd: int
    wfd: int  # -1 when read-only
    session_id: str | None
    journal_id: bytes
    ended: bool
    base: int  # record n is message n + base (first_sequence - 1)
    found: Recovered
    sums: Checksums | None  # None for a format 1 journal read only


def open_journal(
    path: str,
    wanted: str | None,
    *,
    create: bool,
    first: int | None,
    readonly: bool,
    fsync: bool,
    interval: int,
) -> OpenJournal:
    """Open the journal at `path` (see `FileStore`); `StoreError` if it cannot be."""
    if not os.path.exists(path):
        if not create:
            raise StoreError(f"no journal at {path}")
        create_journal(path, wanted, fsync=fsync, first_sequence=first or 1)
    rfd = wfd = -1
    try:
        try:
            rfd = os.open(path, os.O_RDONLY)
            if not readonly:
                wfd = os.open(path, os.O_WRONLY)
        except OSError as exc:
            raise StoreError(f"cannot open journal {path}: {exc}") from exc
        if not readonly:
            try:
                fcntl.flock(wfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(f"journal {path} is open for writing elsewhere") from None
        return _opened(path, rfd, wfd, wanted, first, fsync=fsync, interval=interval)
    except BaseException:
        for fd in (rfd, wfd):
            if fd >= 0:
                os.close(fd)  # closing the write descriptor releases the flock
        raise


def _opened(
    path: str, rfd: int, wfd: int, wanted: str | None, first: int | None, *, fsync: bool,
    interval: int,
) -> OpenJournal:  # fmt: skip
    size = os.fstat(rfd).st_size
    header = read_header(rfd, path)
    recorded, journal_id, ended = header[:3]
    if wanted is not None and wanted != recorded:
        raise StoreError(
            f"journal {path} records session {recorded!r}, not the requested {wanted!r}"
        )
    if first is not None and first != header.first_sequence:
        raise StoreError(
            f"journal {path} starts at message {header.first_sequence:,}, not the "
            f"requested {first:,}"
        )
    base = header.first_sequence - 1
    writer = None if wfd < 0 else wfd
    sums = Checksums.load(path, journal_id) if header.version > 1 else None
    if sums is not None:
        sums.clip(size)
    try:
        found = recover(
            path, rfd, writer, size, interval, journal_id,
            fsync=fsync, sums=sums, start=header.records_at,
        )  # fmt: skip
    except JournalCorruptError as exc:
        raise shifted(exc, base) from None
    if writer is not None:
        sums = open_checksums(path, rfd, writer, header, found, sums, fsync=fsync)
    return OpenJournal(rfd, wfd, recorded, journal_id, ended, base, found, sums)
