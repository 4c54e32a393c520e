"""A stream of a capture written into a journal, numbered as on the wire.

Layer 3 (captures). The journal receives the first unbroken piece of the stream: from the
first message the capture proves to the message before its first gap. A journal numbers
its messages from 1; when the piece starts later (a capture that joined the session late),
the wire number of message 1 is kept in the capture times sidecar, with every message's
capture time.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path

from ..store import MessageStore
from ._files import CaptureError
from ._scan import Stream
from ._times import CaptureTimes, times_path

__all__ = ["ImportReport", "import_stream"]

_BATCH = 10_000


@dataclass
class ImportReport:
    first: int  # wire number of the first message written (0: none)
    count: int  # messages written
    left_out: int  # messages the capture holds after the first gap, not written
    gaps: list[tuple[int, int]]  # [start, end) numbers missing after what was written


def import_stream(stream: Stream, store: MessageStore, journal: Path | None = None) -> ImportReport:
    """Append the first unbroken piece of `stream` to the empty `store`; write the capture
    times beside `journal` (its path) when given."""
    if store.count:
        raise CaptureError(
            f"the journal already holds {store.count:,} messages: import into a new one"
        )
    pieces = stream.merged.pieces
    if not pieces:
        return ImportReport(0, 0, 0, [])
    piece = pieces[0]
    payloads = piece.payloads
    for start in range(0, len(payloads), _BATCH):
        store.append_many(payloads[start : start + _BATCH])
    store.flush()
    if journal is not None:
        CaptureTimes(piece.first, array("q", piece.times)).write(times_path(journal))
    rest = sum(len(p.payloads) for p in pieces[1:])
    return ImportReport(piece.first, len(payloads), rest, stream.merged.gaps)
