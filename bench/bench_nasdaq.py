"""The `nasdaq-protocols` client receiving from the same feed server, for side-by-side ratios.

Its reader sleeps 0.1 ms after every message, which stock asyncio rounds up to about 1 ms, so
on stock asyncio it is measured on fewer messages (its rate does not depend on the count).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from feed_server import FeedServer

Address = tuple[str, int]


async def nasdaq_receive(address: Address, n: int) -> int:
    from nasdaq_protocols import common, soup

    client = await soup.connect_async(address, "bench", "bench", connect_timeout=5)
    count = 0
    try:
        while count < n:
            msg = await asyncio.wait_for(client.receive_msg(), 30)
            if isinstance(msg, soup.SequencedData):
                count += 1
    except common.EndOfQueue:
        pass
    await asyncio.wait_for(client.close(), 5)
    return count


def run_once(address: Address, n: int, loop: str) -> float:
    factory = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop

    async def timed() -> float:
        t = time.perf_counter()
        got = await nasdaq_receive(address, n)
        elapsed = time.perf_counter() - t
        assert got == n, f"received {got} of {n}"
        return n / elapsed

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(timed())


def measure(n_asyncio: int, n_uvloop: int, runs: int) -> dict[str, float]:
    results = {}
    for loop, n in (("asyncio", n_asyncio), ("uvloop", n_uvloop)):
        with FeedServer(n) as address:
            results[loop] = statistics.median(run_once(address, n, loop) for _ in range(runs))
    return results


if __name__ == "__main__":
    for loop, rate in measure(3000, 100_000, 3).items():
        print(f"nasdaq-protocols receive_msg  {loop:8} {rate:12,.0f} msg/s")
