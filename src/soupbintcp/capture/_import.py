"""A stream of a capture written into a journal, numbered as on the wire.

Layer 3 (captures). A journal cannot hold a hole, so it receives one unbroken piece of the
stream: by default the first (from the first message the capture proves to the message
before its first gap); `piece` picks another, `from_sequence` the piece holding that number,
written from it. The journal's first message keeps its wire number (`FileStore(...,
first_sequence=N)`): give the store the number `choose` returns. Every message's capture
time goes to the sidecar beside the journal. What lies outside the piece is reported, never
written, never filled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..store import MessageStore
from ._files import CaptureError
from ._merge import Piece
from ._scan import Stream
from ._times import times_path, write_times

__all__ = ["ImportReport", "choose", "import_stream"]


@dataclass
class ImportReport:
    first: int  # wire number of the first message written (0: none)
    count: int  # messages written
    left_out: int  # messages the capture holds outside what was written, not written
    gaps: list[tuple[int, int]]  # [start, end) numbers missing between the first and last held
    piece: int = 1  # which piece was written, counted from 1
    pieces: int = 1  # how many pieces the stream has


def choose(stream: Stream, piece: int | None = None, from_sequence: int | None = None) -> Piece:
    """The piece of `stream` to write, cut to start at `from_sequence` when given (piece
    `piece`, counted from 1; by default the first). `CaptureError` if there is none."""
    pieces = stream.merged.pieces
    if not pieces:
        raise CaptureError(f"{stream.kind} session {stream.session!r}: no message can be numbered")
    ranges = ", ".join(f"{k}: {p.first:,}..{p.end - 1:,}" for k, p in enumerate(pieces, 1))
    if piece is not None and from_sequence is not None:
        raise CaptureError("give a piece or a first sequence number, not both")
    if from_sequence is not None:
        for p in pieces:
            if p.first <= from_sequence < p.end:
                return p.cut(from_sequence)
        raise CaptureError(
            f"the capture does not prove message {from_sequence:,} (its pieces: {ranges})"
        )
    k = 1 if piece is None else piece
    if not 1 <= k <= len(pieces):
        raise CaptureError(f"there is no piece {k} (the pieces: {ranges})")
    return pieces[k - 1]


def import_stream(
    stream: Stream,
    store: MessageStore,
    journal: Path | None = None,
    *,
    piece: int | None = None,
    from_sequence: int | None = None,
) -> ImportReport:
    """Append one unbroken piece of `stream` (see `choose`) to the empty `store`, which must
    start at the piece's first wire number (`first_sequence`); write the capture times
    beside `journal` (its path) when given."""
    chosen = choose(stream, piece, from_sequence)
    first = getattr(store, "first_sequence", 1)
    if store.count >= first:
        raise CaptureError(
            f"the journal already holds messages {first:,}..{store.count:,}: import into a new one"
        )
    if first != chosen.first:
        raise CaptureError(
            f"the piece starts at message {chosen.first:,}; the journal at {first:,} (create "
            f"it with first_sequence={chosen.first})"
        )
    for frames, count in chosen.frames():
        # A part's frames are the journal's records as they are: one write per part (a
        # part is at most a chunk of the capture or `PART` bytes of a connection).
        store.append_frames(frames if type(frames) is bytes else bytes(frames), count)
    store.flush()
    if journal is not None:
        write_times(times_path(journal), chosen.first, chosen.all_times())
    pieces = stream.merged.pieces
    number = next(k for k, p in enumerate(pieces, 1) if p.first <= chosen.first < p.end)
    return ImportReport(
        chosen.first,
        chosen.count,
        stream.merged.count - chosen.count,
        stream.merged.gaps,
        number,
        len(pieces),
    )
