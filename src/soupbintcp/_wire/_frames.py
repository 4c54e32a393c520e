"""The length-prefix frame walk: the one place that hops over frames by their length fields.

Layer 1 (wire). Everything this package keeps or sends is frames back to back: a 2-byte
big-endian length of what follows, then that many bytes. Two kinds share the walk:

- packet frames (the wire, the journal): the length counts a type byte and the payload, so it
  is at least 1, and the frames a store holds all have the type byte b"S" (`kind`);
- BinaryFILE records (Nasdaq's ITCH 5.0 files, ``kind=None``): the length counts the payload
  only and may be 0.

`walk` reports where it stopped and why instead of raising, because each caller's fault has
its own error class (the peer's `RemoteProtocolError`, the caller's `LocalProtocolError`, a
corrupt file's `StoreError`) and its own words. The decoder's batch loop stays specialised
(`PacketDecoder.next_sequenced_payloads`): it is the receive hot path and its struct trick is
measured faster than this general loop.
"""

from __future__ import annotations

import struct
from array import array
from typing import Final, NamedTuple

from .._speedups import ACCELERATED

__all__ = ["LENGTH", "SEQUENCED", "Walk", "describe_fault", "frame_payloads", "hop", "walk"]

#: The type byte of Sequenced Data, the only frames a store holds.
SEQUENCED: Final = 0x53
#: The 2-byte big-endian length field in front of every frame.
LENGTH: Final = struct.Struct(">H")
_LENGTH_ONLY: Final = LENGTH.unpack_from
_LENGTH_AND_TYPE: Final = struct.Struct(">HB").unpack_from


class Walk(NamedTuple):
    """Where a `walk` stopped."""

    #: Offset just past the last whole valid frame walked (where the next frame starts).
    end: int
    #: Frames walked.
    frames: int
    #: Why the frame at `end` is not a valid frame (a zero length, a wrong type byte), or
    #: None: the walk reached its `count`, the end of the buffer, or a partial frame there.
    fault: str | None


def describe_fault(length: int, type_byte: int, kind: int = SEQUENCED) -> str:
    """Words for a frame header that `walk` refuses."""
    if not length:
        return "a zero length field"
    return f"type byte {bytes((type_byte,))!r} instead of {bytes((kind,))!r}"


def walk(
    buf: bytes | bytearray | memoryview,
    pos: int = 0,
    count: int = -1,
    *,
    kind: int | None = SEQUENCED,
    starts: array[int] | None = None,
    number: int = 0,
    mark: int = 0,
    every: int = 1,
    base: int = 0,
) -> Walk:
    """Hop over the whole frames of `buf` from `pos`, at most `count` of them (-1: all).

    With `kind`, a frame needs a length of at least 1 and that type byte: the first frame
    without them stops the walk with a `fault` (a header is checked once its 3 bytes are in
    `buf`, even if its body is not; 2 bytes of a header are a partial frame). With
    ``kind=None`` (BinaryFILE records) any length goes.
    A frame whose body runs past the end of `buf` stops the walk without a fault.

    `starts`, if given, gets ``base + offset`` of each frame numbered `mark`, `mark + every`,
    ... where the first frame walked is numbered `number` (the sparse index of a journal:
    ``every`` is its interval; ``every=1, mark=number`` records every frame).
    """
    size = len(buf)
    walked = 0
    due = mark - number if starts is not None else -1  # frames until the next start to record
    # unpack_from raises struct.error once the header is not all there: that ends the loop
    # without a bounds test per frame (as in the decoder's batch loop, measured faster).
    try:
        if kind is None:
            unpack_length = _LENGTH_ONLY
            while walked != count:
                (n,) = unpack_length(buf, pos)
                end = pos + 2 + n
                if end > size:
                    break
                if walked == due:
                    starts.append(base + pos)  # type: ignore[union-attr]  # due >= 0
                    due += every
                walked += 1
                pos = end
        else:
            unpack_header = _LENGTH_AND_TYPE
            while walked != count:
                n, type_byte = unpack_header(buf, pos)
                if type_byte != kind or not n:
                    return Walk(pos, walked, describe_fault(n, type_byte, kind))
                end = pos + 2 + n
                if end > size:
                    break
                if walked == due:
                    starts.append(base + pos)  # type: ignore[union-attr]  # due >= 0
                    due += every
                walked += 1
                pos = end
    except struct.error:
        pass  # a partial header at the end
    return Walk(pos, walked, None)


def hop(buf: bytes | bytearray | memoryview, pos: int, count: int) -> int:
    """Where `count` frames from `pos` end, by their length fields alone (frames the caller
    wrote or checked: no header is checked). Past the end of `buf` if there are fewer."""
    try:
        for _ in range(count):
            pos += ((buf[pos] << 8) | buf[pos + 1]) + 2
    except IndexError:
        return len(buf) + 1
    return pos


def frame_payloads(buf: bytes, count: int, pos: int = 0, *, typed: bool = True) -> list[bytes]:
    """The payloads of `count` frames of `buf` from `pos`, which the caller walked or wrote
    (no checks: a store reading back its own frames)."""
    out: list[bytes] = []
    append = out.append
    skip = 3 if typed else 2
    for _ in range(count):
        end = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
        append(buf[pos + skip : end])
        pos = end
    return out


# The pure loops stay reachable either way: the reference the tests compare against.
pure_walk = walk
pure_frame_payloads = frame_payloads
pure_hop = hop

if ACCELERATED:
    from .._speedups._core import frame_payloads as _frame_payloads
    from .._speedups._core import walk as _walk

    def walk(
        buf: bytes | bytearray | memoryview,
        pos: int = 0,
        count: int = -1,
        *,
        kind: int | None = SEQUENCED,
        starts: array[int] | None = None,
        number: int = 0,
        mark: int = 0,
        every: int = 1,
        base: int = 0,
    ) -> Walk:
        """As the pure `walk` (see there), by the compiled loop."""
        typed = -1 if kind is None else kind
        end, walked, n, type_byte = _walk(buf, pos, count, typed, starts, number, mark, every, base)
        return Walk(end, walked, None if n < 0 else describe_fault(n, type_byte, typed))

    def frame_payloads(buf: bytes, count: int, pos: int = 0, *, typed: bool = True) -> list[bytes]:
        """As the pure `frame_payloads`, by the compiled loop."""
        return _frame_payloads(buf, count, pos, typed)

    def hop(buf: bytes | bytearray | memoryview, pos: int, count: int) -> int:
        """As the pure `hop`, by the compiled walk of lengths alone: what indexing a batch
        of frames (`append_frames`, a capture's import) spends its time on."""
        end, walked, _, _ = _walk(buf, pos, count, -1, None, 0, 0, 1, 0)
        return end if walked == count else len(buf) + 1
