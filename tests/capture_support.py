"""Helpers for the capture tests: tcpdump on loopback around the project's own peers, and
pcap files written by hand (the format's 24-byte header and 16-byte record headers, from
the pcap file format's description) for the hostile cases tcpdump cannot be made to show."""

from __future__ import annotations

import asyncio
import shutil
import struct
import subprocess
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

TCPDUMP = shutil.which("tcpdump") or "/usr/bin/tcpdump"


@asynccontextmanager
async def tcpdump(path: Path, port_filter: str) -> AsyncIterator[None]:
    """tcpdump on `lo` writing `path` (whole packets, flushed per packet) while the block
    runs; returns once tcpdump has written its last packet and exited."""
    proc = await asyncio.create_subprocess_exec(
        TCPDUMP, "-i", "lo", "-s", "0", "-U", "--immediate-mode", "-B", "65536",
        "--time-stamp-precision=nano", "-n", "-w", str(path), port_filter,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        line = await asyncio.wait_for(proc.stderr.readline(), 10)
        assert b"listening on" in line, line
        yield
        await asyncio.sleep(0.2)  # the kernel hands tcpdump the last packets
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


def pcap_file(packets: Iterable[tuple[int, bytes]], snaplen: int = 65535) -> bytes:
    """A little-endian nanosecond pcap file (magic a1b23c4d) of Ethernet frames, each cut to
    `snaplen` bytes (its original length kept in the record header, as tcpdump does)."""
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, snaplen, 1)]
    for time_ns, frame in packets:
        kept = frame[:snaplen]
        sec, ns = divmod(time_ns, 1_000_000_000)
        out.append(struct.pack("<IIII", sec, ns, len(kept), len(frame)) + kept)
    return b"".join(out)


def _ipv4(protocol: int, src: str, dst: str, body: bytes) -> bytes:
    header = struct.pack(
        ">BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0x4000, 64, protocol, 0,
        bytes(int(x) for x in src.split(".")), bytes(int(x) for x in dst.split(".")),
    )  # fmt: skip
    return b"\x00" * 12 + b"\x08\x00" + header + body  # Ethernet: MACs zero, then IPv4


def tcp_frame(
    src: tuple[str, int], dst: tuple[str, int], seq: int, payload: bytes = b"", flags: int = 0x18
) -> bytes:
    """An Ethernet/IPv4/TCP frame (ACK|PSH by default; 0x02 SYN, 0x12 SYN-ACK, 0x11 FIN)."""
    tcp = struct.pack(">HHIIBBHHH", src[1], dst[1], seq % 2**32, 0, 5 << 4, flags, 65535, 0, 0)
    return _ipv4(6, src[0], dst[0], tcp + payload)


def udp_frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    udp = struct.pack(">HHHH", src[1], dst[1], 8 + len(payload), 0)
    return _ipv4(17, src[0], dst[0], udp + payload)
