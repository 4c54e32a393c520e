"""Runs of numbered messages, from several connections or datagrams, made one sequence.

Layer 3 (captures). Each run is `(first, payloads, times)`: messages numbered from `first`
on. `merge` sorts them by number and keeps the first copy of each number (the earliest in
the capture among those that start at the same number); a later copy that differs is a
conflict, counted and never used. Where no run covers a number, the sequence breaks into
`pieces` with the gap between them reported, never filled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter

__all__ = ["Merged", "Piece", "RunTuple", "merge"]

RunTuple = tuple[int, list[bytes], list[int]]


@dataclass
class Piece:
    """Messages `first .. first + len(payloads) - 1`, all present, with their capture times."""

    first: int
    payloads: list[bytes] = field(default_factory=list)
    times: list[int] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.first + len(self.payloads)


@dataclass
class Merged:
    pieces: list[Piece]
    duplicates: int  # copies of numbers already held (retransmissions, replays, A/B lines)
    conflicts: int  # copies that differ from the first: a capture of two different sessions

    @property
    def count(self) -> int:
        return sum(len(p.payloads) for p in self.pieces)

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """[start, end) of each number missing between the first and the last held."""
        return [(a.end, b.first) for a, b in zip(self.pieces, self.pieces[1:], strict=False)]


def merge(runs: list[RunTuple]) -> Merged:
    """The runs made pieces. The lists of the runs that start pieces are taken over and
    extended: a caller reads nothing of `runs` after."""
    runs = sorted(runs, key=itemgetter(0))  # stable: capture order among equal starts
    pieces: list[Piece] = []
    duplicates = conflicts = 0
    piece: Piece | None = None
    cursor = 0
    for first, payloads, times in runs:
        n = len(payloads)
        if not n:
            continue
        if piece is None or first > cursor:
            # The run's own lists become the piece's (no copy: a capture's messages are held
            # once); the runs are the caller's no more.
            piece = Piece(first, payloads, times)
            pieces.append(piece)
            cursor = first + n
            continue
        if first == cursor:  # numbered on from the piece: the common case, nothing to compare
            piece.payloads += payloads
            piece.times += times
            cursor += n
            continue
        overlap = min(cursor, first + n) - first
        duplicates += overlap
        at = first - piece.first
        if piece.payloads[at : at + overlap] != payloads[:overlap]:
            conflicts += sum(
                a != b for a, b in zip(piece.payloads[at : at + overlap], payloads, strict=False)
            )
        if first + n > cursor:
            piece.payloads.extend(payloads[overlap:])
            piece.times.extend(times[overlap:])
            cursor = first + n
    return Merged(pieces, duplicates, conflicts)
