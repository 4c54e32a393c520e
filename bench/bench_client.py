"""Client receive throughput over loopback, the feed server in another process.

1,000,000 ITCH-sized sequenced messages through `receive_msg`, `async for` and the batch
path, on stock asyncio and uvloop; each figure the median of several runs. The reference in
the same run is a reader that only counts bytes off the socket (the transport's limit).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import soupbintcp
from feed_server import FeedServer

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

Address = tuple[str, int]


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
            if type(item) is soupbintcp.SequencedMessages:
                count += len(item.messages)
    await client.close()
    return count


async def count_bytes(address: Address, n: int) -> int:
    """Transport limit: log in, then only count bytes until End of Session."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(soupbintcp.LoginRequest("bench", "bench", "", 1).encode())
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
    transport.write(soupbintcp.LoginRequest("bench", "bench", "", 1).encode())
    count = await done
    transport.close()
    return count


PATHS: dict[str, Callable[[Address, int], Awaitable[int]]] = {
    "bytes only (transport limit)": count_bytes,
    "naive frame splitter": naive_reader,
    "receive_msg()": via_receive_msg,
    "async for": via_async_for,
    "receive_batch()": via_batch,
}


def run_once(
    fn: Callable[[Address, int], Awaitable[int]], address: Address, n: int, loop: str
) -> float:
    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop

    async def timed() -> float:
        t = time.perf_counter()
        got = await fn(address, n)
        elapsed = time.perf_counter() - t
        assert got == n, f"received {got} of {n}"
        return n / elapsed

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(timed())


def measure(n: int, runs: int) -> dict[tuple[str, str], float]:
    results: dict[tuple[str, str], float] = {}
    loops = ["asyncio"] + (["uvloop"] if uvloop is not None else [])
    with FeedServer(n) as address:
        for loop in loops:
            for name, fn in PATHS.items():
                rates = [run_once(fn, address, n, loop) for _ in range(runs)]
                results[(name, loop)] = statistics.median(rates)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = measure(args.n, args.runs)
    print(f"{args.n:,} messages, median of {args.runs} runs")
    print(f"{'path':30} {'loop':8} {'msg/s':>12} {'vs bytes-only':>14}")
    for (name, loop), rate in results.items():
        ref = results[("bytes only (transport limit)", loop)]
        print(f"{name:30} {loop:8} {rate:12,.0f} {rate / ref:13.2f}x")


if __name__ == "__main__":
    main()
