"""`JournalReader`: a read-only view of a journal, safe beside the server that writes it.

It takes no lock and writes nothing (not even the side index). What it serves is what the
file holds in whole, valid records: in `Durability.PUBLISH` every append is one write, so a
record a reader sees whole is durable; in `Durability.TIMER` appends reach the file only at a
flush. A partial record at the end is a write in progress (or a torn tail that the next
writer cuts) and is left out. `refresh()` walks what was appended since.

`verify()` reads the whole journal, ignoring the index, checks every block against the
journal's checksums and the index against the records, and returns a `JournalReport`: the
check that `soupbintcp journal verify` prints.
"""

from __future__ import annotations

import os
from array import array
from dataclasses import dataclass
from typing import Self

from .._errors import ConfigurationError
from ._checksums import Checksums
from ._frames import scan
from ._index import load_index
from ._journal import HEADER_SIZE, read_header
from ._protocol import StoreError
from ._reading import FrameReader
from ._recovery import cut_by_the_end, data_after, find_end, first_record_in

__all__ = ["JournalReader", "JournalReport"]


@dataclass(frozen=True, slots=True)
class JournalReport:
    """What `JournalReader.verify()` found. `ok` is True when nothing is wrong."""

    path: str
    session_id: str | None
    journal_id: str  # hex
    #: Whole valid records, from the start of the file.
    messages: int
    #: Where the last whole valid record ends.
    end: int
    #: Size of the file when it was read.
    size: int
    #: Why the bytes at `end` are not a record (None if the file ends at `end`).
    tail_problem: str | None
    #: Whether data (not zeros) follows a bad record: corruption, which no open will cut.
    corrupt: bool
    #: "ok", "missing" (it is rebuilt at the next write-open) or "stale" (likewise).
    index: str
    #: The journal's format version (1 has no checksums).
    version: int = 2
    #: "ok"; "none" (format 1); "missing" (the side file is lost or not this journal's); or
    #: "bad" (a block does not match: `damage_offset` and `damage_message` say where).
    checksums: str = "ok"
    #: Where the damage starts: the first record that fails its checksum (None if none).
    damage_offset: int | None = None
    #: The sequence number of that record.
    damage_message: int | None = None
    #: Bytes of whole records past what the checksums cover (a live writer's latest, or
    #: records written just before a crash: checked by their structure only).
    unchecked_bytes: int = 0
    #: Whether the session ended (End of Session was sent; nothing more can be appended).
    ended: bool = False
    #: The sequence number of the first record (1 unless the journal is of format 3).
    first_sequence: int = 1

    @property
    def last_sequence(self) -> int:
        """The number of the last whole record (``first_sequence - 1`` if there is none)."""
        return self.first_sequence + self.messages - 1

    @property
    def tail_bytes(self) -> int:
        """Bytes after the last whole record: a torn record the next writer cuts, or a write
        in progress if a server has the journal open."""
        return self.size - self.end

    @property
    def ok(self) -> bool:
        """True when nothing is wrong: no corruption, no partial record, the index up to date,
        every checksum matching."""
        return (
            not self.corrupt
            and self.tail_problem is None
            and self.index == "ok"
            and self.checksums in ("ok", "none")
        )


