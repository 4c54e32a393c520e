"""The `nasdaq-protocols` client receiving from the same feed server, for side-by-side ratios.

Its reader sleeps 0.1 ms after every message, which stock asyncio rounds up to about 1 ms, so
on stock asyncio it is measured on fewer messages (3,000: its rate does not depend on the
count), and on uvloop on 100,000. `bench_client.py` measures it in the same runs as our
client (interleaved) for the ratios in `results/latest.md`; this script measures it alone.

    python bench/bench_nasdaq.py [--runs 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from benchlib import LOOPS, run_on, write_json
from feed_server import FeedServer

Address = tuple[str, int]

#: Messages per run, by event loop (see the docstring).
COUNTS = {"asyncio": 3_000, "uvloop": 100_000}


async def nasdaq_receive(address: Address, n: int) -> int:
    """Receive `n` sequenced messages with `receive_msg()`, as an application would."""
    from nasdaq_protocols import common, soup

    client = await soup.connect_async(address, "bench", "bench", connect_timeout=5)
    count = 0
    try:
        # One deadline for the whole run (a wait_for per message would add a task per
        # message to *its* cost on Python 3.11).
        async with asyncio.timeout(max(60.0, n / 500)):
            while count < n:
                msg = await client.receive_msg()
                if isinstance(msg, soup.SequencedData):
                    count += 1
    except common.EndOfQueue:
        pass
    await asyncio.wait_for(client.close(), 5)
    return count


def run_once(address: Address, n: int, loop: str) -> float:
    async def timed() -> float:
        t = time.perf_counter()
        got = await nasdaq_receive(address, n)
        elapsed = time.perf_counter() - t
        assert got == n, f"received {got} of {n}"
        return n / elapsed

    return run_on(loop, timed)


def measure(counts: dict[str, int], runs: int) -> dict[str, list[float]]:
    results = {}
    for loop, n in counts.items():
        with FeedServer(n) as address:
            results[loop] = [run_once(address, n, loop) for _ in range(runs)]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    counts = {loop: COUNTS[loop] for loop in LOOPS}
    results = measure(counts, args.runs)
    for loop, rates in results.items():
        print(
            f"nasdaq-protocols receive_msg  {loop:8} {statistics.median(rates):12,.0f} msg/s"
            f"  ({counts[loop]:,} messages, median of {args.runs})"
        )
    write_json(args.json, {"rates": results, "counts": counts})


if __name__ == "__main__":
    main()
