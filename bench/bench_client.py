"""Client receive throughput over loopback, the feed server in another process.

1,000,000 ITCH-sized sequenced messages through `receive_msg`, `async for` and the batch
path, on stock asyncio and uvloop. In the same runs, interleaved with ours: a reader that
only counts bytes off the socket (the transport's limit), a naive pure-Python frame
splitter (the yardstick), and the `nasdaq-protocols` client (on fewer messages, see
`bench_nasdaq.py`). Each figure is the median of the runs; each ratio the median of the
per-run ratios.

    python bench/bench_client.py [-n 1000000] [--runs 3] [--json PATH]
    python bench/bench_client.py --rss 10000000          # peak RSS of a batch-path client
    python bench/bench_client.py --profile receive_msg   # cProfile of one path
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import statistics
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

import soupbintcp
import soupbintcp.lowlevel
from benchlib import LOOPS, peak_rss_bytes, profile_text, run_on, write_json
from feed_server import FeedServer

Address = tuple[str, int]
ReceivePath = Callable[[Address, int], Awaitable[int]]

BYTES_ONLY = "bytes only (transport limit)"
NAIVE = "naive frame splitter"
NASDAQ = "nasdaq-protocols receive_msg()"
COMPILED_COUNTER = "compiled frame counter"
FRAMES = "receive_frames() (zero-copy view)"


async def via_receive_msg(address: Address, n: int) -> int:
    client = await soupbintcp.connect_async(address, "bench", "bench")
    receive = client.receive_msg
    count = 0
    try:
        while True:
            await receive()
            count += 1
    except soupbintcp.SessionEnded:
        pass
    await client.close()
    return count


async def via_async_for(address: Address, n: int) -> int:
    client = await soupbintcp.connect_async(address, "bench", "bench")
    count = 0
    async for _msg in client:
        count += 1
    await client.close()
    return count


async def via_batch(address: Address, n: int) -> int:
    client = await soupbintcp.connect_async(address, "bench", "bench")
    count = 0
    async for batch in client.batches():
        for item in batch:
            if type(item) is soupbintcp.lowlevel.SequencedMessages:
                count += len(item.messages)
    await client.close()
    return count


async def via_frames(address: Address, n: int) -> int:
    """The zero-copy view: no object per message (a bulk decoder would take the arrays)."""
    client = await soupbintcp.connect_async(address, "bench", "bench")
    count = 0
    receive = client.receive_frames
    try:
        while True:
            for item in await receive():
                if type(item) is soupbintcp.lowlevel.SequencedFrames:
                    count += len(item.offsets)
    except soupbintcp.SessionEnded:
        pass
    await client.close()
    return count


async def count_bytes(address: Address, n: int) -> int:
    """Transport limit: log in, then only count bytes until End of Session."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(soupbintcp.lowlevel.LoginRequestPacket("bench", "bench", "", 1).encode())
    total = 0
    while data := await reader.read(262144):
        total += len(data)
        if data.endswith(b"\x00\x01Z"):
            break
    writer.close()
    return n


class _NaiveReader(asyncio.Protocol):
    """The yardstick: split frames with struct.unpack_from over a memoryview and count them."""

    def __init__(self, done: asyncio.Future[int]) -> None:
        self.done = done
        self.rest = b""
        self.count = 0
        self.unpack = struct.Struct(">H").unpack_from

    def data_received(self, data: bytes) -> None:
        buf = memoryview(self.rest + data if self.rest else data)
        pos, end, unpack, count = 0, len(buf), self.unpack, 0
        while pos + 3 <= end:
            (n,) = unpack(buf, pos)
            if pos + 2 + n > end:
                break
            if buf[pos + 2] == 0x5A and not self.done.done():  # End of Session
                self.done.set_result(self.count + count - 1)  # minus Login Accepted
            count += 1
            pos += 2 + n
        self.count += count
        self.rest = bytes(buf[pos:])


