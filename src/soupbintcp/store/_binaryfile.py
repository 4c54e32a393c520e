"""BinaryFILE import and export: Nasdaq's format of ITCH 5.0 files.

A BinaryFILE is messages back to back, each preceded by its 2-byte big-endian length; no
type byte. It is how Nasdaq distributes a day of TotalView-ITCH 5.0, so a server can replay a
historical day (decompress on the fly by passing ``gzip.open(path, "rb")`` as the source).
`BinaryFileWriter` appends to one and resumes a torn one (what `soupbintcp record` writes).

Errors: a truncated record in a file being read raises `StoreError`; a message too long for
a record raises `LocalProtocolError`; a `batch` under 2 bytes is misuse (`ValueError`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from typing import BinaryIO, Final, Self

from .._errors import LocalProtocolError
from .._wire._frames import frame_payloads, walk
from ._frames import check_sequence
from ._protocol import MessageStore, StoreError

__all__ = [
    "BinaryFileWriter",
    "encode_records",
    "export_binaryfile",
    "import_binaryfile",
    "iter_binaryfile",
]

#: Bytes read from the source at a time by default: memory stays about this size.
DEFAULT_BATCH: Final = 1 << 20
_MAX_RECORD: Final = 0xFFFF

Source = str | os.PathLike[str] | BinaryIO


def _batches(stream: BinaryIO, batch: int) -> Iterator[list[bytes]]:
    """Payloads of the whole records in each `batch`-byte read; a truncated final record
    raises `StoreError` naming its offset, after the batches before it."""
    if batch < 2:
        raise ValueError(f"batch must be 2 bytes or more, not {batch}")
    carry = b""
    base = 0  # stream offset of carry[0]
    while True:
        data = stream.read(batch)
        if not data:
            break
        buf = carry + data if carry else data
        run = walk(buf, kind=None)
        carry = buf[run.end :]
        base += run.end
        if run.frames:
            yield frame_payloads(buf, run.frames, typed=False)
    if carry:
        if len(carry) < 2:
            detail = "a partial length field"
        else:
            detail = f"{len(carry) - 2} of {(carry[0] << 8) | carry[1]} bytes"
        raise StoreError(f"truncated BinaryFILE record at offset {base}: {detail}")


def _open_source(source: Source, stack: ExitStack) -> BinaryIO:
    if isinstance(source, str | os.PathLike):
        return stack.enter_context(open(source, "rb"))
    return source


def iter_binaryfile(source: Source, *, batch: int = DEFAULT_BATCH) -> Iterator[bytes]:
    """The payloads of a BinaryFILE (a path or a binary stream, which is left open)."""
    with ExitStack() as stack:
        stream = _open_source(source, stack)
        for payloads in _batches(stream, batch):
            yield from payloads


def import_binaryfile(
    source: Source, store: MessageStore, *, batch: int = DEFAULT_BATCH, resume: bool = False
) -> int:
    """Append every message of a BinaryFILE to `store`; return how many were appended.

    Streams in bounded memory: `batch` bytes are read at a time and their messages appended
    with one `append_many`. A truncated final record raises `StoreError` naming its offset,
    after everything before it is imported. A record over 65534 bytes (it cannot be a
    Sequenced Data packet) raises `LocalProtocolError`, after the batches before it.

    `resume`: `store` may already hold the first messages of this file (an import that was
    interrupted): they are compared with the file, byte for byte, and the import goes on
    after them. `StoreError` names the first message that differs (nothing is appended
    then), or says the store holds more messages than the file.
    """
    imported = 0
    held = store.durable_count if resume else 0
    seen = 0  # messages of the file read so far
    with ExitStack() as stack:
        stream = _open_source(source, stack)
        for payloads in _batches(stream, batch):
            if seen < held:
                overlap = payloads[: held - seen]
                _check_overlap(store, seen + 1, overlap)
                seen += len(payloads)
                payloads = payloads[len(overlap) :]
                if not payloads:
                    continue
            else:
                seen += len(payloads)
            store.append_many(payloads)
            imported += len(payloads)
    if seen < held:
        raise StoreError(
            f"the store holds {held:,} messages but the file only {seen:,}: it is not an "
            "interrupted import of this file"
        )
    return imported


def _check_overlap(store: MessageStore, first: int, payloads: list[bytes]) -> None:
    held = store.read(first, len(payloads))
    if held != payloads:
        bad = next(
            (i for i, (a, b) in enumerate(zip(held, payloads, strict=False)) if a != b),
            min(len(held), len(payloads)),
        )
        raise StoreError(
            f"message {first + bad:,} in the store differs from the file's: the store is not "
            "an interrupted import of this file (import into a new journal)"
        )


def encode_records(messages: Iterable[bytes]) -> bytes:
    """`messages` as BinaryFILE records; `LocalProtocolError` for one over 65535 bytes."""
    parts: list[bytes] = []
    append = parts.append
    for m in messages:
        if len(m) > _MAX_RECORD:
            raise LocalProtocolError(f"a BinaryFILE record holds at most 65535 bytes, not {len(m)}")
        append(len(m).to_bytes(2, "big"))
        append(m)
    return b"".join(parts)


def export_binaryfile(
    store: MessageStore,
    destination: str | os.PathLike[str] | BinaryIO,
    *,
    start: int = 1,
    end: int | None = None,
    batch: int = DEFAULT_BATCH,
) -> int:
    """Write messages `start..end` (inclusive; `end=None`: up to `durable_count`, and an
    `end` past it stops there) of `store` as a BinaryFILE; return how many were written.

    `destination` is a path (created or truncated) or a binary stream (left open). Reads
    `batch` bytes of frames at a time.
    """
    check_sequence(start)
    last = store.durable_count if end is None else min(end, store.durable_count)
    exported = 0
    with ExitStack() as stack:
        if isinstance(destination, str | os.PathLike):
            out: BinaryIO = stack.enter_context(open(destination, "wb"))
        else:
            out = destination
        sequence = start
        while sequence <= last:
            frames, n = store.read_frames(sequence, batch)
            n = min(n, last - sequence + 1)
            out.write(encode_records(frame_payloads(frames, n)))
            sequence += n
            exported += n
    return exported


class BinaryFileWriter:
    """Append messages to the BinaryFILE at `path`, created if missing.

    An existing file is walked to count its records; a torn last record (what a kill in the
    middle of a write leaves) is cut, and `cut_bytes` says how much. Every `write` is flushed
    to the operating system before it returns, so `count` is what the file holds and a
    restart resumes right after it.
    """

    __slots__ = ("_file", "count", "cut_bytes", "path")

    def __init__(self, path: str | os.PathLike[str], *, batch: int = DEFAULT_BATCH) -> None:
        self.path = os.fspath(path)
        self.count = 0
        self.cut_bytes = 0
        self._file = open(self.path, "r+b" if os.path.exists(self.path) else "w+b")  # noqa: SIM115
        try:
            end = self._resume(batch)
        except BaseException:
            self._file.close()
            raise
        self._file.seek(end)

    def _resume(self, batch: int) -> int:
        f = self._file
        carry = b""
        base = 0
        while data := f.read(batch):
            buf = carry + data if carry else data
            run = walk(buf, kind=None)
            self.count += run.frames
            carry = buf[run.end :]
            base += run.end
        if carry:
            self.cut_bytes = len(carry)
            f.truncate(base)
        return base

    def write(self, messages: Iterable[bytes]) -> None:
        """Append `messages` as records, flushed to the operating system before it returns."""
        msgs = list(messages)
        self._file.write(encode_records(msgs))
        self._file.flush()  # what is counted is in the file: a restart resumes after it
        self.count += len(msgs)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