class JournalReader:
    """Read the journal at `path` without writing or locking it (see the module docs).

    It offers the reading half of `MessageStore`: `count` (= `durable_count`), `session_id`,
    `read_frames`, `read`, and `close`; and `first_sequence`, the number of the journal's
    first message (`count` is the last one's, as in `FileStore`). A missing or foreign
    file raises `StoreError`; an `index_interval` under 1 raises `ConfigurationError`.
    """

    __slots__ = ("_closed", "_count", "_end", "_header", "_index", "_journal_id", "_path",
                 "_reader", "_session_id", "_sums")  # fmt: skip

    def __init__(self, path: str | os.PathLike[str], *, index_interval: int = 256) -> None:
        if index_interval < 1:
            raise ConfigurationError(f"index_interval must be 1 or more, not {index_interval}")
        self._path = os.fspath(path)
        self._closed = True
        try:
            fd = os.open(self._path, os.O_RDONLY)
        except FileNotFoundError:
            raise StoreError(f"no journal at {self._path}") from None
        except OSError as exc:
            raise StoreError(f"cannot open journal {self._path}: {exc}") from exc
        try:
            self._header = read_header(fd, self._path)
            self._session_id, self._journal_id = self._header[:2]
            self._sums = None
            if self._header.version > 1:
                self._sums = Checksums.load(self._path, self._journal_id)
            size = os.fstat(fd).st_size
            found = find_end(
                self._path, fd, size, index_interval, self._journal_id, self._header.records_at
            )
        except BaseException:
            os.close(fd)
            raise
        self._index = found.entries
        self._count = found.messages
        self._end = found.end
        self._reader = FrameReader(
            self._path, fd, self._index, index_interval, self._sums, self._header.first_sequence - 1
        )
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"count={self._count}"
        return f"JournalReader({self._path!r}, {state}, session_id={self._session_id!r})"

    @property
    def path(self) -> str:
        """The journal's path."""
        return self._path

    @property
    def session_id(self) -> str | None:
        return self._session_id

    @property
    def first_sequence(self) -> int:
        """The number of the journal's first message."""
        return self._header.first_sequence

    @property
    def count(self) -> int:
        """The number of the last whole record seen at open or at the last `refresh()`
        (records seen, when the journal starts at message 1)."""
        return self._count + self._header.first_sequence - 1

    durable_count = count

    @property
    def end(self) -> int:
        """File offset where the last record seen ends."""
        return self._end

    @property
    def closed(self) -> bool:
        """Whether `close` has been called."""
        return self._closed

    def _check_open(self) -> FrameReader:
        if self._closed:
            raise StoreError("the reader is closed")
        return self._reader

    def refresh(self) -> int:
        """Walk the records appended since; return `count` now."""
        reader = self._check_open()
        size = os.fstat(reader.fd).st_size
        if size > self._end:
            index = self._index
            end, self._count, _ = scan(
                reader.fd, self._end, self._count, size, index, reader.interval
            )
            self._end = end
            if self._sums is not None:
                self._sums.refresh(self._journal_id)
        return self.count

    def read_frames(self, sequence: int, max_bytes: int) -> tuple[bytes, int]:
        return self._check_open().read_frames(sequence, max_bytes, self._count, self._end)

    def read(self, sequence: int, count: int) -> list[bytes]:
        return self._check_open().read(sequence, count, self._count, self._end)

    def verify(self) -> JournalReport:
        """Walk every record from the start of the file, check the side index against the
        walk, and report (nothing raises for a bad journal: the report says what is bad)."""
        reader = self._check_open()
        fd = reader.fd
        size = os.fstat(fd).st_size
        walked: array[int] = array("Q")
        start = self._header.records_at
        end, count, why = scan(fd, start, 0, size, walked, reader.interval)
        corrupt = end < size and data_after(fd, end, size)
        if not os.path.exists(self._path + ".idx"):
            index = "missing"
        else:
            saved = load_index(self._path, fd, size, reader.interval, self._journal_id, start)
            index = "ok" if saved is not None and saved == walked[: len(saved)] else "stale"
        if why is None and end < size:
            why = f"a partial record of {size - end} bytes"
        sums = Checksums.load(self._path, self._journal_id) if self._header.version > 1 else None
        checksums = "none" if self._header.version == 1 else "missing" if sums is None else "ok"
        damage_at = damage_message = None
        unchecked = 0
        if sums is not None:
            sums.clip(size)
            bad = sums.first_bad(fd, HEADER_SIZE, size)
            if bad is None and end < sums.covered and not cut_by_the_end(fd, end, size):
                bad = end  # a bad record where all checksums match (not one the end cut)
            if bad is not None:
                checksums = "bad"
                damage_at, before, _ = first_record_in(fd, start, 0, max(start, min(bad, end)))
                damage_message = before + self._header.first_sequence
            unchecked = max(0, end - sums.covered)
        elif corrupt:
            damage_at, damage_message = end, count + self._header.first_sequence
        return JournalReport(
            path=self._path,
            session_id=self._session_id,
            journal_id=self._journal_id.hex(),
            messages=count,
            end=end,
            size=size,
            tail_problem=why,
            corrupt=corrupt or checksums == "bad",
            index=index,
            version=self._header.version,
            checksums=checksums,
            damage_offset=damage_at,
            damage_message=damage_message,
            unchecked_bytes=unchecked,
            ended=self._header.ended,
            first_sequence=self._header.first_sequence,
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._reader.fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
