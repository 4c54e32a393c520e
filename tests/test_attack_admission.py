"""Attacks on admission (issue 15, points 1 and 7): sockets that hold the pre-login slots by
trickling bytes, and a burst of honest logins at once. Honest clients must get in, and the
honest feed must lose nothing."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

import soupbintcp

from .attack_support import (
    PASSWORD,
    USER,
    RssSampler,
    attacker,
    honest_feed,
    latency_figures,
    report,
    serve_attacked,
)
from .reliability_support import raise_nofile

DEFAULT_MAX_PENDING_LOGINS = (
    inspect.signature(soupbintcp.serve).parameters["max_pending_logins"].default
)


def server_pending(options: dict[str, Any]) -> int:
    return int(options.get("max_pending_logins", DEFAULT_MAX_PENDING_LOGINS))


async def honest_logins(address: tuple[str, int], count: int) -> int:
    """Fresh honest clients logging in one after another; how many were accepted."""
    admitted = 0
    for _ in range(count):
        try:
            client = await soupbintcp.connect_async(
                address, USER, PASSWORD, sequence=0, login_timeout=10, connect_timeout=10
            )
        except (soupbintcp.SoupBinTCPError, OSError):
            continue
        admitted += 1
        await client.close()
    return admitted


async def trickle_attack(tricklers: int, logins: int, **options: Any) -> None:
    raise_nofile(4 * tricklers + 500)
    server = await serve_attacked(**options)  # a 30 s login timeout, the default
    try:
        async with honest_feed(server) as feed:
            quiet = await feed.measure(0.5)
            memory = RssSampler()
            async with attacker("trickle", server.address, str(tricklers)) as flood:
                await flood.ready()
                measuring = asyncio.get_running_loop().create_task(feed.measure(1.0))
                admitted = await honest_logins(server.address, logins)
                attacked = await measuring
                result = await flood.result()
            memory.stop()
            await feed.finish()
        report(
            "1 pre-login slots held by trickling sockets",
            size=f"{tricklers} trickling sockets for {server_pending(options)} pending-login "
            f"slots, {logins} fresh honest logins",
            logins_admitted=f"{admitted}/{logins}",
            attacker_connections=result["opened"],
            attacker_closed_by_server=result["closed_by_server"],
            lost=feed.published - len(feed.received),
            **memory.figures(),
            **latency_figures(quiet, attacked),
        )
        assert admitted == logins
    finally:
        await server.close()


async def test_trickling_sockets_do_not_lock_honest_clients_out() -> None:
    # The case: 260 tricklers for 256 slots; here 300.
    await trickle_attack(tricklers=300, logins=40, max_pending_logins=256)


@pytest.mark.long
async def test_trickling_sockets_do_not_lock_honest_clients_out_long() -> None:
    await trickle_attack(tricklers=DEFAULT_MAX_PENDING_LOGINS + 300, logins=150)


async def burst_of_logins(count: int) -> None:
    raise_nofile(2 * count + 500)
    server = await serve_attacked()  # the default listen backlog and pending-login cap
    try:
        async with honest_feed(server) as feed:
            quiet = await feed.measure(0.5)
            memory = RssSampler()
            async with attacker(
                "burst", server.address, str(count), "--user", USER, "--password", PASSWORD,
                "--timeout", "20",
            ) as burst:  # fmt: skip
                await burst.ready()
                burst.go()
                attacked = await feed.measure(1.0)
                result = await burst.result()
            memory.stop()
            await feed.finish()
        report(
            "7 burst of logins",
            size=f"{count} clients connecting and logging in at once",
            logins_admitted=f"{result['accepted']}/{count}",
            outcomes=result["outcomes"],
            login_accepted_p50_s=result["p50"],
            login_accepted_p90_s=result["p90"],
            lost=feed.published - len(feed.received),
            **memory.figures(),
            **latency_figures(quiet, attacked),
        )
        assert result["accepted"] == count, result
    finally:
        await server.close()


async def test_a_burst_of_500_logins_all_get_in() -> None:
    await burst_of_logins(500)


@pytest.mark.long
async def test_a_burst_of_1000_logins_all_get_in_long() -> None:
    await burst_of_logins(1000)