async def naive_reader(address: Address, n: int) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: _NaiveReader(done), *address)
    transport.write(soupbintcp.lowlevel.LoginRequestPacket("bench", "bench", "", 1).encode())
    count = await done
    transport.close()
    return count


class _CompiledCounter(_NaiveReader):
    """The compiled yardstick: the same count, by the extension's frame walk (no payloads)."""

    def data_received(self, data: bytes) -> None:
        buf = self.rest + data if self.rest else data
        end, walked, _, _ = _core.walk(buf, 0, -1, -1, None, 0, 0, 1, 0)
        self.count += walked
        self.rest = buf[end:]
        if self.rest == b"" and buf.endswith(b"\x00\x01Z") and not self.done.done():
            self.done.set_result(self.count - 2)  # minus Login Accepted and End of Session


async def compiled_counter(address: Address, n: int) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: _CompiledCounter(done), *address)
    transport.write(soupbintcp.lowlevel.LoginRequestPacket("bench", "bench", "", 1).encode())
    count = await done
    transport.close()
    return count


PATHS: dict[str, ReceivePath] = {
    BYTES_ONLY: count_bytes,
    NAIVE: naive_reader,
    "receive_msg()": via_receive_msg,
    "async for": via_async_for,
    "receive_batch()": via_batch,
}
if hasattr(soupbintcp.AsyncClient, "receive_frames"):  # not in the code before it was added
    PATHS[FRAMES] = via_frames
try:
    from soupbintcp._speedups import _core
except ImportError:  # no compiler at install: no compiled yardstick
    pass
else:
    PATHS[COMPILED_COUNTER] = compiled_counter


def run_timed(fn: ReceivePath, address: Address, n: int, loop: str) -> tuple[float, float]:
    """One run of `fn` on a fresh loop, bounded in time: (msg/s by the wall clock, this
    process's CPU time per message in ns). The feed server runs in another process, so the
    CPU time is the client's alone, and does not count time the client waited for a core."""

    async def timed() -> tuple[float, float]:
        async with asyncio.timeout(120):
            t, cpu = time.perf_counter(), time.process_time()
            got = await fn(address, n)
            elapsed = time.perf_counter() - t
            cpu = time.process_time() - cpu
        assert got == n, f"received {got} of {n}"
        return n / elapsed, cpu / n * 1e9

    return run_on(loop, timed)


def run_once(fn: ReceivePath, address: Address, n: int, loop: str) -> float:
    """msg/s of one run of `fn` on a fresh loop, bounded in time."""
    return run_timed(fn, address, n, loop)[0]


Figures = dict[str, dict[str, list[float]]]


def measure(
    n: int, runs: int, loops: tuple[str, ...], nasdaq: bool
) -> tuple[Figures, Figures, dict[str, int]]:
    """rates[loop][path] = msg/s of each run, cpu[loop][path] = CPU ns per message of each
    run; runs interleave every path and loop."""
    rates: Figures = {loop: {} for loop in loops}
    cpu: Figures = {loop: {} for loop in loops}
    counts = dict.fromkeys(PATHS, n)
    nasdaq_receive: ReceivePath | None = None
    nasdaq_n: dict[str, int] = {}
    if nasdaq:
        import bench_nasdaq

        nasdaq_receive = bench_nasdaq.nasdaq_receive
        nasdaq_n = {loop: bench_nasdaq.COUNTS[loop] for loop in loops}
    with contextlib.ExitStack() as stack:
        address = stack.enter_context(FeedServer(n))
        # The same feed server program, fewer messages, for nasdaq-protocols.
        small = {loop: stack.enter_context(FeedServer(nasdaq_n[loop])) for loop in nasdaq_n}
        for _ in range(runs):
            for loop in loops:
                for name, fn in PATHS.items():
                    rate, ns = run_timed(fn, address, n, loop)
                    rates[loop].setdefault(name, []).append(rate)
                    cpu[loop].setdefault(name, []).append(ns)
                if nasdaq_receive is not None:
                    rate, ns = run_timed(nasdaq_receive, small[loop], nasdaq_n[loop], loop)
                    rates[loop].setdefault(NASDAQ, []).append(rate)
                    cpu[loop].setdefault(NASDAQ, []).append(ns)
                    counts[f"{NASDAQ} {loop}"] = nasdaq_n[loop]
    return rates, cpu, counts


