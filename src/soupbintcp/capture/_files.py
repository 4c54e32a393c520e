"""Capture files in: the records of a pcap or pcapng file, with their capture times.

Layer 3 (captures), stdlib only. `CaptureFile(source)` yields `(time_ns, linktype, packet,
original_length)` per captured packet, whatever the file's byte order, time resolution
(microseconds, nanoseconds, pcapng's `if_tsresol`) or format. The file is read a chunk
(`CHUNK`) at a time, never whole: a capture of any size reads in the same memory. A file
that ends inside a record (a capture cut off by a full disk or a killed tcpdump) yields
every whole record and then records the fault in `CaptureFile.fault`: the caller reports
it, never guesses.

Hand-written rather than dpkt's or scapy's readers: the core takes no runtime dependency,
and bench/bench_pcap.py measures this reader against both in the same run (the figures are
in the closing note and the bench report).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from typing import BinaryIO, Final

from .._errors import SoupBinTCPError

__all__ = ["CHUNK", "LINKTYPE_ETHERNET", "LINKTYPE_NULL", "CaptureError", "CaptureFile"]

LINKTYPE_NULL: Final = 0  # BSD loopback: 4-byte address family in host order
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101  # bare IPv4 or IPv6
LINKTYPE_LINUX_SLL: Final = 113  # tcpdump -i any
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276

_PCAP_MAGIC: Final = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_PCAPNG_SHB: Final = b"\x0a\x0d\x0d\x0a"


#: The latest capture time kept, in ns since the epoch: a signed 64-bit count (the sidecar's).
_LATEST_NS: Final = (1 << 63) - 1
#: How much of the file is read at a time: memory stays this (plus one record) whatever the
#: capture's size.
CHUNK: Final = 1 << 20
#: A record or block longer than this is taken for damage, not read: a pcap record holds at
#: most the snapshot length (tcpdump's largest is 262,144 bytes).
MAX_RECORD: Final = 1 << 26


class CaptureError(SoupBinTCPError):
    """A capture cannot be read as asked: not a pcap or pcapng file, no such stream."""


class CaptureFile:
    """The records of one capture, read from `source` a chunk at a time.

    `source` is the file's bytes or a binary file open for reading (read from where it
    is). Iterate for `(time_ns, linktype, packet, original_length)`; `packet` is the
    captured bytes, `original_length` the length on the wire (larger when the snapshot
    length cut the packet). After iteration, `records` says how many were read and `fault`
    why reading stopped early (None: the file ended cleanly)."""

    def __init__(self, source: bytes | bytearray | memoryview | BinaryIO) -> None:
        if isinstance(source, (bytes, bytearray, memoryview)):
            source = io.BytesIO(source)
        self._file: BinaryIO = source
        self.buffer = b""  # what was read and not yet walked, from `pos` on
        self.pos = 0
        self.fill(4)
        head = self.buffer[:4]
        if head in _PCAP_MAGIC:
            self.format = "pcap"
        elif head == _PCAPNG_SHB:
            self.format = "pcapng"
        else:
            raise CaptureError(f"not a pcap or pcapng file (it starts {bytes(head)!r})")
        self.records = 0
        self.fault: str | None = None

    def fill(self, need: int) -> bool:
        """Read on until `need` bytes from `pos` are held; False if the file ends first."""
        have = len(self.buffer) - self.pos
        if have >= need:
            return True
        parts = [self.buffer[self.pos :]]
        while have < need:
            more = self._file.read(max(CHUNK, need - have))
            if not more:
                break
            parts.append(more)
            have += len(more)
        self.buffer = b"".join(parts)
        self.pos = 0
        return have >= need

    def pcap_header(self) -> tuple[bool, int, int] | None:
        """(big-endian, ns per time unit, linktype) of a pcap file, its 24-byte header
        consumed; None (with `fault` set) when the header is cut short."""
        if not self.fill(24):
            self.fault = f"the file header is cut short ({len(self.buffer)} of 24 bytes)"
            return None
        order, scale = _PCAP_MAGIC[self.buffer[:4]]
        linktype = struct.unpack_from(order + "I", self.buffer, 20)[0] & 0x0FFFFFFF
        self.pos = 24
        return order == ">", scale, linktype

    def pcap_stuck(self, count: int, order: str) -> bool:
        """After walking the whole records held: read on for the next one; False, with
        `fault` set when the file ended inside it, once the file has no more."""
        if not self.fill(16):
            have = len(self.buffer) - self.pos
            if have:
                self.fault = f"record {count + 1}'s header is cut short ({have} of 16 bytes)"
            return False
        incl = struct.unpack_from(order + "I", self.buffer, self.pos + 8)[0]
        if incl > MAX_RECORD:
            self.fault = f"record {count + 1} claims {incl:,} bytes: not a packet record"
            return False
        if not self.fill(16 + incl):
            have = len(self.buffer) - self.pos - 16
            self.fault = f"record {count + 1} is cut short: {have} of {incl} bytes"
            return False
        return True

    def __iter__(self) -> Iterator[tuple[int, int, bytes, int]]:
        if self.format == "pcap":
            return self._pcap()
        return self._pcapng()

    # --- pcap: a 24-byte header, then 16-byte record headers --------------------------

    def _pcap(self) -> Iterator[tuple[int, int, bytes, int]]:
        header = self.pcap_header()
        if header is None:
            return
        big, scale, linktype = header
        order = ">" if big else "<"
        record = struct.Struct(order + "IIII").unpack_from
        count = 0
        try:
            while True:
                data, pos, size = self.buffer, self.pos, len(self.buffer)
                while pos + 16 <= size:
                    sec, frac, incl, orig = record(data, pos)
                    end = pos + 16 + incl
                    if end > size:
                        break
                    count += 1
                    yield (sec * 1_000_000_000 + frac * scale, linktype, data[pos + 16 : end], orig)
                    pos = end
                self.pos = pos
                if not self.pcap_stuck(count, order):
                    return
        finally:
            self.records = count

    # --- pcapng: blocks (section header, interface descriptions, packets) -------------

    def _pcapng(self) -> Iterator[tuple[int, int, bytes, int]]:
        order = "<"
        links: list[tuple[int, int, int]] = []  # per interface: linktype, ns per unit num, den
        count = 0
        offset = 0  # of the block in the file
        try:
            while True:
                if not self.fill(12):
                    if len(self.buffer) > self.pos:
                        self.fault = f"block at offset {offset} is cut short"
                    return
                data, pos = self.buffer, self.pos
                if data[pos : pos + 4] == _PCAPNG_SHB:
                    bom = data[pos + 8 : pos + 12]
                    order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
                    links = []
                kind, length = struct.unpack_from(order + "II", data, pos)
                if length < 12 or length % 4 or length > MAX_RECORD or not self.fill(length):
                    self.fault = (
                        f"block at offset {offset} is cut short or malformed ({length} bytes)"
                    )
                    return
                data, pos = self.buffer, self.pos
                body = pos + 8
                if kind == 1:  # Interface Description Block
                    linktype = struct.unpack_from(order + "H", data, body)[0]
                    links.append((linktype, *_tsresol(data, body + 8, pos + length - 4, order)))
                elif kind == 6:  # Enhanced Packet Block
                    iface, hi, lo, incl, orig = struct.unpack_from(order + "IIIII", data, body)
                    start = body + 20
                    if iface >= len(links) or start + incl > pos + length - 4:
                        self.fault = f"packet block at offset {offset} is malformed"
                        return
                    linktype, num, den = links[iface]
                    count += 1
                    yield (
                        # Past 2262 (a 64-bit unit count, scaled): held at the latest time
                        # the journal's sidecar can hold.
                        min(((hi << 32) | lo) * num // den, _LATEST_NS),
                        linktype,
                        data[start : start + incl],
                        orig,
                    )
                elif kind == 3:  # Simple Packet Block: no time, interface 0
                    orig = struct.unpack_from(order + "I", data, body)[0]
                    incl = min(orig, length - 16)
                    if links:
                        count += 1
                        yield (0, links[0][0], data[body + 4 : body + 4 + incl], orig)
                self.pos = pos + length
                offset += length
        finally:
            self.records = count


def _tsresol(data: bytes, pos: int, end: int, order: str) -> tuple[int, int]:
    """An interface's time unit as a fraction of a nanosecond (`if_tsresol`, option 9)."""
    while pos + 4 <= end:
        code, length = struct.unpack_from(order + "HH", data, pos)
        if code == 0:
            break
        if code == 9 and length >= 1:
            value = data[pos + 4]
            if value & 0x80:  # a power of two
                return 1_000_000_000, 1 << (value & 0x7F)
            exponent = value
            return (10 ** max(0, 9 - exponent), 10 ** max(0, exponent - 9))
        pos += 4 + (length + 3) // 4 * 4
    return 1_000, 1  # the default: microseconds
