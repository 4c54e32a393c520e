"""Brute force and log floods (issue 15, point 8): wrong passwords as fast as the server
answers, from one source address, for one user. The attack must be slowed down, the real
user (from another address) must still get in at once, and the log must not grow a line
per attempt."""

from __future__ import annotations

import logging

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


async def brute_force(seconds: float, concurrency: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "soupbintcp.server")
    server = await serve_attacked()
    try:
        async with honest_feed(server) as feed:
            quiet = await feed.measure(0.5)
            memory = RssSampler()
            async with attacker(
                "brute", server.address, "--user", USER, "--source", "127.0.0.2",
                "--seconds", str(seconds), "--concurrency", str(concurrency),
            ) as brute:  # fmt: skip
                await brute.ready()
                brute.go()
                attacked = await feed.measure(seconds / 2)
                # The real user, from its own address, logs in while the attack goes on.
                real = await soupbintcp.connect_async(
                    server.address, USER, PASSWORD, sequence=0, login_timeout=10
                )
                await real.close()
                result = await brute.result(timeout=seconds + 60)
            memory.stop()
            await feed.finish()
    finally:
        await server.close()
    warnings = [
        r for r in caplog.records if r.name == "soupbintcp.server" and r.levelno >= logging.WARNING
    ]
    answered = result["answers"].get("J", 0)
    report(
        "8 brute force on one user from one address",
        size=f"{concurrency} parallel guessers for {seconds:g} s",
        wrong_passwords_answered=answered,
        attempts_per_s=round(answered / result["seconds"], 1),
        answers=result["answers"],
        warning_lines=len(warnings),
        real_user_admitted=True,
        lost=feed.published - len(feed.received),
        **memory.figures(),
        **latency_figures(quiet, attacked),
    )
    # Slowed down: a handful of free tries, then a growing delay per source and user.
    assert answered < 100, result
    # The log says it once, then how many more like it.
    assert len(warnings) < 50, len(warnings)
    assert any("more like it" in r.getMessage() for r in warnings)


async def test_brute_force_is_slowed_down_and_logged_in_aggregate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await brute_force(seconds=3, concurrency=8, caplog=caplog)


@pytest.mark.long
async def test_brute_force_is_slowed_down_and_logged_in_aggregate_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await brute_force(seconds=10, concurrency=32, caplog=caplog)