def ratios(rates: dict[str, list[float]], ref: str) -> dict[str, float]:
    """Per path: the median of (path / ref) over the runs, each pair from the same run."""
    return {
        name: statistics.median(a / b for a, b in zip(values, rates[ref], strict=True))
        for name, values in rates.items()
    }


# --- memory: peak RSS of a client receiving a long stream --------------------------------------


async def batch_rss(address: Address, n: int) -> dict[str, float]:
    client = await soupbintcp.connect_async(address, "bench", "bench")
    before = peak_rss_bytes()
    count = 0
    t = time.perf_counter()
    async with asyncio.timeout(600):
        async for batch in client.batches():
            for item in batch:
                if type(item) is soupbintcp.lowlevel.SequencedMessages:
                    count += len(item.messages)
    elapsed = time.perf_counter() - t
    await client.close()
    assert count == n, f"received {count} of {n}"
    return {
        "messages": n,
        "peak_rss_mb": peak_rss_bytes() / 1e6,
        "peak_rss_at_login_mb": before / 1e6,
        "msg_per_s": n / elapsed,
    }


def measure_rss(n: int, loop: str) -> dict[str, float]:
    """Run this in a fresh process: ru_maxrss is the process's peak since it started."""
    chunk = 1_000_000 if n % 1_000_000 == 0 else n
    with FeedServer(chunk, repeat=n // chunk) as address:
        return run_on(loop, lambda: batch_rss(address, n))


# --- profile -----------------------------------------------------------------------------------


def profile_path(name: str, n: int, loop: str) -> str:
    fn = {
        "receive_msg": via_receive_msg,
        "async_for": via_async_for,
        "batch": via_batch,
        "frames": via_frames,
    }[name]
    with FeedServer(n) as address:
        profile = cProfile.Profile()
        profile.enable()
        run_once(fn, address, n, loop)
        profile.disable()
    return profile_text(profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loops", nargs="+", default=list(LOOPS), choices=LOOPS)
    parser.add_argument("--no-nasdaq", action="store_true", help="leave nasdaq-protocols out")
    parser.add_argument("--rss", type=int, metavar="N", help="only: peak RSS receiving N")
    parser.add_argument("--profile", choices=("receive_msg", "async_for", "batch", "frames"))
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    loops = tuple(args.loops)
    out: dict[str, Any]
    if args.rss:
        out = {"rss": measure_rss(args.rss, loops[0]), "loop": loops[0]}
        print(f"{loops[0]}: {out['rss']}")
    elif args.profile:
        text = profile_path(args.profile, args.n, loops[0])
        out = {"profile": text}
        print(text)
    else:
        rates, cpu, counts = measure(args.n, args.runs, loops, not args.no_nasdaq)
        out = {"rates": rates, "cpu_ns": cpu, "counts": counts, "n": args.n, "runs": args.runs}
        print(f"{args.n:,} messages, median of {args.runs} runs")
        print(
            f"{'path':32} {'loop':8} {'msg/s':>12} {'vs bytes-only':>14} {'vs naive':>9}"
            f" {'CPU ns/msg':>11}"
        )
        for loop, by_path in rates.items():
            vs_bytes = ratios(by_path, BYTES_ONLY)
            vs_naive = ratios(by_path, NAIVE)
            for name, values in by_path.items():
                print(
                    f"{name:32} {loop:8} {statistics.median(values):12,.0f}"
                    f" {vs_bytes[name]:13.3f}x {vs_naive[name]:8.2f}x"
                    f" {statistics.median(cpu[loop][name]):11,.0f}"
                )
    write_json(args.json, out)


if __name__ == "__main__":
    main()
