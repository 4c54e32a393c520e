"""BinaryFILE import and export: Nasdaq's format of ITCH 5.0 files.

A BinaryFILE is messages back to back, each preceded by its 2-byte big-endian length; no
type byte. It is how Nasdaq distributes a day of TotalView-ITCH 5.0, so a server can replay a
historical day (decompress on the fly by passing ``gzip.open(path, "rb")`` as the source).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import ExitStack
from typing import BinaryIO, Final

from ._frames import check_sequence
from ._protocol import MessageStore, StoreError

__all__ = ["export_binaryfile", "import_binaryfile", "iter_binaryfile"]

#: Bytes read from the source at a time by default: memory stays about this size.
DEFAULT_BATCH: Final = 1 << 20
_LENGTH: Final = struct.Struct(">H")

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
        blen = len(buf)
        last = blen - 2
        pos = 0
        out: list[bytes] = []
        append = out.append
        while pos <= last:
            end = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
            if end > blen:
                break
            append(buf[pos + 2 : end])
            pos = end
        carry = buf[pos:]
        base += pos
        if out:
            yield out
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


def import_binaryfile(source: Source, store: MessageStore, *, batch: int = DEFAULT_BATCH) -> int:
    """Append every message of a BinaryFILE to `store`; return how many.

    Streams in bounded memory: `batch` bytes are read at a time and their messages appended
    with one `append_many`. A truncated final record raises `StoreError` naming its offset,
    after everything before it is imported. A record over 65534 bytes (it cannot be a
    Sequenced Data packet) raises `LocalProtocolError`, after the batches before it.
    """
    imported = 0
    with ExitStack() as stack:
        stream = _open_source(source, stack)
        for payloads in _batches(stream, batch):
            store.append_many(payloads)
            imported += len(payloads)
    return imported


def _records(frames: bytes, count: int) -> bytes:
    # Each frame's 3-byte header (length of type + payload, b"S") becomes a 2-byte length.
    pack = _LENGTH.pack
    parts: list[bytes] = []
    append = parts.append
    pos = 0
    for _ in range(count):
        n = (frames[pos] << 8) | frames[pos + 1]
        end = pos + 2 + n
        append(pack(n - 1))
        append(frames[pos + 3 : end])
        pos = end
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
            out.write(_records(frames, n))
            sequence += n
            exported += n
    return exported
