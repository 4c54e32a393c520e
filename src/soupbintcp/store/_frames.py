"""Sequenced Data frames as the stores hold them: exactly the packets on the wire.

A frame is the 2-byte big-endian length of what follows it, the type byte b"S" and the
payload. Stores keep frames back to back, so a run of messages is one contiguous slice that
the server writes straight to a socket.

Every hop over frames goes through the wire layer's one walk (`soupbintcp._wire._frames`).
"""

from __future__ import annotations

import os
import struct
from array import array
from collections.abc import Iterable, Sequence
from typing import Final

from .._errors import LocalProtocolError
from .._wire._fields import session_field
from .._wire._frames import SEQUENCED, frame_payloads, hop, walk
from .._wire._packets import sequenced_frame, sequenced_frames

__all__ = [
    "HEADER",
    "MAX_FRAME",
    "OVERHEAD",
    "S",
    "as_sequence",
    "check_sequence",
    "encode_indexed",
    "encode_many",
    "encode_one",
    "extend_offsets",
    "index_frames",
    "is_one_frame",
    "normalize_session",
    "payloads",
    "scan",
]

S: Final = SEQUENCED
#: The length field (of type byte and payload) and the type byte.
HEADER: Final = struct.Struct(">HB")
OVERHEAD: Final = HEADER.size
#: The largest frame: a 2-byte length field saying 65535.
MAX_FRAME: Final = 2 + 0xFFFF


def normalize_session(session_id: str | None) -> str | None:
    """Check a session id as the spec's Session field; a blank one means none."""
    if session_id is None:
        return None
    session_field(session_id)  # raises LocalProtocolError if it cannot go on the wire
    return session_id or None


def check_sequence(sequence: int) -> None:
    if sequence < 1:
        raise LocalProtocolError(f"sequence numbers start at 1, not {sequence}")


def as_sequence(messages: Iterable[bytes]) -> Sequence[bytes]:
    # Materialized once: an encoding error must append nothing, so we walk it twice.
    return messages if isinstance(messages, list | tuple) else list(messages)


def encode_one(data: bytes) -> bytes:
    return sequenced_frame(data)


def encode_many(messages: Sequence[bytes]) -> bytes:
    return sequenced_frames(messages)[0]


def encode_indexed(
    messages: Sequence[bytes], count: int, offset: int, index: array[int], interval: int
) -> bytes:
    """Frames for `messages`, numbered from `count + 1` and landing at file `offset`.

    Appends to `index` the offset of each message numbered `k * interval + 1`. The messages
    are encoded in runs that end at those numbers, so finding the offsets costs one `sum`
    per run rather than any work per message.
    """
    parts: list[bytes] = []
    append = parts.append
    before = len(index)
    total = len(messages)
    done = 0
    try:
        while done < total:
            due = len(index) * interval - count - done  # messages before the next indexed one
            if not due:
                index.append(offset)
                due = interval
            run = messages[done : done + due]
            frames, n = sequenced_frames(run)
            append(frames)
            offset += len(frames)
            done += n
    except LocalProtocolError:
        del index[before:]  # an encoding error appends nothing
        raise
    return b"".join(parts)


def _bad_frames(frames: bytes, count: int, detail: str) -> LocalProtocolError:
    return LocalProtocolError(
        f"{len(frames)} bytes are not {count} Sequenced Data frames: {detail}"
    )


def index_frames(
    frames: bytes, count: int, first: int, offset: int, index: array[int], interval: int
) -> None:
    """Index `count` pre-encoded frames numbered from `first + 1`, landing at `offset`.

    Hops from frame to frame by the length fields (the index needs every Nth offset, so this
    walk cannot be avoided) and checks they end exactly at the end of `frames`. The header of
    the first frame and of every indexed frame is checked on the way; the others are the
    caller's guarantee (checking each costs this, the publish path, half its speed). Raises
    `LocalProtocolError`, leaving `index` as it was.
    """
    if count < 0:
        raise LocalProtocolError(f"count must be 0 or more, not {count}")
    before = len(index)
    size = len(frames)
    pos = done = 0
    while done < count:
        due = len(index) * interval - first - done  # frames before the next indexed one
        if not due or not done:
            head = walk(frames, pos, 1)
            if head.frames != 1:
                _check_walked(frames, count, pos, done, head.fault, index, before)
            if not due:
                index.append(offset + pos)
                due = interval
        step = min(due, count - done)
        pos = hop(frames, pos, step)
        if pos > size:
            break
        done += step
    _check_walked(frames, count, pos, done, None, index, before)


def _check_walked(
    frames: bytes,
    count: int,
    end: int,
    walked: int,
    fault: str | None,
    index: array[int],
    before: int,
) -> None:
    if fault is None and walked == count and end == len(frames):
        return
    del index[before:]
    if fault is not None:
        detail = f"frame {walked + 1} at offset {end} is not Sequenced Data ({fault})"
    elif walked < count or end > len(frames):
        detail = "they run past the end"
    else:
        detail = "bytes are left over"
    raise _bad_frames(frames, count, detail)


def is_one_frame(frames: bytes) -> bool:
    """Whether `frames` is exactly one whole Sequenced Data frame (the server's publish)."""
    return len(frames) >= 3 and frames[2] == S and ((frames[0] << 8) | frames[1]) + 2 == len(frames)


def extend_offsets(frames: bytes, count: int, offsets: array[int]) -> None:
    """Extend `offsets`, whose last entry is where `frames` will land, by the end offset of
    each of `count` frames, every frame checked; `LocalProtocolError` leaves it as it was."""
    if count < 0:
        raise LocalProtocolError(f"count must be 0 or more, not {count}")
    before = len(offsets) - 1
    base = offsets[before]
    # The start of each frame is the end of the one before: walk records starts over the
    # last entry (which the first start repeats), then the end of the last frame.
    del offsets[before]
    done = walk(frames, 0, count, starts=offsets, base=base)
    try:
        _check_walked(frames, count, done.end, done.frames, done.fault, offsets, before)
    except LocalProtocolError:
        offsets.append(base)
        raise
    offsets.append(base + done.end)


def payloads(frames: bytes, count: int) -> list[bytes]:
    """The payloads of the first `count` frames of `frames` (which holds at least that many)."""
    return frame_payloads(frames, count)


def scan(
    fd: int,
    offset: int,
    count: int,
    size: int,
    index: array[int],
    interval: int,
    chunk: int = 1 << 20,
) -> tuple[int, int, str | None]:
    """Walk a journal's frames from `offset` (where message `count + 1` starts) to `size`.

    Reads `chunk` bytes at a time with `os.pread` and appends to `index` the offset of each
    message numbered `k * interval + 1`. Returns the end of the last whole valid frame, the
    number of messages up to it, and why the walk stopped before `size` (`None` if it did
    not): a zero length field, a type byte other than b"S", or a partial frame at the end.
    """
    mark = len(index) * interval  # `count` at which the next indexed message starts
    carry = b""
    base = offset  # file offset of buf[0]
    while True:
        at = base + len(carry)
        want = min(chunk, size - at)
        data = os.pread(fd, want, at) if want > 0 else b""
        if not data:
            break
        buf = carry + data if carry else data
        done = walk(buf, starts=index, number=count, mark=mark, every=interval, base=base)
        count += done.frames
        if done.fault is not None:
            return base + done.end, count, done.fault
        mark = len(index) * interval
        carry = buf[done.end :]
        base += done.end
    if carry:  # its header, if whole, was checked above: the body is what is missing
        return base, count, f"a partial frame of {len(carry)} bytes"
    return base, count, None
