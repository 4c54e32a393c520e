"""Where a capture's numbered messages wait while the capture is read: in memory up to a
budget, in a temporary file beyond it.

Layer 3 (captures). Which messages a journal receives is known only at the end of the
capture (a lower number, a re-request's answer, another login may come last), so what is
read must wait somewhere. A `Part` is `count` messages as Sequenced Data frames back to back
(what a journal holds) with one capture time each; the `Spool` keeps parts in memory until
it holds `budget` bytes and writes every later one to an unnamed temporary file (in
`directory`: `journal import --pcap` uses the journal's), read back a part at a time. Parts
stay small (a chunk of the capture, `PART` bytes of a connection), so an import of any size
runs in the budget plus a part or two.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from typing import BinaryIO, Final

from .._wire._frames import walk

__all__ = ["BUDGET", "PART", "Frames", "Part", "Spool", "skip_frames"]

#: Sequenced Data frames back to back.
Frames = bytes | bytearray
#: Bytes of messages and times held in memory before parts go to the file.
BUDGET: Final = 32 << 20
#: Bytes of one connection's messages made one part (a MoldUDP64 part is what a chunk of
#: the capture holds of one line).
PART: Final = 1 << 20


def skip_frames(frames: Frames, pos: int, count: int) -> int:
    """Where `count` frames of `frames` from `pos` end (frames this package made: lengths
    alone are read; the compiled walk when built)."""
    return walk(frames, pos, count, kind=None).end


class Spool:
    """Parts in memory up to `budget` bytes, then in a temporary file in `directory`."""

    def __init__(self, budget: int = BUDGET, directory: str | os.PathLike[str] | None = None):
        self.budget = budget
        self.directory = directory
        self.held = 0  # bytes of the parts kept in memory
        self.spilled = 0  # bytes written to the file
        self._file: BinaryIO | None = None
        self._unflushed = False

    def part(self, frames: Frames, count: int, times: array[int]) -> Part:
        """`count` messages (`frames`, one time each) kept: in memory or in the file."""
        size = len(frames)
        if self.held + size + 8 * count <= self.budget:
            self.held += size + 8 * count
            return Part(count, frames, times)
        at = self.spilled
        self._write(frames)
        self._write(times)
        return Part(count, None, None, self, at, size)

    def _write(self, data: Frames | array[int]) -> None:
        if self._file is None:
            # Unnamed (gone when closed or collected); it lives as long as the capture.
            # Buffered: an A/B capture makes a part of every datagram.
            self._file = tempfile.TemporaryFile(  # noqa: SIM115
                prefix="soupbintcp-capture-", dir=self.directory
            )
        self._file.write(data)
        self.spilled += memoryview(data).nbytes
        self._unflushed = True

    def read(self, at: int, size: int) -> bytes:
        assert self._file is not None
        if self._unflushed:
            self._file.flush()
            self._unflushed = False
        out = os.pread(self._file.fileno(), size, at)
        while len(out) < size:  # a regular file reads short only at its end: never here
            more = os.pread(self._file.fileno(), size - len(out), at + len(out))
            if not more:
                raise OSError(f"the capture's spool file ends early ({at + len(out):,})")
            out += more
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Part:
    """`count` messages numbered on from where the run holding them says, as frames, with
    one capture time each: in memory, or in the spool (`size` bytes of frames at `at`, the
    times at `times_at`)."""

    __slots__ = ("_at", "_frames", "_size", "_spool", "_times", "_times_at", "count")

    def __init__(
        self,
        count: int,
        frames: Frames | None,
        times: array[int] | None,
        spool: Spool | None = None,
        at: int = 0,
        size: int = 0,
        times_at: int | None = None,
    ) -> None:
        self.count = count
        self._frames = frames
        self._times = times
        self._spool = spool
        self._at = at
        self._size = size
        self._times_at = at + size if times_at is None else times_at

    def frames(self) -> Frames:
        if self._frames is not None:
            return self._frames
        assert self._spool is not None
        return self._spool.read(self._at, self._size)

    def times(self, start: int = 0, stop: int | None = None) -> array[int]:
        """The capture times of messages `start .. stop - 1` of the part (from 0)."""
        stop = self.count if stop is None else stop
        if self._times is not None:
            return self._times[start:stop] if start or stop != self.count else self._times
        assert self._spool is not None
        out = array("q")
        out.frombytes(self._spool.read(self._times_at + 8 * start, 8 * (stop - start)))
        return out

    def after(self, skip: int) -> Part:
        """The part's messages from its `skip`-th on (0 < skip < count)."""
        frames = self.frames()
        cut = skip_frames(frames, 0, skip)
        if self._frames is not None:
            return Part(self.count - skip, frames[cut:], self.times(skip))
        return Part(
            self.count - skip,
            None,
            None,
            self._spool,
            self._at + cut,
            self._size - cut,
            self._times_at + 8 * skip,
        )
