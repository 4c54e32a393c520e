"""`FileStore`: a durable append-only journal of Sequenced Data frames. POSIX only.

The file format is in `_journal` (header), `_index` (the side index) and `_checksums`;
opening is in `_opening`, and what it does to a torn last record in `_recovery`.
Durability, in plain words:

- ``Durability.PUBLISH`` (the default): every `append`, `append_many` or `append_frames`
  call is written to the operating system, in one write, before it returns, and
  `durable_count` moves at once. If the process is killed a moment later the messages are
  still in the file: the kernel writes them to disk in its own time.
- ``Durability.TIMER``: appends wait in the process's memory and `flush()` writes them all
  in one go; the server calls `flush()` every few milliseconds. `durable_count` only moves
  at a flush (or when more than 1 MiB is waiting, which flushes by itself), so a crash
  loses only messages that no client was ever sent. `close()` flushes.
- ``fsync=True`` adds an `fsync` after each of those writes: the messages then survive a
  power cut or a kernel crash too, at the price of waiting for the disk.

Errors: what the file or the data causes raises `StoreError` (a `SoupBinTCPError`); a
message that cannot be a Sequenced Data packet raises `LocalProtocolError`. Misuse of the
constructor: `TypeError` for a `durability` that is not a `Durability`, `ConfigurationError`
(ours, and a `ValueError`) for an `index_interval` under 1. Errors of the operating system
while writing (a full disk) stay `OSError`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from bisect import bisect_right
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, Self

from .._errors import ConfigurationError
from ._ahead import CheckAhead
from ._checksums import BLOCK, Checksums
from ._frames import (
    as_sequence,
    encode_indexed,
    encode_one,
    index_frames,
    is_one_frame,
    normalize_session,
)
from ._index import IDX_HEADER_SIZE, IndexFile
from ._journal import HEADER_SIZE, MAGIC, check_first_sequence, fdatasync, record_session_end
from ._opening import open_journal
from ._protocol import Durability, StoreError
from ._reading import FrameReader
from ._state import JournalState

if TYPE_CHECKING:
    from ._reader import JournalReader

__all__ = ["DEFAULT_INDEX_INTERVAL", "HEADER_SIZE", "IDX_HEADER_SIZE", "MAGIC", "FileStore"]

#: Messages between two entries of the sparse index: a seek scans at most this many frames.
DEFAULT_INDEX_INTERVAL: Final = 256
# New index entries are written to the side file in batches of this many (a crash only
# costs a longer tail scan at the next open).
_IDX_BATCH: Final = 64
# TIMER mode writes by itself past this much buffered data, to bound memory.
_TIMER_LIMIT: Final = 1 << 20


class FileStore(JournalState):
    """A `MessageStore` in an append-only journal file (format and durability: see the
    module documentation).

    `path` is the journal; its sparse index lives beside it in ``path + ".idx"``. With
    `create` (the default) a missing journal is created, recording `session_id`; an existing
    journal recording a different session id raises `StoreError`. `readonly` opens an
    existing journal to read a snapshot of it: nothing is written, a torn tail is left in
    place and ignored (`open_read_only` gives a reader that also follows a live writer).
    `index_interval` is N, the spacing of the sparse index: opening scans only the frames
    after its last entry, and a seek scans at most N frames.

    `first_sequence` is the number of a new journal's first message (1 by default): a
    journal of a session that a capture joined late holds messages N, N + 1, ... as they
    were numbered on the wire. Then `count` and `durable_count` are the last numbers held
    (N - 1 when empty), appends number from N, and reading a message before N raises
    `StoreError`. Given for an existing journal, it must be the journal's (`StoreError`
    otherwise); left out, the journal's own is taken.

    One process writes a journal at a time (an exclusive `flock`); reads use `os.pread` on
    their own descriptor, so replaying to clients while appending works in one thread.
    """

    __slots__ = ()  # the state is `JournalState`'s

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = Durability.PUBLISH,
        fsync: bool = False,
        session_id: str | None = None,
        create: bool = True,
        readonly: bool = False,
        index_interval: int = DEFAULT_INDEX_INTERVAL,
        first_sequence: int | None = None,
    ) -> None:
        if not isinstance(durability, Durability):
            raise TypeError(f"durability must be a Durability, not {durability!r}")
        if index_interval < 1:
            raise ConfigurationError(f"index_interval must be 1 or more, not {index_interval}")
        self._path = os.fspath(path)
        self._durability = durability
        self._fsync = fsync
        self._readonly = readonly
        self._interval = index_interval
        self._closed = True  # until open: close() must be safe on a half-built store
        self._rfd = self._wfd = -1
        self._idx: IndexFile | None = None
        self._sums: Checksums | None = None
        self._ahead: CheckAhead | None = None
        self._pending = bytearray()
        wanted = normalize_session(session_id)
        if first_sequence is not None:
            check_first_sequence(first_sequence)
        try:
            self._open(wanted, create=create and not readonly, first=first_sequence)
        except BaseException:
            self._release()
            raise
        self._closed = False

    @staticmethod
    def open_read_only(
        path: str | os.PathLike[str], *, index_interval: int = DEFAULT_INDEX_INTERVAL
    ) -> JournalReader:
        """A `JournalReader` of the journal at `path`: it never writes or locks, so it works
        while a server appends, and `refresh()` follows what the writer made durable."""
        from ._reader import JournalReader

        return JournalReader(path, index_interval=index_interval)

    # --- opening -------------------------------------------------------------------------------

    def _open(self, wanted: str | None, *, create: bool, first: int | None) -> None:
        path = self._path
        opened = open_journal(
            path, wanted, create=create, first=first, readonly=self._readonly,
            fsync=self._fsync, interval=self._interval,
        )  # fmt: skip
        self._rfd, self._wfd = opened.rfd, opened.wfd
        self._session_id, self._journal_id = opened.session_id, opened.journal_id
        self._ended = opened.ended
        self._base = base = opened.base
        found, sums = opened.found, opened.sums
        self._sums = sums
        self._recovered = found.tail
        self._index = found.entries
        self._reader = FrameReader(path, self._rfd, self._index, self._interval, sums, base)
        self._count = self._durable_count = found.messages
        self._size = self._end = self._durable_end = found.end
        if not self._readonly:
            self._idx = IndexFile(path, self._interval, self._journal_id, self._index)
        if sums is not None and sums.sums:
            # Every block is checked once, off the reads' path (`_ahead`).
            self._ahead = CheckAhead(path, sums, self._index, self._interval, base)
            self._ahead.start()

    def end_session(self) -> None:
        """Record in the journal that the session ended (End of Session was sent), after
        flushing: appends raise `StoreError` from now on, here and in every later process."""
        self._check_writable()
        if self._ended:
            return
        self.flush()
        record_session_end(self._wfd, self._path)
        self._ended = True

    # --- appending -----------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        if self._readonly:
            raise StoreError(f"journal {self._path} is open read-only")

    def _check_appendable(self) -> None:
        self._check_writable()
        if self._ended:
            raise StoreError(
                f"session {self._session_id!r} in {self._path} has ended: nothing can be "
                "appended (start a new session in a new journal)"
            )

    def append(self, data: bytes) -> int:
        self._check_appendable()
        frame = encode_one(data)
        if self._count == len(self._index) * self._interval:
            self._index.append(self._end)
        return self._commit(frame, 1)

    def append_many(self, messages: Iterable[bytes]) -> int:
        self._check_appendable()
        msgs = as_sequence(messages)
        if not msgs:
            return self._count + self._base + 1
        frames = encode_indexed(msgs, self._count, self._end, self._index, self._interval)
        return self._commit(frames, len(msgs))

    def append_frames(self, frames: bytes, count: int) -> int:
        self._check_appendable()
        if not count and not frames:
            return self._count + self._base + 1
        if count == 1 and is_one_frame(frames):
            if self._count == len(self._index) * self._interval:
                self._index.append(self._end)
            return self._commit(frames, 1)
        index_frames(frames, count, self._count, self._end, self._index, self._interval)
        return self._commit(frames, count)

    def _commit(self, frames: bytes, count: int) -> int:
        """Take `count` encoded messages whose index entries are already added."""
        first = self._count + self._base + 1
        if self._durability is Durability.PUBLISH:
            try:
                self._write(frames)
            except BaseException:
                # Nothing was appended: forget the index entries of these messages.
                del self._index[bisect_right(self._index, self._size - 1) :]
                raise
            self._count = self._durable_count = self._count + count
            self._end = self._durable_end = self._size
            idx = self._idx
            if idx is not None and idx.behind(self._index) >= _IDX_BATCH:
                idx.persist(self._index)
        else:
            if self._pending and len(self._pending) + len(frames) > _TIMER_LIMIT:
                # Bound the buffer. Flushing first means that if the write fails, this call
                # appended nothing.
                try:
                    self.flush()
                except BaseException:
                    del self._index[bisect_right(self._index, self._end - 1) :]
                    raise
            self._pending += frames
            self._count += count
            self._end += len(frames)
        return first

    def _write(self, data: bytes | bytearray) -> None:
        """Write `data` at the end of the journal: all of it, or none."""
        fd = self._wfd
        size = self._size
        done = 0
        try:
            with memoryview(data) as view:
                while done < len(view):
                    done += os.pwrite(fd, view[done:], size + done)
            if self._fsync:
                fdatasync(fd)
        except BaseException:
            # A partial record must not stay under the next write (if even this fails, the
            # next open cuts it as a torn record).
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
        self._size = size + done
        sums = self._sums
        if sums is not None:
            # A small append is checksummed later with the rest of its block, read back
            # (`Checksums.behind`): a crc32 call per message cost ~10 % of the append.
            behind = sums.behind + done
            if done < 512 and sums.tail_len + behind < BLOCK:
                sums.behind = behind
            else:
                sums.add(data)

    def flush(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        if self._readonly:
            return
        if self._pending:
            self._write(self._pending)
            self._pending = bytearray()
            self._durable_count = self._count
            self._durable_end = self._end
        if self._idx is not None:
            self._idx.persist(self._index)
        if self._sums is not None:
            self._sums.persist()

    # --- reading -------------------------------------------------------------------------------

    def read_frames(self, sequence: int, max_bytes: int) -> tuple[bytes, int]:
        if self._closed:
            raise StoreError("the store is closed")
        return self._reader.read_frames(sequence, max_bytes, self._durable_count, self._durable_end)

    def read(self, sequence: int, count: int) -> list[bytes]:
        if self._closed:
            raise StoreError("the store is closed")
        return self._reader.read(sequence, count, self._durable_count, self._durable_end)

    # --- closing -------------------------------------------------------------------------------

    def _release(self) -> None:
        if self._ahead is not None:
            self._ahead.stop()
        if self._idx is not None:
            self._idx.close()
        if self._sums is not None:
            self._sums.close()
        for name in ("_rfd", "_wfd"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                os.close(fd)  # closing the write descriptor releases the flock

    def close(self) -> None:
        if self._closed:
            return
        try:
            if not self._readonly:
                self.flush()
        finally:
            self._closed = True
            self._release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Like the io module's files: a store left open is flushed and closed, with a warning.
        if not getattr(self, "_closed", True):
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2)
            with contextlib.suppress(Exception):
                self.close()
