"""pcap import: packets/s and MB/s for SoupBinTCP and MoldUDP64 captures, our stdlib reader
against dpkt's and scapy's in the same run, and the A/B listener against a single line.

The captures are made here, in memory, in the pcap format (nanosecond, Ethernet): a
SoupBinTCP connection whose server sends an ITCH-like feed (11 to 50-byte messages) in
1,448-byte segments with the client's pure ACKs between them, as tcpdump records one; and a
MoldUDP64 session in datagrams of up to 1,400 bytes. Figures are CPU time
(`time.process_time`), medians of `--runs`:

- import: `soupbintcp.capture.Capture(data)`, everything `journal import --pcap` does but
  writing the journal (read, decode, reassemble, frame, number, merge); in this process
  (compiled fast path if built) and in a child with SOUPBINTCP_PURE_PYTHON=1;
- readers: the records read and decoded down to the TCP/UDP payload, by our reader
  (`CaptureFile` + `_net.decode`), dpkt (`pcap.Reader` + `Ethernet`) and scapy
  (`RawPcapReader`, and `Ether()` dissection on a slice: it is two orders slower);
- A/B: MoldUDP64 datagrams through the sans-IO listener alone, and through `LineArbiter`
  with every datagram arriving twice (lines A and B), messages delivered per second.

    python bench/bench_pcap.py [--runs 3] [--packets 200000] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from benchlib import itch_payloads, write_json
from soupbintcp.capture import Capture, CaptureFile
from soupbintcp.capture._net import decode

BENCH = Path(__file__).resolve().parent
CLIENT = (bytes([10, 0, 0, 2]), 40001)
SERVER = (bytes([10, 0, 0, 1]), 7000)
MSS = 1448


def _frame(src: tuple[bytes, int], dst: tuple[bytes, int], proto: int, l4: bytes) -> bytes:
    ip = struct.pack(
        ">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0, src[0], dst[0]
    )
    return b"\0" * 12 + b"\x08\x00" + ip + l4


def _tcp(
    src: tuple[bytes, int], dst: tuple[bytes, int], seq: int, flags: int, data: bytes = b""
) -> bytes:
    head = struct.pack(
        ">HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, 0, 5 << 4, flags, 65535, 0, 0
    )
    return _frame(src, dst, 6, head + data)


def _pcap(frames: list[bytes]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)]
    t = 1_765_000_000 * 10**9
    for i, f in enumerate(frames):
        sec, ns = divmod(t + i * 1000, 10**9)
        out.append(struct.pack("<IIII", sec, ns, len(f), len(f)) + f)
    return b"".join(out)


def soup_capture(packets: int, mss: int = MSS) -> tuple[bytes, int]:
    """A SoupBinTCP capture of about `packets` packets, half of them data segments of `mss`
    bytes; (bytes, messages in it)."""
    segments = packets // 2
    payloads = itch_payloads(segments * mss // 30 + 100)
    login = b"\x00\x2fL" + b"user  secret    " + b" " * 10 + b"1".rjust(20)
    stream = bytearray(b"\x00\x1fA" + b"S1".rjust(10) + b"1".rjust(20))
    count = 0
    for p in payloads:
        if len(stream) >= segments * mss:
            break
        stream += (len(p) + 1).to_bytes(2, "big") + b"S" + p
        count += 1
    frames = [_tcp(CLIENT, SERVER, 100, 0x02), _tcp(SERVER, CLIENT, 5000, 0x12)]
    frames.append(_tcp(CLIENT, SERVER, 101, 0x18, login))
    for off in range(0, len(stream), mss):
        frames.append(_tcp(SERVER, CLIENT, 5001 + off, 0x18, bytes(stream[off : off + mss])))
        frames.append(_tcp(CLIENT, SERVER, 101 + len(login), 0x10))
    return _pcap(frames), count


def mold_datagrams(packets: int, size: int = 1400) -> tuple[list[bytes], int]:
    from soupbintcp._wire._moldudp64 import pack_downstream, session_field

    payloads = itch_payloads(packets * size // 30 + 100)
    field = session_field("MOLD1")
    out: list[bytes] = []
    start = 0
    while len(out) < packets and start < len(payloads):
        datagram, n = pack_downstream(field, start + 1, payloads, start, size)
        out.append(datagram)
        start += n
    return out, start


def mold_capture(packets: int, size: int = 1400) -> tuple[bytes, int]:
    datagrams, count = mold_datagrams(packets, size)
    src, dst = (bytes([10, 0, 0, 9]), 9000), (bytes([239, 1, 1, 1]), 5000)
    frames = [
        _frame(src, dst, 17, struct.pack(">HHHH", 9000, 5000, 8 + len(d), 0) + d) for d in datagrams
    ]
    return _pcap(frames), count


#: The captures measured: full packets (1,448-byte segments, 1,400-byte datagrams, about 45
#: messages each) and small ones (about 2 messages a packet: a quiet feed, or order entry).
LABELS = {
    "soup": "SoupBinTCP, full segments",
    "soup-small": "SoupBinTCP, ~2 msgs/segment",
    "mold": "MoldUDP64, full datagrams",
    "mold-small": "MoldUDP64, ~2 msgs/datagram",
}


def captures(packets: int) -> dict[str, tuple[bytes, int]]:
    """Full packets: a quarter as many (a capture of 70 MB for 200,000 packets asked)."""
    return {
        "soup": soup_capture(packets // 4),
        "soup-small": soup_capture(packets, 64),
        "mold": mold_capture(packets // 4),
        "mold-small": mold_capture(packets, 84),
    }


def cpu(run: Callable[[], Any], runs: int) -> float:
    """Median CPU seconds of `run()`."""
    times = []
    for _ in range(runs):
        t = time.process_time()
        run()
        times.append(time.process_time() - t)
    return statistics.median(times)


def ours(data: bytes) -> int:
    n = 0
    for _, linktype, packet, _ in CaptureFile(data):
        if decode(linktype, packet) is not None:
            n += 1
    return n


def ours_records(data: bytes) -> int:
    return sum(1 for _ in CaptureFile(data))


def _module(name: str) -> Any:
    """An optional library (the bench extra), untyped here whether installed or not."""
    return importlib.import_module(name)


def dpkt_reader(data: bytes) -> int:
    dpkt = _module("dpkt")

    n = 0
    for _, buf in dpkt.pcap.Reader(io.BytesIO(data)):
        l4 = dpkt.ethernet.Ethernet(buf).data.data
        if l4.data is not None:
            n += 1
    return n


def dpkt_records(data: bytes) -> int:
    dpkt = _module("dpkt")

    return sum(1 for _ in dpkt.pcap.Reader(io.BytesIO(data)))


def scapy_records(data: bytes) -> int:
    raw_reader = _module("scapy.utils").RawPcapReader
    n = 0
    for _ in raw_reader(io.BytesIO(data)):
        n += 1
    return n


def scapy_dissect(data: bytes, limit: int) -> int:
    ether = _module("scapy.layers.l2").Ether
    raw_reader = _module("scapy.utils").RawPcapReader
    n = 0
    for buf, _ in raw_reader(io.BytesIO(data)):
        ether(buf).payload.payload.payload  # noqa: B018 - dissection is the point
        n += 1
        if n >= limit:
            break
    return n


def ab(datagrams: list[bytes], runs: int) -> dict[str, float]:
    from soupbintcp._session import LineArbiter, MoldListener

    def single() -> int:
        listener = MoldListener()
        n = 0
        for d in datagrams:
            for run in listener.receive_datagram(d, 0.0):
                n += len(run.messages)
        return n

    def both() -> int:
        arbiter = LineArbiter(MoldListener(request_delay=0.02), ["A", "B"])
        n = 0
        for d in datagrams:
            for run in arbiter.receive_datagram(d, 0.0, 0):
                n += len(run.messages)
            arbiter.receive_datagram(d, 0.0, 1)
        return n

    messages = single()
    assert both() == messages
    return {"messages": messages, "single": cpu(single, runs), "ab": cpu(both, runs)}


def measure(packets: int, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"pure": bool(os.environ.get("SOUPBINTCP_PURE_PYTHON"))}
    for name, (data, messages) in captures(packets).items():
        capture = Capture(data)
        (stream,) = capture.streams
        assert stream.merged.count == messages, (stream.merged.count, messages)
        out[name] = {
            "packets": capture.records,
            "bytes": len(data),
            "messages": messages,
            "import": cpu(partial(Capture, data), runs),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.packets, args.runs)))
        return
    import soupbintcp

    results: dict[str, Any] = {"accelerated": soupbintcp.accelerated}
    results["import"] = measure(args.packets, args.runs)
    env = {**os.environ, "SOUPBINTCP_PURE_PYTHON": "1"}
    child = subprocess.run(
        [sys.executable, __file__, "--child", "--runs", str(args.runs),
         "--packets", str(args.packets)],
        capture_output=True, text=True, env=env, check=True, cwd=BENCH,
    )  # fmt: skip
    results["import_pure"] = json.loads(child.stdout)
    readers: dict[str, Any] = {}
    for name, (data, _) in captures(args.packets).items():
        packets = ours_records(data)
        row: dict[str, Any] = {"packets": packets, "bytes": len(data)}
        row["ours_records"] = cpu(partial(ours_records, data), args.runs)
        row["ours_decoded"] = cpu(partial(ours, data), args.runs)
        for key, fn in (("dpkt_records", dpkt_records), ("dpkt_decoded", dpkt_reader),
                        ("scapy_records", scapy_records)):  # fmt: skip
            try:
                row[key] = cpu(partial(fn, data), args.runs)
            except ImportError:
                row[key] = None
        limit = min(packets, 20_000)
        try:
            dissect = cpu(partial(scapy_dissect, data, limit), 1)
            row["scapy_decoded"] = dissect * packets / limit
        except ImportError:
            row["scapy_decoded"] = None
        readers[name] = row
    results["readers"] = readers
    datagrams, _ = mold_datagrams(args.packets // 4)
    results["ab"] = ab(datagrams, args.runs)
    results["markdown"] = section(results)
    print("\n".join(results["markdown"]))
    write_json(args.json, results)


def _rate(n: float, seconds: float | None) -> str:
    if not seconds:
        return "-"
    value = n / seconds
    return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.0f} k"


def section(r: dict[str, Any]) -> list[str]:
    md = ["## pcap import (issue 25)", ""]
    md += [
        "CPU time, medians; captures made in memory (SoupBinTCP: 1,448-byte segments and the",
        "client's ACKs; MoldUDP64: 1,400-byte datagrams; ITCH-like messages of 11-50 bytes).",
        "",
        "| capture | path | packets/s | MB/s | messages/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, label in (("import", "compiled" if r["accelerated"] else "pure (no compiled build)"),
                       ("import_pure", "pure (SOUPBINTCP_PURE_PYTHON=1)")):  # fmt: skip
        for name in LABELS:
            row = r[key][name]
            s = row["import"]
            md.append(
                f"| {LABELS[name]} | {label} | {_rate(row['packets'], s)} | "
                f"{row['bytes'] / s / 1e6:.0f} | {_rate(row['messages'], s)} |"
            )
    md += ["", "Readers alone (records; records decoded to the TCP/UDP payload), packets/s:", ""]
    md += [
        "| capture | ours: records | ours: decoded | dpkt: records | dpkt: decoded "
        "| scapy: records | scapy: dissected |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in r["readers"].items():
        n = row["packets"]
        keys = ("ours_records", "ours_decoded", "dpkt_records", "dpkt_decoded")
        cells = [_rate(n, row[k]) for k in (*keys, "scapy_records", "scapy_decoded")]
        md.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    a = r["ab"]
    md += [
        "",
        "A/B arbitration (sans-IO listener, every datagram twice for A/B): "
        f"single line {_rate(a['messages'], a['single'])} msg/s, "
        f"A/B {_rate(a['messages'], a['ab'])} msg/s "
        f"({a['single'] / a['ab']:.2f}x the single line's rate).",
        "",
    ]
    return md


if __name__ == "__main__":
    main()
