"""Many SoupBinTCP clients in one process, each checking every message it receives.

    python -m tests.jetstream_clients CONFIG.json RESULT.json

CONFIG: {"clients": [["host:port", "host:port", ...], ...]} — each client's addresses in the
order it tries them. Every client logs in at sequence 1 with failover and reconnection and
reads until End of Session, checking that message n arrives once, n-th, and is the synthetic
feed's message n. Five times a second it prints ``progress MIN MAX DONE`` (the fewest and
most messages any client has, how many clients have finished); at the end it writes RESULT:
per client the count, whether every check held, its failovers, addresses and the longest
silence between two deliveries (the failover gap).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field

import soupbintcp
import soupbintcp.lowlevel
from soupbintcp.cli._synthetic import synthetic_message

POLICY = soupbintcp.ReconnectPolicy(initial_delay=0.02, max_delay=0.25, max_attempts=None)


@dataclass
class Outcome:
    addresses: list[str]
    count: int = 0
    ok: bool = True
    problem: str = ""
    ended: bool = False
    failovers: int = 0
    first_address: str = ""
    last_address: str = ""
    longest_gap: float = 0.0
    gaps: list[float] = field(default_factory=list)


async def run_client(outcome: Outcome, deadline: float) -> None:
    client = await soupbintcp.connect_async(
        outcome.addresses, "user", "secret", sequence=1, reconnect=POLICY
    )
    outcome.first_address = "{}:{}".format(*client.address)
    expected = 1
    last = time.monotonic()
    failovers = 0
    try:
        while time.monotonic() < deadline:
            try:
                items = await asyncio.wait_for(client.receive_batch(), 5.0)
            except soupbintcp.SessionEnded:
                outcome.ended = True
                break
            except TimeoutError:
                continue
            now = time.monotonic()
            if client.failovers != failovers:
                failovers = client.failovers
                outcome.gaps.append(now - last)
            outcome.longest_gap = max(outcome.longest_gap, now - last)
            last = now
            for item in items:
                if not isinstance(item, soupbintcp.lowlevel.SequencedMessages):
                    continue
                if item.first_sequence != expected:
                    outcome.ok = False
                    outcome.problem = f"got {item.first_sequence} where {expected} was due"
                    return
                for payload in item.messages:
                    if payload != synthetic_message(expected):
                        outcome.ok = False
                        outcome.problem = f"message {expected} is not the feed's"
                        return
                    expected += 1
            outcome.count = expected - 1
    except soupbintcp.SoupBinTCPError as exc:
        outcome.ok = False
        outcome.problem = f"{type(exc).__name__}: {exc}"
    finally:
        outcome.failovers = client.failovers
        outcome.last_address = "{}:{}".format(*client.address)
        await client.close()


async def main(config_path: str, result_path: str) -> int:
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    outcomes = [Outcome(addresses) for addresses in config["clients"]]
    deadline = time.monotonic() + float(config.get("timeout", 120))
    tasks = [asyncio.create_task(run_client(o, deadline)) for o in outcomes]

    async def report() -> None:
        while True:
            counts = [o.count for o in outcomes]
            done = sum(t.done() for t in tasks)
            print(f"progress {min(counts)} {max(counts)} {done}", flush=True)
            await asyncio.sleep(0.2)

    reporter = asyncio.create_task(report())
    results = await asyncio.gather(*tasks, return_exceptions=True)
    reporter.cancel()
    for outcome, result in zip(outcomes, results, strict=True):
        if isinstance(result, BaseException):
            outcome.ok = False
            outcome.problem = f"{type(result).__name__}: {result}"
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump([asdict(o) for o in outcomes], f)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
