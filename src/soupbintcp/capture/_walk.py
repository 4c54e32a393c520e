"""The packets of a capture, decoded a chunk at a time: the per-packet hot loop.

Layer 3 (captures). `segments(capture_file)` yields, per chunk read, the list of TCP
segments and UDP datagrams in it, each as `(protocol, key, sequence, flags, payload,
missing, time_ns)`, and keeps the counts (records, cut by the snapshot length, not TCP or
UDP) and the first and last capture times on a `Tally`. For pcap (what tcpdump writes) the
whole walk of a chunk, record headers through TCP/UDP headers, is one call:
`_speedups._core.pcap_walk` when the compiled fast path is built, `pure_pcap_walk` (the
reference, the same answers) otherwise. pcapng goes record by record through `decode`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Final

from .._speedups import ACCELERATED
from ._files import CaptureFile
from ._net import decode

__all__ = ["SegmentRow", "Tally", "pure_pcap_walk", "segments"]

#: (protocol, key, sequence, flags, payload, missing, time_ns): a decoded segment or datagram.
SegmentRow = tuple[int, bytes, int, int, bytes, int, int]
#: (rows, position, records, truncated, other, first time, last time): see `pure_pcap_walk`.
WalkResult = tuple[list[SegmentRow], int, int, int, int, int, int]

_RECORD: Final = {
    False: struct.Struct("<IIII").unpack_from,
    True: struct.Struct(">IIII").unpack_from,
}


def pure_pcap_walk(buf: bytes, pos: int, big: bool, scale: int, linktype: int) -> WalkResult:
    """The whole pcap records of `buf` from `pos`, decoded.

    Returns one row per TCP segment or UDP datagram (`decode`'s fields and the record's
    time in ns), the position of the first record not whole in `buf`, the records walked,
    those the snapshot length cut, those not TCP or UDP (`decode` gave None), and the first
    and last record's time (-1 when no record was whole)."""
    if not 0 <= pos <= len(buf):
        raise ValueError(f"position {pos} outside a buffer of {len(buf)} bytes")
    record = _RECORD[big]
    size = len(buf)
    out: list[SegmentRow] = []
    append = out.append
    records = truncated = other = 0
    first = last = -1
    while pos + 16 <= size:
        sec, frac, incl, orig = record(buf, pos)
        end = pos + 16 + incl
        if end > size:
            break
        last = sec * 1_000_000_000 + frac * scale
        if first < 0:
            first = last
        records += 1
        if incl < orig:
            truncated += 1
        segment = decode(linktype, buf[pos + 16 : end])
        if segment is None:
            other += 1
        else:
            append((*segment, last))
        pos = end
    return out, pos, records, truncated, other, first, last


pcap_walk: Callable[[bytes, int, bool, int, int], WalkResult] = pure_pcap_walk
if ACCELERATED:
    from .._speedups._core import pcap_walk


class Tally:
    """What `segments` counted: records, cut by the snapshot length, not TCP or UDP, and the
    capture times of the first and last record (0 when there was none)."""

    __slots__ = ("first_time", "last_time", "other", "records", "truncated")

    def __init__(self) -> None:
        self.records = self.truncated = self.other = 0
        self.first_time = self.last_time = 0


def segments(capture: CaptureFile, tally: Tally) -> Iterator[list[SegmentRow]]:
    """The TCP segments and UDP datagrams of `capture`, a list per chunk read."""
    if capture.format == "pcap":
        yield from _pcap(capture, tally)
        return
    rows: list[SegmentRow] = []
    for time_ns, linktype, packet, length in capture:
        if not tally.records:
            tally.first_time = time_ns
        tally.records += 1
        tally.last_time = time_ns
        if len(packet) < length:
            tally.truncated += 1
        segment = decode(linktype, packet)
        if segment is None:
            tally.other += 1
        else:
            rows.append((*segment, time_ns))
            if len(rows) >= 4096:
                yield rows
                rows = []
    yield rows


def _pcap(capture: CaptureFile, tally: Tally) -> Iterator[list[SegmentRow]]:
    header = capture.pcap_header()
    if header is None:
        return
    big, scale, linktype = header
    order = ">" if big else "<"
    walk = pcap_walk
    while True:
        rows, pos, records, truncated, other, first, last = walk(
            capture.buffer, capture.pos, big, scale, linktype
        )
        capture.pos = pos
        if records:
            if not tally.records:
                tally.first_time = first
            tally.records += records
            tally.last_time = last
            tally.truncated += truncated
            tally.other += other
            yield rows
        if not capture.pcap_stuck(tally.records, order):
            capture.records = tally.records
            return
