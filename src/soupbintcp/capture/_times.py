"""Capture times beside a journal: `<journal>.times`, one nanosecond count per message.

Layer 3 (captures). The journal's record format is the store's; what a capture adds to it
(when each message was captured) lives in this sidecar so that the journal stays exactly
what a server writes. Layout: the 8-byte magic, a 4-byte version, the wire sequence number
of the journal's first message (8 bytes), then one little-endian signed 8-byte time per
message, in the journal's order: time i belongs to its (i + 1)-th record.

The journal itself now carries its first wire number (`FileStore(first_sequence=N)`), so
the number here only repeats it. Imports made before that numbered their journal from 1 and
kept the wire number here alone; their sidecars are read the same way.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .._speedups import ACCELERATED
from ._files import CaptureError

__all__ = ["CaptureTimes", "times_array", "times_path", "write_times"]

_MAGIC: Final = b"SBTTIMES"
_HEADER: Final = struct.Struct("<8sIQ")
_VERSION: Final = 1


def pure_times_array(times: list[int]) -> array[int]:
    """The capture times of a piece as the sidecar holds them. The compiled twin
    (`_core.times_array`) converts an int once per packet, not once per message."""
    return array("q", times)


def times_array(times: list[int]) -> array[int]:
    if ACCELERATED:
        done = _compiled_times_array(times)  # None: not a list of 64-bit ints; the pure raises
        if done is not None:
            return done
    return pure_times_array(times)


if ACCELERATED:
    from .._speedups._core import times_array as _compiled_times_array


def times_path(journal: Path) -> Path:
    """Where the capture times of `journal` are kept."""
    return journal.with_name(journal.name + ".times")


def write_times(path: Path, first_sequence: int, parts: Iterable[array[int]]) -> None:
    """The sidecar of a journal from `first_sequence`, its times given a part at a time
    (what `CaptureTimes.write` writes, without holding them all)."""
    with path.open("wb") as out:
        out.write(_HEADER.pack(_MAGIC, _VERSION, first_sequence))
        for times in parts:
            times.tofile(out)


@dataclass
class CaptureTimes:
    """`first_sequence`: the wire number of the journal's first message; `times[i]`:
    capture time (ns since the epoch) of the journal's (i + 1)-th message."""

    first_sequence: int
    times: array[int]

    def write(self, path: Path) -> None:
        write_times(path, self.first_sequence, [self.times])

    @classmethod
    def read(cls, path: Path) -> CaptureTimes:
        data = path.read_bytes()
        if len(data) < _HEADER.size or data[:8] != _MAGIC:
            raise CaptureError(f"{path} is not a capture times file")
        _, version, first = _HEADER.unpack_from(data)
        if version != _VERSION:
            raise CaptureError(f"{path}: capture times version {version} is not known")
        times = array("q")
        body = data[_HEADER.size :]
        times.frombytes(body[: len(body) // 8 * 8])
        return cls(first, times)
