"""The packets of a capture, decoded a chunk at a time: the per-packet hot loop.

Layer 3 (captures). `segments(capture_file)` yields, per chunk read, the list of TCP
segments and UDP datagrams in it, each as `(protocol, key, sequence, flags, payload,
missing, time_ns)`, and keeps the counts (records, cut by the snapshot length, not TCP or
UDP) and the first and last capture times on a `Tally`. For pcap (what tcpdump writes) the
whole walk of a chunk, record headers through TCP/UDP headers, is one call:
`_speedups._core.pcap_walk` when the compiled fast path is built, `pure_pcap_walk` (the
reference, the same answers) otherwise. The compiled walk also makes the MoldUDP64 runs
that `_mold.mold_runs` makes of the rows (so a row may be a run of many datagrams, with no
object per datagram): the pure path makes them after. pcapng goes record by record through
`decode`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any, Final

from .._speedups import ACCELERATED
from ._files import CaptureFile
from ._mold import MOLD_RUN
from ._net import ACK, RST, SYN, TCP, decode

__all__ = ["SegmentRow", "Tally", "pure_pcap_walk", "segments"]

#: (protocol, key, sequence, flags, payload, missing, time_ns): a decoded segment or datagram
#: (typed loosely: `_mold.mold_runs` puts rows of another shape among them).
SegmentRow = tuple[Any, ...]
#: (rows, position, records, truncated, other, acks, first time, last time): see
#: `pure_pcap_walk`.
WalkResult = tuple[list[SegmentRow], int, int, int, int, int, int, int]

_RECORD: Final = {
    False: struct.Struct("<IIII").unpack_from,
    True: struct.Struct(">IIII").unpack_from,
}


def pure_pcap_walk(buf: bytes, pos: int, big: bool, scale: int, linktype: int) -> WalkResult:
    """The whole pcap records of `buf` from `pos`, decoded.

    Returns one row per TCP segment or UDP datagram (`decode`'s fields and the record's
    time in ns), the position of the first record not whole in `buf`, the records walked,
    those the snapshot length cut, those not TCP or UDP (`decode` gave None), the pure
    ACKs left out, and the first and last record's time (-1 when no record was whole).

    A pure ACK (no payload, none cut, no SYN) of a flow that an earlier row of this walk
    already opened is left out, only counted: it changes nothing downstream, and a
    SoupBinTCP capture is half ACKs. A row opens its flow unless it is an empty RST (which
    reassembly skips when the flow is new); a SYN without ACK forgets every flow (it may
    start a new connection on the same ports)."""
    if not 0 <= pos <= len(buf):
        raise ValueError(f"position {pos} outside a buffer of {len(buf)} bytes")
    record = _RECORD[big]
    size = len(buf)
    out: list[SegmentRow] = []
    append = out.append
    seen: set[bytes] = set()
    records = truncated = other = acks = 0
    first = last = -1
    while pos + 16 <= size:
        sec, frac, incl, orig = record(buf, pos)
        end = pos + 16 + incl
        if end > size:
            break
        packet = buf[pos + 16 : end]
        pos = end
        last = sec * 1_000_000_000 + frac * scale
        if first < 0:
            first = last
        records += 1
        if incl < orig:
            truncated += 1
        segment = decode(linktype, packet)
        if segment is None:
            other += 1
            continue
        protocol, key, sequence, flags, payload, missing = segment
        if protocol == TCP:
            if flags & SYN:
                if not flags & ACK:
                    seen.clear()
            elif not payload and not missing:
                if key in seen:
                    acks += 1
                    continue
                if flags & RST:
                    append((protocol, key, sequence, flags, payload, missing, last))
                    continue
            seen.add(key)
        append((protocol, key, sequence, flags, payload, missing, last))
    return out, pos, records, truncated, other, acks, first, last


def _pure_walk(buf: bytes, pos: int, big: bool, scale: int, linktype: int, _: int) -> WalkResult:
    return pure_pcap_walk(buf, pos, big, scale, linktype)


#: The walk `segments` uses. The compiled one also makes the MoldUDP64 runs that
#: `_mold.mold_runs` would make of its rows (given their kind), straight from the chunk;
#: `mold_runs` then finds none left to make.
pcap_walk: Callable[[bytes, int, bool, int, int, int], WalkResult] = _pure_walk
if ACCELERATED:
    from .._speedups._core import pcap_walk


class Tally:
    """What `segments` counted: records, cut by the snapshot length, not TCP or UDP, pure
    ACKs left out (see `pure_pcap_walk`), and the capture times of the first and last
    record (0 when there was none)."""

    __slots__ = ("acks", "first_time", "last_time", "other", "records", "truncated")

    def __init__(self) -> None:
        self.records = self.truncated = self.other = self.acks = 0
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
        rows, pos, records, truncated, other, acks, first, last = walk(
            capture.buffer, capture.pos, big, scale, linktype, MOLD_RUN
        )
        capture.pos = pos
        if records:
            if not tally.records:
                tally.first_time = first
            tally.records += records
            tally.last_time = last
            tally.truncated += truncated
            tally.other += other
            tally.acks += acks
            yield rows
        if not capture.pcap_stuck(tally.records, order):
            capture.records = tally.records
            return
