"""`FileStore`: a durable append-only journal of Sequenced Data frames. POSIX only.

Journal file format (all integers big-endian)::

    offset  size  field
         0     8  magic b"SBTCPJNL"
         8     2  format version, 1
        10     2  reserved, zero
        12    10  session id: the spec's Session field (ASCII, left-padded with spaces;
                  all spaces when the journal records no session id)
        22     8  journal id: random bytes chosen at creation; the side index names it
        30     2  reserved, zero
        32     -  records: Sequenced Data frames exactly as on the wire, back to back:
                  2-byte length of what follows, b"S", payload. Record n is message n.

Because records are the wire bytes, replaying a run of messages is one `os.pread` of the
file, written straight to the socket.

Side index ``<journal>.idx`` (a cache: missing, corrupt or stale, it is rebuilt)::

         0     8  magic b"SBTCPIDX"
         8     2  format version, 1
        10     2  reserved, zero
        12     4  interval N
        16     8  journal id of the journal it indexes
        24     -  8-byte little-endian file offsets of messages 1, N+1, 2N+1, ...

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

On open, a torn last record (a partial frame at the end, a zero length field, a type byte
other than b"S": what a crash in the middle of a write leaves) is cut off, logged as a
warning on the ``soupbintcp.store`` logger and counted in `recovered_bytes`; everything
before it is served. A bad record followed by more data (anything but zeros past where it
says it ends) is not a torn last record but a corrupt journal: opening it raises `StoreError`
rather than throw away messages that clients may have received. Frames carry no checksum:
after a power cut without `fsync`, the filesystem decides what the tail holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import warnings
from array import array
from bisect import bisect_right
from collections.abc import Iterable
from itertools import islice
from operator import lt
from typing import Final, Self

from .._errors import RemoteProtocolError
from .._wire._packets import _parse_session, _session_field
from ._frames import (
    S,
    as_sequence,
    check_sequence,
    encode_indexed,
    encode_one,
    index_frames,
    is_one_frame,
    normalize_session,
    payloads,
    scan,
)
from ._protocol import Durability, StoreError

__all__ = ["DEFAULT_INDEX_INTERVAL", "HEADER_SIZE", "FileStore"]

logger = logging.getLogger("soupbintcp.store")

MAGIC: Final = b"SBTCPJNL"
VERSION: Final = 1
HEADER_SIZE: Final = 32
_SESSION_AT: Final = 12
_ID_AT: Final = 22

IDX_MAGIC: Final = b"SBTCPIDX"
IDX_VERSION: Final = 1
IDX_HEADER_SIZE: Final = 24

#: Messages between two entries of the sparse index: a seek scans at most this many frames.
DEFAULT_INDEX_INTERVAL: Final = 256
# New index entries are written to the side file in batches of this many (a crash only
# costs a longer tail scan at the next open).
_IDX_BATCH: Final = 64
# TIMER mode writes by itself past this much buffered data, to bound memory.
_TIMER_LIMIT: Final = 1 << 20
_READ_CHUNK: Final = 1 << 20

_fdatasync = getattr(os, "fdatasync", os.fsync)


def _index_bytes(entries: array[int]) -> bytes:
    if sys.byteorder == "little":
        return entries.tobytes()
    swapped = array("Q", entries)
    swapped.byteswap()
    return swapped.tobytes()


def _walk_checked(buf: bytes, count: int) -> bool:
    """Whether `buf` is exactly `count` valid Sequenced Data frames."""
    pos = 0
    last = len(buf) - 3
    for _ in range(count):
        if pos > last:
            return False
        n = (buf[pos] << 8) | buf[pos + 1]
        if buf[pos + 2] != S or not n:
            return False
        pos += 2 + n
    return pos == len(buf)


class FileStore:
    """A `MessageStore` in an append-only journal file (format and durability: see the
    module documentation).

    `path` is the journal; its sparse index lives beside it in ``path + ".idx"``. With
    `create` (the default) a missing journal is created, recording `session_id`; an existing
    journal recording a different session id raises `StoreError`. `readonly` opens an
    existing journal to read a snapshot of it (for export while a server runs): nothing is
    written, a torn tail is left in place and ignored. `index_interval` is N, the spacing of
    the sparse index: opening scans only the frames after its last entry, and a seek scans
    at most N frames.

    One process writes a journal at a time (an exclusive `flock`); reads use `os.pread` on
    their own descriptor, so replaying to clients while appending works in one thread.
    """

    __slots__ = (
        "_closed",
        "_count",
        "_durability",
        "_durable_count",
        "_durable_end",
        "_end",
        "_fsync",
        "_idx_fd",
        "_idx_written",
        "_index",
        "_interval",
        "_journal_id",
        "_path",
        "_pending",
        "_readonly",
        "_recovered",
        "_rfd",
        "_session_id",
        "_size",
        "_wfd",
    )

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
    ) -> None:
        if not isinstance(durability, Durability):
            raise TypeError(f"durability must be a Durability, not {durability!r}")
        if index_interval < 1:
            raise ValueError(f"index_interval must be 1 or more, not {index_interval}")
        self._path = os.fspath(path)
        self._durability = durability
        self._fsync = fsync
        self._readonly = readonly
        self._interval = index_interval
        self._closed = True  # until open: close() must be safe on a half-built store
        self._rfd = self._wfd = self._idx_fd = -1
        self._index: array[int] = array("Q")
        self._idx_written = 0
        self._pending = bytearray()
        self._recovered = 0
        wanted = normalize_session(session_id)
        try:
            self._open(wanted, create=create and not readonly)
        except BaseException:
            self._release()
            raise
        self._closed = False

    # --- opening -------------------------------------------------------------------------------

    def _open(self, wanted: str | None, *, create: bool) -> None:
        path = self._path
        if not os.path.exists(path):
            if not create:
                raise StoreError(f"no journal at {path}")
            self._create(wanted)
        try:
            self._rfd = os.open(path, os.O_RDONLY)
            if not self._readonly:
                self._wfd = os.open(path, os.O_WRONLY)
        except OSError as exc:
            raise StoreError(f"cannot open journal {path}: {exc}") from exc
        if not self._readonly:
            try:
                fcntl.flock(self._wfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(f"journal {path} is open for writing elsewhere") from None
        size = os.fstat(self._rfd).st_size
        header = os.pread(self._rfd, HEADER_SIZE, 0)
        if len(header) < HEADER_SIZE or header[:8] != MAGIC:
            raise StoreError(f"{path} is not a soupbintcp journal")
        version = int.from_bytes(header[8:10], "big")
        if version != VERSION:
            raise StoreError(f"journal {path} has format version {version}, not {VERSION}")
        try:
            recorded = _parse_session(header[_SESSION_AT:_ID_AT]) or None
        except RemoteProtocolError as exc:
            raise StoreError(f"journal {path} has a bad session id field: {exc}") from None
        if wanted is not None and wanted != recorded:
            raise StoreError(
                f"journal {path} records session {recorded!r}, not the requested {wanted!r}"
            )
        self._session_id = recorded
        self._journal_id = header[_ID_AT : _ID_AT + 8]
        self._recover(size)

    def _create(self, session_id: str | None) -> None:
        # Written aside and linked into place, so a journal never exists without its header,
        # and one that another process created meanwhile is never replaced.
        header = bytearray(HEADER_SIZE)
        header[:8] = MAGIC
        header[8:10] = VERSION.to_bytes(2, "big")
        header[_SESSION_AT:_ID_AT] = _session_field(session_id or "")
        header[_ID_AT : _ID_AT + 8] = os.urandom(8)
        tmp = f"{self._path}.{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, header)
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, self._path)
            except FileExistsError:
                pass  # created meanwhile: open that one
            finally:
                os.unlink(tmp)
            if self._fsync:
                dfd = os.open(os.path.dirname(os.path.abspath(self._path)), os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except OSError as exc:
            raise StoreError(f"cannot create journal {self._path}: {exc}") from exc

    def _load_index(self, size: int) -> array[int] | None:
        """The side index if it belongs to this journal and its end agrees with the file."""
        try:
            with open(self._path + ".idx", "rb") as f:
                data = f.read()
        except OSError:
            return None
        if (
            len(data) < IDX_HEADER_SIZE
            or data[:8] != IDX_MAGIC
            or int.from_bytes(data[8:10], "big") != IDX_VERSION
            or int.from_bytes(data[12:16], "big") != self._interval
            or data[16:24] != self._journal_id
        ):
            return None
        entries: array[int] = array("Q")
        whole = (len(data) - IDX_HEADER_SIZE) // 8 * 8  # a torn last entry is dropped
        entries.frombytes(data[IDX_HEADER_SIZE : IDX_HEADER_SIZE + whole])
        if sys.byteorder != "little":
            entries.byteswap()
        if not entries:
            return entries
        if entries[0] != HEADER_SIZE or not all(map(lt, entries, islice(entries, 1, None))):
            return None
        # Entries at or past the end of the file index data that never reached it.
        del entries[bisect_right(entries, size - 1) :]
        if len(entries) >= 2:
            a, b = entries[-2], entries[-1]
            if not _walk_checked(os.pread(self._rfd, b - a, a), self._interval):
                return None
        return entries

    def _recover(self, size: int) -> None:
        path = self._path
        index = self._load_index(size)
        if index is None or not index:
            if index is None and os.path.exists(path + ".idx"):
                logger.info("rebuilding the stale index of journal %s", path)
            index = array("Q")
            offset, count = HEADER_SIZE, 0
        else:
            offset, count = index[-1], (len(index) - 1) * self._interval
        end, count, why = scan(self._rfd, offset, count, size, index, self._interval)
        del index[bisect_right(index, end - 1) :]  # an entry may name the torn frame
        if end < size:
            self._check_torn_tail(end, size, why)
            self._recovered = size - end
            if self._readonly:
                logger.warning(
                    "journal %s: ignoring %d bytes at offset %d (%s); serving %d messages",
                    path,
                    size - end,
                    end,
                    why,
                    count,
                )
            else:
                logger.warning(
                    "journal %s: cut %d bytes of a torn last record at offset %d (%s); "
                    "%d messages recovered",
                    path,
                    size - end,
                    end,
                    why,
                    count,
                )
                os.ftruncate(self._wfd, end)
                if self._fsync:
                    _fdatasync(self._wfd)
        self._index = index
        self._count = self._durable_count = count
        self._size = self._end = self._durable_end = end
        if not self._readonly:
            self._write_index_file()

    def _check_torn_tail(self, end: int, size: int, why: str | None) -> None:
        """Refuse to cut a bad record that is not the last one: that is corruption, not a tear.

        A torn record is the last: after where its length field says it ends (right after
        the field, if that says 0) there may only be zeros (a file extended but never
        written, as a power cut can leave).
        """
        head = os.pread(self._rfd, 2, end)
        at = end + 2 + (((head[0] << 8) | head[1]) if len(head) == 2 else 0)
        while at < size:
            chunk = os.pread(self._rfd, min(_READ_CHUNK, size - at), at)
            if not chunk:
                break
            if chunk.count(0) != len(chunk):
                raise StoreError(
                    f"journal {self._path} is corrupt at offset {end} ({why}) and has data "
                    f"after it: not a torn last record, so it is not cut (truncate the file "
                    f"to {end} bytes to give up the {size - end} bytes from there on)"
                )
            at += len(chunk)

    def _write_index_file(self) -> None:
        # Rewritten whole at open (small: 8 bytes per N messages), then appended to. The index
        # is a cache: if it cannot be written, the journal works on and the next open scans.
        header = bytearray(IDX_HEADER_SIZE)
        header[:8] = IDX_MAGIC
        header[8:10] = IDX_VERSION.to_bytes(2, "big")
        header[12:16] = self._interval.to_bytes(4, "big")
        header[16:24] = self._journal_id
        idx_path = self._path + ".idx"
        tmp = idx_path + ".tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, bytes(header) + _index_bytes(self._index))
            finally:
                os.close(fd)
            os.replace(tmp, idx_path)
            self._idx_fd = os.open(idx_path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            logger.warning("journal %s: cannot write its index %s: %s", self._path, idx_path, exc)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        self._idx_written = len(self._index)

    def _persist_index(self) -> None:
        index = self._index
        if self._idx_fd < 0 or len(index) <= self._idx_written:
            return
        # Only entries of data already written to the journal get here.
        try:
            os.write(self._idx_fd, _index_bytes(index[self._idx_written :]))
        except OSError as exc:
            # The append it follows succeeded; the next open rebuilds what is missing.
            logger.warning("journal %s: index not updated: %s", self._path, exc)
            os.close(self._idx_fd)
            self._idx_fd = -1
            return
        self._idx_written = len(index)

    # --- properties ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"count={self._count}"
        return (
            f"FileStore({self._path!r}, {state}, durability={self._durability.name}, "
            f"session_id={self._session_id!r})"
        )

    @property
    def path(self) -> str:
        return self._path

    @property
    def durability(self) -> Durability:
        return self._durability

    @property
    def count(self) -> int:
        return self._count

    @property
    def durable_count(self) -> int:
        return self._durable_count

    @property
    def session_id(self) -> str | None:
        return self._session_id

    @property
    def recovered_bytes(self) -> int:
        """Bytes of a torn last record cut off (ignored, if `readonly`) when opened."""
        return self._recovered

    @property
    def closed(self) -> bool:
        return self._closed

    # --- appending -----------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        if self._readonly:
            raise StoreError(f"journal {self._path} is open read-only")

    def append(self, data: bytes) -> int:
        self._check_writable()
        frame = encode_one(data)
        if self._count == len(self._index) * self._interval:
            self._index.append(self._end)
        return self._commit(frame, 1)

    def append_many(self, messages: Iterable[bytes]) -> int:
        self._check_writable()
        msgs = as_sequence(messages)
        if not msgs:
            return self._count + 1
        frames = encode_indexed(msgs, self._count, self._end, self._index, self._interval)
        return self._commit(frames, len(msgs))

    def append_frames(self, frames: bytes, count: int) -> int:
        self._check_writable()
        if not count and not frames:
            return self._count + 1
        if count == 1 and is_one_frame(frames):
            if self._count == len(self._index) * self._interval:
                self._index.append(self._end)
            return self._commit(frames, 1)
        index_frames(frames, count, self._count, self._end, self._index, self._interval)
        return self._commit(frames, count)

    def _commit(self, frames: bytes, count: int) -> int:
        """Take `count` encoded messages whose index entries are already added."""
        first = self._count + 1
        if self._durability is Durability.PUBLISH:
            try:
                self._write(frames)
            except BaseException:
                # Nothing was appended: forget the index entries of these messages.
                del self._index[bisect_right(self._index, self._size - 1) :]
                raise
            self._count = self._durable_count = self._count + count
            self._end = self._durable_end = self._size
            if len(self._index) - self._idx_written >= _IDX_BATCH:
                self._persist_index()
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
                _fdatasync(fd)
        except BaseException:
            # A partial record must not stay under the next write (if even this fails, the
            # next open cuts it as a torn record).
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
        self._size = size + done

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
        self._persist_index()

    # --- reading -------------------------------------------------------------------------------

    def _pread(self, size: int, offset: int) -> bytes:
        data = os.pread(self._rfd, size, offset)
        if len(data) != size:
            raise StoreError(
                f"journal {self._path} is shorter than expected: wanted {size} bytes at "
                f"offset {offset}, got {len(data)}"
            )
        return data

    def read_frames(self, sequence: int, max_bytes: int) -> tuple[bytes, int]:
        if self._closed:
            raise StoreError("the store is closed")
        check_sequence(sequence)
        durable = self._durable_count
        if sequence > durable:
            return b"", 0
        index = self._index
        interval = self._interval
        dend = self._durable_end
        k, skip = divmod(sequence - 1, interval)
        start = index[k]
        if skip:
            # Seek: the indexed message before, then hop `skip` frames within one read.
            nxt = index[k + 1] if k + 1 < len(index) else dend
            block = self._pread(min(nxt, dend) - start, start)
            pos = 0
            for _ in range(skip):
                pos += ((block[pos] << 8) | block[pos + 1]) + 2
            start += pos
        limit = start + max_bytes
        if limit >= dend:
            return self._pread(dend - start, start), durable - sequence + 1
        # End on the last indexed message boundary within max_bytes when there is one: no
        # scanning, and the next call starts on an index entry.
        j = bisect_right(index, limit) - 1
        first_after = j * interval + 1
        if first_after > sequence:
            return self._pread(index[j] - start, start), first_after - sequence
        # Fewer than N frames fit: hop over them.
        buf = self._pread(limit - start, start)
        blen = len(buf)
        last = blen - 3
        pos = n = 0
        while pos <= last:
            end = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
            if end > blen:
                break
            pos = end
            n += 1
        if n:
            return buf[:pos], n
        # The first frame alone is over max_bytes: it goes whole all the same.
        head = buf if blen >= 2 else self._pread(2, start)
        return self._pread(2 + ((head[0] << 8) | head[1]), start), 1

    def read(self, sequence: int, count: int) -> list[bytes]:
        if self._closed:
            raise StoreError("the store is closed")
        check_sequence(sequence)
        last = min(sequence + count - 1, self._durable_count)
        out: list[bytes] = []
        while sequence <= last:
            frames, n = self.read_frames(sequence, _READ_CHUNK)
            n = min(n, last - sequence + 1)
            out += payloads(frames, n)
            sequence += n
        return out

    # --- closing -------------------------------------------------------------------------------

    def _release(self) -> None:
        for name in ("_rfd", "_wfd", "_idx_fd"):
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
