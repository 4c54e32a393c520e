"""The compiled fast path against the pure-Python path, as ratios measured in the same run.

In process, both paths are called side by side (the compiled functions directly, the pure ones
as the package defines them): the Sequenced Data batch split, the zero-copy frames split, the
Message cursor, the MoldUDP64 block split, with a naive pure-Python frame counter and a
compiled count-only loop as yardsticks. The paths chosen at import (`ClientSession`, the
clients over loopback) are measured by running `bench_wire.py` and `bench_client.py` once per
run in each mode, ``SOUPBINTCP_PURE_PYTHON=1`` or not, interleaved. Figures are CPU time
(`time.process_time`) unless said: the machine may be shared, and CPU time does not count
waiting for a core.

    python bench/bench_speedups.py [--runs 3] [-n 1000000] [--no-loopback] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

from bench_wire import naive_reader, stream
from benchlib import itch_payloads, write_json
from soupbintcp import Message
from soupbintcp._speedups import PURE_PYTHON_VARIABLE, _core
from soupbintcp._wire._moldudp64 import HEADER_LENGTH, pack_downstream, pure_decode_blocks
from soupbintcp.lowlevel import PacketDecoder, Role
from speedups_report import report

BENCH = Path(__file__).resolve().parent
N = 500_000

InProcess = Callable[[list[bytes]], int]


def pure_split(chunks: list[bytes]) -> int:
    decoder = PacketDecoder(Role.SERVER)
    split = getattr(PacketDecoder, "pure_next_sequenced_payloads", None)
    split = split or PacketDecoder.next_sequenced_payloads
    n = 0
    for chunk in chunks:
        decoder.feed(chunk)
        n += len(split(decoder))
    return n


def compiled_split(chunks: list[bytes]) -> int:
    decoder = PacketDecoder(Role.SERVER)
    split = _core.split_sequenced
    n = 0
    for chunk in chunks:
        decoder.feed(chunk)
        out, decoder._pos = split(decoder._buf, decoder._pos, 0xFFFF, False)
        n += len(out)
    return n


def compiled_frames(chunks: list[bytes]) -> int:
    """The zero-copy view: offsets and lengths, no object per message."""
    decoder = PacketDecoder(Role.SERVER)
    frames = _core.sequenced_frames
    n = 0
    for chunk in chunks:
        decoder.feed(chunk)
        offsets, _lengths, decoder._pos = frames(decoder._buf, decoder._pos, 0xFFFF, False)
        n += len(offsets)
    return n


def compiled_counter(chunks: list[bytes]) -> int:
    """Yardstick: a compiled loop that only counts frames (no payloads, no checks kept)."""
    walk = _core.walk
    n = 0
    rest = b""
    for chunk in chunks:
        buf = rest + chunk if rest else chunk
        end, walked, _, _ = walk(buf, 0, -1, -1, None, 0, 0, 1, 0)
        n += walked
        rest = buf[end:]
    return n


def _runs_of(chunks: list[bytes]) -> list[tuple[int, list[bytes]]]:
    decoder = PacketDecoder(Role.SERVER)
    runs: list[tuple[int, list[bytes]]] = []
    first = 1
    for chunk in chunks:
        decoder.feed(chunk)
        payloads = decoder.next_sequenced_payloads()
        runs.append((first, payloads))
        first += len(payloads)
    return runs


def pure_cursor(runs: list[tuple[int, list[bytes]]]) -> int:
    """Messages one at a time, as the inbox hands them to `receive_msg()`."""
    n = 0
    for first, payloads in runs:
        for _msg in map(Message, zip(count(first), payloads)):
            n += 1
    return n


def compiled_cursor(runs: list[tuple[int, list[bytes]]]) -> int:
    cursor = _core.MessageCursor
    n = 0
    for first, payloads in runs:
        for _msg in cursor(Message, first, payloads):
            n += 1
    return n


def datagrams(n: int) -> list[bytes]:
    payloads = itch_payloads(n)
    out = []
    start = 0
    while start < n:
        packet, k = pack_downstream(b"BENCH     ", start + 1, payloads, start)
        out.append(packet)
        start += k
    return out


def pure_blocks(packets: list[bytes]) -> int:
    n = 0
    for packet in packets:
        n += len(pure_decode_blocks(packet, int.from_bytes(packet[18:20], "big")))
    return n


def compiled_blocks(packets: list[bytes]) -> int:
    blocks = _core.mold_blocks
    n = 0
    for packet in packets:
        out, _end = blocks(packet, int.from_bytes(packet[18:20], "big"), HEADER_LENGTH)
        n += len(out)
    return n


#: name: (pure path or None for a yardstick, compiled path, the input it takes)
PAIRS: dict[str, tuple[Callable[[Any], int] | None, Callable[[Any], int], str]] = {
    "count frames only (yardsticks)": (naive_reader, compiled_counter, "chunks"),
    "Sequenced Data batch split": (pure_split, compiled_split, "chunks"),
    "zero-copy frames split (offsets + lengths)": (None, compiled_frames, "chunks"),
    "Message objects, one at a time": (pure_cursor, compiled_cursor, "runs"),
    "MoldUDP64 message blocks": (pure_blocks, compiled_blocks, "datagrams"),
}


def in_process(runs: int) -> dict[str, dict[str, list[float]]]:
    """CPU ns per message: figures[name]["pure" | "compiled"] over the runs, interleaved."""
    figures: dict[str, dict[str, list[float]]] = {n: {"pure": [], "compiled": []} for n in PAIRS}
    for _ in range(runs):
        chunks, _client = stream(N)
        inputs: dict[str, Any] = {
            "chunks": chunks,
            "runs": _runs_of(chunks),
            "datagrams": datagrams(N),
        }
        for name, (pure, compiled, what) in PAIRS.items():
            for side, fn in (("pure", pure), ("compiled", compiled)):
                if fn is None:
                    continue
                t = time.process_time()
                got = fn(inputs[what])
                elapsed = time.process_time() - t
                assert got == N, f"{name} {side}: {got} of {N}"
                figures[name][side].append(elapsed / got * 1e9)
    return figures


# --- both modes (and the code before this issue), in child processes ---------------------------

#: The modes measured in child processes: the compiled path, the pure path it falls back to,
#: and the pure code as it was before the fast path was added ("before"; its source tree).
MODES = ("compiled", "pure", "before")
BASELINE_OF = "src/soupbintcp/_speedups/_core.pyx"  # "before" is the commit before it came


def baseline_source(into: Path) -> Path | None:
    """The package's source as of the commit before the compiled fast path; None if git or
    the history is not there (a tarball)."""
    root = BENCH.parent
    try:
        added = subprocess.run(
            ["git", "log", "--format=%H", "--diff-filter=A", "-1", "--", BASELINE_OF],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not added:
            return None
        archive = subprocess.run(
            ["git", "archive", f"{added}^", "src"], cwd=root, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return into / "src"


def _child(script: str, args: list[str], mode: str, baseline: Path | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != PURE_PYTHON_VARIABLE}
    if mode != "compiled":
        env[PURE_PYTHON_VARIABLE] = "1"
    if mode == "before":
        assert baseline is not None
        env["PYTHONPATH"] = str(baseline)  # ahead of the installed package
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        subprocess.run(
            [sys.executable, str(BENCH / script), *args, "--json", str(out)],
            env=env,
            check=True,
            timeout=900,
            stdout=subprocess.DEVNULL,
        )
        result: dict[str, Any] = json.loads(out.read_text())
    return result


def by_mode(runs: int, n: int, loopback: bool, server: bool, baseline: Path | None) -> Any:
    """figures[mode][script] = one result per run, the modes interleaved run by run."""
    modes = [m for m in MODES if m != "before" or baseline is not None]
    figures: dict[str, dict[str, list[Any]]] = {m: {} for m in modes}
    for _ in range(runs):
        for mode in modes:
            steps = [("wire", "bench_wire.py", ["--runs", "1"])]
            if loopback:
                steps.append(
                    ("client", "bench_client.py", ["-n", str(n), "--runs", "1", "--no-nasdaq"])
                )
            if server:
                args = ["--quick", "--runs", "1", "--scenarios", "replay", "fanout10"]
                steps.append(("server", "bench_server.py", args))
            for key, script, args in steps:
                figures[mode].setdefault(key, []).append(_child(script, args, mode, baseline))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-n", type=int, default=1_000_000, help="messages per loopback run")
    parser.add_argument("--no-loopback", action="store_true", help="skip bench_client.py")
    parser.add_argument("--no-server", action="store_true", help="skip bench_server.py")
    parser.add_argument("--no-before", action="store_true", help="skip the pre-issue code")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    figures = in_process(args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        baseline = None if args.no_before else baseline_source(Path(tmp))
        modes = by_mode(args.runs, args.n, not args.no_loopback, not args.no_server, baseline)
    res = {"in_process": figures, "modes": modes, "n_in_process": N, "n": args.n, "runs": args.runs}
    write_json(args.json, res)  # the figures, even if the report below fails
    lines, targets = report(res)
    print("\n".join(lines))
    write_json(args.json, {**res, "markdown": lines, "targets": targets})


if __name__ == "__main__":
    main()
