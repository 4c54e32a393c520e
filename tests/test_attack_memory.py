"""Defaults that bound memory (issue 15, point 9): logged-in clients that never read each hold
the server's write buffer until `stall_timeout`. With the defaults of `serve()`, the most
connections the server takes times what each of them can hold must stay within the stated
budget (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import soupbintcp

from .attack_support import (
    ATTACKER,
    ATTACKER_PASSWORD,
    RssSampler,
    attacker,
    honest_feed,
    latency_figures,
    report,
    serve_attacked,
)
from .reliability_support import raise_nofile, wait_until

MIB = 1024 * 1024
#: What a server with the default options may hold for its clients, all of them together.
#: Stated in docs/reliability.md and in serve()'s docstring.
MEMORY_BUDGET = 1536 * MIB


async def clients_that_never_read(count: int) -> None:
    raise_nofile(2 * count + 500)
    server = await serve_attacked()
    try:
        async with honest_feed(server) as feed:
            quiet = await feed.measure(0.5)
            async with attacker(
                "stall",
                server.address,
                str(count),
                "--user",
                ATTACKER,
                "--password",
                ATTACKER_PASSWORD,
            ) as stall:
                await stall.ready()
                await wait_until(lambda: len(server.connections) == count + 1, 30, "all in")
                memory = RssSampler()
                # Publish until every stalled connection's writes are paused: each then
                # holds all it may. Then the honest client's latency, with them all held.
                while not all(c.paused for c in server.connections if c.username == ATTACKER):
                    for _ in range(64):
                        feed.publish(pad=4000)
                    await asyncio.sleep(0.01)
                queued = server.queued_bytes
                attacked = await feed.measure(1.0)
                memory.stop()
                await stall.result()
            await feed.finish()
    finally:
        await server.close()
    per_connection = max(memory.growth, queued) / count
    default_max = inspect.signature(soupbintcp.serve).parameters["max_connections"].default
    report(
        "9 logged-in clients that never read",
        size=f"{count} connections, default options",
        queued_mib=round(queued / MIB, 1),
        held_per_connection_kib=round(per_connection / 1024, 1),
        default_max_connections=default_max,
        at_the_cap_mib=round(per_connection * (default_max or 0) / MIB, 1),
        lost=feed.published - len(feed.received),
        **memory.figures(),
        **latency_figures(quiet, attacked),
    )
    assert default_max is not None, "no default max_connections: memory grows without bound"
    assert per_connection * default_max <= MEMORY_BUDGET, per_connection


async def test_defaults_keep_stalled_clients_within_the_memory_budget() -> None:
    await clients_that_never_read(200)


@pytest.mark.long
async def test_defaults_keep_stalled_clients_within_the_memory_budget_long() -> None:
    await clients_that_never_read(1500)
