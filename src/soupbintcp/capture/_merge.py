"""Runs of numbered messages, from several connections or datagrams, made one sequence.

Layer 3 (captures). Each run is `(first, part)`: `part.count` messages numbered from `first`
on, as SoupBinTCP Sequenced Data frames back to back (2-byte length, b"S", message: exactly
what a journal holds, so they are written as they are) with one capture time each, in
memory or in the capture's spool (`_spool`). No object per message: a capture of millions of
messages holds a few objects per chunk.

`merge` sorts the runs by number and keeps the first copy of each number (the earliest in
the capture among those that start at the same number); a later copy that differs is a
conflict, counted and never used. Where no run covers a number, the sequence breaks into
`pieces` with the gap between them reported, never filled.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterator
from operator import itemgetter

from .._wire._frames import frame_payloads
from ._spool import Frames, Part, skip_frames

__all__ = ["Merged", "Piece", "RunTuple", "merge"]

#: (first, part): see the module's docstring.
RunTuple = tuple[int, Part]


class Piece:
    """Messages `first .. end - 1`, all present, in `parts` (in order)."""

    __slots__ = ("_starts", "count", "first", "parts")

    def __init__(self, first: int, part: Part) -> None:
        self.first = first
        self.count = part.count
        self.parts = [part]
        self._starts = [first]  # the number of each part's first message

    @property
    def end(self) -> int:
        return self.first + self.count

    def add(self, part: Part) -> None:
        """The next messages, numbered on from `end`."""
        self._starts.append(self.first + self.count)
        self.parts.append(part)
        self.count += part.count

    def frames(self) -> Iterator[tuple[Frames, int]]:
        """The piece's frames in order, a part at a time: `(frames, count)`."""
        for part in self.parts:
            yield part.frames(), part.count

    def all_times(self) -> Iterator[array[int]]:
        """The capture times of the piece's messages in order, a part at a time."""
        for part in self.parts:
            yield part.times()

    @property
    def first_time(self) -> int:
        return self.parts[0].times(0, 1)[0]

    @property
    def last_time(self) -> int:
        last = self.parts[-1]
        return last.times(last.count - 1)[0]

    @property
    def times(self) -> array[int]:
        """Every message's capture time (for a reader or a test: the import writes them a
        part at a time)."""
        out = array("q")
        for times in self.all_times():
            out += times
        return out

    @property
    def payloads(self) -> list[bytes]:
        """The messages as objects (for a reader or a test: the import writes the frames)."""
        out: list[bytes] = []
        for frames, count in self.frames():
            out += frame_payloads(bytes(frames), count)
        return out

    def frames_of(self, start: int, count: int) -> bytes:
        """The frames of messages `start .. start + count - 1` (all in the piece)."""
        k = bisect_right(self._starts, start) - 1
        skip = start - self._starts[k]
        out: list[Frames] = []
        while count:
            part = self.parts[k]
            frames = part.frames()
            a = skip_frames(frames, 0, skip)
            take = min(count, part.count - skip)
            out.append(frames[a : skip_frames(frames, a, take)])
            count -= take
            skip = 0
            k += 1
        return b"".join(out)

    def cut(self, start: int) -> Piece:
        """The piece from message `start` on (in the piece)."""
        if start == self.first:
            return self
        k = bisect_right(self._starts, start) - 1
        skip = start - self._starts[k]
        part = self.parts[k]
        cut = Piece(start, part.after(skip) if skip else part)
        cut.parts += self.parts[k + 1 :]
        cut._starts += self._starts[k + 1 :]
        cut.count = self.end - start
        return cut


class Merged:
    __slots__ = ("conflicts", "duplicates", "pieces")

    def __init__(self, pieces: list[Piece], duplicates: int, conflicts: int) -> None:
        self.pieces = pieces
        #: Copies of numbers already held (retransmissions, replays, A/B lines).
        self.duplicates = duplicates
        #: Copies that differ from the first: a capture of two different sessions.
        self.conflicts = conflicts

    @property
    def count(self) -> int:
        return sum(p.count for p in self.pieces)

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """[start, end) of each number missing between the first and the last held."""
        return [(a.end, b.first) for a, b in zip(self.pieces, self.pieces[1:], strict=False)]


def merge(runs: list[RunTuple]) -> Merged:
    """The runs made pieces (the parts are shared, not copied)."""
    runs = sorted(runs, key=itemgetter(0))  # stable: capture order among equal starts
    pieces: list[Piece] = []
    duplicates = conflicts = 0
    piece: Piece | None = None
    cursor = 0
    for first, part in runs:
        n = part.count
        if not n:
            continue
        if piece is None or first > cursor:
            piece = Piece(first, part)
            pieces.append(piece)
            cursor = first + n
            continue
        if first == cursor:  # numbered on from the piece: the common case, nothing to compare
            piece.add(part)
            cursor += n
            continue
        overlap = min(cursor, first + n) - first
        duplicates += overlap
        frames = part.frames()
        mine = frames[: skip_frames(frames, 0, overlap)]
        held = piece.frames_of(first, overlap)
        if held != mine:
            conflicts += sum(
                a != b
                for a, b in zip(
                    frame_payloads(held, overlap), frame_payloads(bytes(mine), overlap), strict=True
                )
            )
        if first + n > cursor:
            piece.add(part.after(overlap))
            cursor = first + n
    return Merged(pieces, duplicates, conflicts)
