"""pcap import: packets/s and MB/s for SoupBinTCP and MoldUDP64 captures, before and after
issue 25's second round in the same run, our stdlib reader against dpkt's and scapy's, and
the A/B listener against a single line.

The captures are made here in the pcap format (nanosecond, Ethernet) and written to files: a
SoupBinTCP connection whose server sends an ITCH-like feed (11 to 50-byte messages) in
1,448-byte segments with the client's pure ACKs between them, as tcpdump records one; and a
MoldUDP64 session in datagrams of up to 1,400 bytes; each also with small packets (about 2
messages each). Figures are CPU time (`time.process_time`) of what `journal import --pcap`
does but writing the journal (`soupbintcp.cli._captures.read_capture(path)`: read, decode,
reassemble, frame, number, merge), in child processes:

- after (this tree) and before (`--before SRC`: a checkout with its extension built; by
  default the tree of the commit before `capture/_walk.py` came, extracted and built here),
  each compiled and pure (SOUPBINTCP_PURE_PYTHON=1), interleaved round by round (`--runs`);
  medians and ranges over the rounds, with the load average;
- peak memory: the growth of the child's peak resident set while it imports the largest
  capture (before: the whole file in memory; after: a chunk at a time);
- readers: the records read and decoded down to the TCP/UDP payload, by ours (`CaptureFile`,
  and the chunk walk `_walk.segments` the import uses), dpkt (`pcap.Reader` + `Ethernet`)
  and scapy (`RawPcapReader`, and `Ether()` dissection on a slice: two orders slower);
- A/B: MoldUDP64 datagrams through the sans-IO listener alone, and through `LineArbiter`
  with every datagram arriving twice (lines A and B), messages delivered per second.

    python bench/bench_pcap.py [--runs 3] [--packets 200000] [--before SRC] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from benchlib import itch_payloads, write_json
from soupbintcp.capture import CaptureFile

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
    """Rows of the chunk walk the import uses (pure ACKs are counted there, not handed out)."""
    # Here, not at the top: the children that measure the code before it import this file.
    from soupbintcp.capture._walk import Tally, segments

    return sum(len(rows) for rows in segments(CaptureFile(data), Tally()))


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


# --- the import, before and after, compiled and pure: child processes ------------------

TREES = ("after", "before")
MODES = ("compiled", "pure")
BASELINE_OF = "src/soupbintcp/capture/_walk.py"  # "before" is the commit before it came


def child(files: dict[str, str], rss: bool) -> dict[str, Any]:
    """In the child: CPU seconds of `read_capture` and of the journal's writing per
    capture, or the peak memory growth while importing (both) the one capture given."""
    import soupbintcp
    from soupbintcp.cli._captures import read_capture

    out: dict[str, Any] = {"accelerated": soupbintcp.accelerated}
    for name, path in files.items():
        before = _memory("VmRSS")  # now: the peak may have been higher during the imports
        t = time.process_time()
        capture = read_capture(Path(path))
        out[name] = {
            "seconds": time.process_time() - t,
            "packets": capture.records,
            "messages": sum(s.merged.count for s in capture.streams),
        }
        out[name]["write_seconds"] = _write(capture)
        if rss:  # the whole import's peak: reading and writing
            out[name]["rss_grown"] = _memory("VmHWM") - before
            break
    return out


def _write(capture: Any) -> float:
    """CPU seconds of the rest of `journal import --pcap`: the first stream's first piece
    into a new journal with its capture-time sidecar (`import_stream`)."""
    from soupbintcp.capture import choose, import_stream
    from soupbintcp.store import FileStore

    stream = capture.streams[0]
    with tempfile.TemporaryDirectory(prefix="bench-pcap-write-") as tmp:
        journal = Path(tmp) / "out.soup"
        t = time.process_time()
        store = FileStore(journal, first_sequence=choose(stream).first)
        try:
            import_stream(stream, store, journal)
        finally:
            store.close()
        return time.process_time() - t


def _memory(field: str) -> int:
    """Resident memory now (VmRSS) or at its peak (VmHWM), in bytes (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def baseline_source(into: Path) -> Path | None:
    """The tree of the commit before `BASELINE_OF` came, its extension built; None if git,
    the history or a compiler is not there."""
    root = BENCH.parent
    try:
        added = subprocess.run(
            ["git", "log", "--format=%H", "--diff-filter=A", "-1", "--", BASELINE_OF],
            cwd=root, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        if not added:
            return None
        archive = subprocess.run(
            ["git", "archive", f"{added}^"], cwd=root, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
        subprocess.run(
            [sys.executable, "hatch_build.py"], cwd=into, check=True, capture_output=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return into


def run_child(
    tree: Path | None, mode: str, files: dict[str, str], rss: bool = False
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "SOUPBINTCP_PURE_PYTHON"}
    if mode == "pure":
        env["SOUPBINTCP_PURE_PYTHON"] = "1"
    if tree is not None:
        env["PYTHONPATH"] = str(tree / "src")  # ahead of the installed package
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps({"files": files, "rss": rss})],
        capture_output=True, text=True, env=env, check=True, cwd=BENCH, timeout=900,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    if result["accelerated"] != (mode == "compiled"):
        raise RuntimeError(f"{tree or 'this tree'} in {mode} mode ran the other path")
    return result


def measure(files: dict[str, str], runs: int, before: Path | None) -> dict[str, Any]:
    """figures[tree][mode][capture] = pkts/s per round; rounds interleave trees and modes."""
    trees: dict[str, Path | None] = {"after": None}
    if before is not None:
        trees["before"] = before
    figures: dict[str, Any] = {t: {m: {} for m in MODES} for t in trees}
    sizes: dict[str, Any] = {}
    for _ in range(runs):
        for tree, source in trees.items():
            for mode in MODES:
                got = run_child(source, mode, files)
                for name in files:
                    row = got[name]
                    sizes[name] = {k: row[k] for k in ("packets", "messages")}
                    figures[tree][mode].setdefault(name, []).append(row["seconds"])
                    writes = figures[tree].setdefault("write-" + mode, {})
                    writes.setdefault(name, []).append(row["seconds"] + row["write_seconds"])
    # Peak memory growth importing the largest capture, a fresh process each.
    largest = max(files, key=lambda n: Path(files[n]).stat().st_size)
    memory = {
        tree: run_child(source, "compiled", {largest: files[largest]}, rss=True)[largest][
            "rss_grown"
        ]
        for tree, source in trees.items()
    }
    for name, path in files.items():
        sizes[name]["bytes"] = Path(path).stat().st_size
    return {"seconds": figures, "sizes": sizes, "memory": memory, "largest": largest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--before", type=Path, help="a checkout (extension built) to compare")
    parser.add_argument("--before-label", help="what --before is, for the report")
    parser.add_argument("--no-before", action="store_true", help="measure this tree only")
    parser.add_argument("--json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(child(spec["files"], spec["rss"])))
        return
    import soupbintcp

    results: dict[str, Any] = {"accelerated": soupbintcp.accelerated, "runs": args.runs}
    results["load"] = [os.getloadavg()]
    made = captures(args.packets)
    with tempfile.TemporaryDirectory(prefix="bench-pcap-") as tmp:
        files = {}
        for name, (data, _) in made.items():
            path = Path(tmp) / f"{name}.pcap"
            path.write_bytes(data)
            files[name] = str(path)
        before = args.before
        if before is None and not args.no_before:
            (Path(tmp) / "before").mkdir()
            before = baseline_source(Path(tmp) / "before")
        results["before"] = args.before_label or str(
            args.before or f"the commit before {BASELINE_OF} came"
        )
        if before is None:
            results["before"] = None
        results["import"] = measure(files, args.runs, before)
    results["load"].append(os.getloadavg())
    for name, (_, messages) in made.items():
        got = results["import"]["sizes"][name]["messages"]
        assert got == messages, (name, got, messages)
    readers: dict[str, Any] = {}
    for name, (data, _) in made.items():
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


def _spread(n: float, seconds: list[float]) -> str:
    """Median rate and range over the rounds."""
    rates = sorted(n / s for s in seconds if s)
    if not rates:
        return "-"
    mid = statistics.median(rates)
    return f"{_rate(mid, 1)} ({_rate(rates[0], 1)}-{_rate(rates[-1], 1)})"


def section(r: dict[str, Any]) -> list[str]:
    imp = r["import"]
    secs, sizes = imp["seconds"], imp["sizes"]
    before = "before" in secs
    load = ", ".join(f"{a:.1f}" for a, _, _ in r["load"])
    md = ["## pcap import (issue 25)", ""]
    md += [
        "Packets (pcap records) per CPU second of everything `journal import --pcap` does but",
        f"writing the journal, from a capture file; medians over {r['runs']} rounds (range),",
        "before and after interleaved in child processes; before: "
        f"{r['before'] or 'not measured'}.",
        f"Load average {load} (start, end). Captures: SoupBinTCP, 1,448-byte segments and the",
        "client's ACKs; MoldUDP64, 1,400-byte datagrams; ITCH-like messages of 11-50 bytes.",
        "",
        "| capture | path | before pkts/s | after pkts/s | after/before | after MB/s "
        "| after msgs/s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for mode in MODES:
        for name in LABELS:
            size = sizes[name]
            after = secs["after"][mode][name]
            mid = statistics.median(after)
            old = statistics.median(secs["before"][mode][name]) if before else None
            md.append(
                f"| {LABELS[name]} | {mode} "
                f"| {_spread(size['packets'], secs['before'][mode][name]) if before else '-'} "
                f"| {_spread(size['packets'], after)} "
                f"| {f'{old / mid:.2f}x' if old else '-'} "
                f"| {size['bytes'] / mid / 1e6:.0f} | {_rate(size['messages'], mid)} |"
            )
    if "write-compiled" in secs["after"]:  # reports from before the write was measured lack it
        md += [
            "",
            "The whole import, the journal and its sidecar written too (`import_stream` after",
            "`read_capture`), packets per CPU second, medians (range):",
            "",
            "| capture | path | before pkts/s | after pkts/s | after/before | after msgs/s |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for mode in MODES:
            key = "write-" + mode
            for name in LABELS:
                size = sizes[name]
                after = secs["after"][key][name]
                mid = statistics.median(after)
                old_ = statistics.median(secs["before"][key][name]) if before else None
                md.append(
                    f"| {LABELS[name]} | {mode} "
                    f"| {_spread(size['packets'], secs['before'][key][name]) if before else '-'} "
                    f"| {_spread(size['packets'], after)} "
                    f"| {f'{old_ / mid:.2f}x' if old_ else '-'} "
                    f"| {_rate(size['messages'], mid)} |"
                )
    mem = imp["memory"]
    largest = imp["largest"]
    md += [
        "",
        f"Peak memory growth importing the {sizes[largest]['bytes'] / 1e6:.0f} MB capture "
        f"({LABELS[largest]}, compiled): "
        + ", ".join(f"{tree} {grown / 1e6:.0f} MB" for tree, grown in mem.items())
        + ". After: the messages wait in memory up to the spool's budget (32 MiB), beyond it "
        "in a temporary file; before: every message held until written.",
    ]
    md += [
        "",
        "Readers alone (records; records decoded to the TCP/UDP payload), packets/s; ours",
        "decoded is the chunk walk the import uses (it counts pure ACKs, hands out the rest):",
        "",
    ]
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
