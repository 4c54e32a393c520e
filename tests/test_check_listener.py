"""`soupbintcp check mold-listener`: each listener case against a listener broken in exactly
the rule it tests (it must catch it), and the unbroken one passing. Our listener's results
(`soupbintcp mold tail`) are in tests/test_check_interop.py."""

from __future__ import annotations

import asyncio

import pytest

from soupbintcp.check import CATALOGUE, ListenerTarget, Outcome, Target, run_cases, select

from .check_broken_listener import FAULTS, launcher

CASES = select(CATALOGUE, Target.MOLD_LISTENER)

CATCHES = {
    "requests-the-gap": "requests-too-much",
    "no-request-without-gap": "requests-without-gap",
    "tail-after-heartbeat": "no-tail-request",
    "other-session-ignored": "accepts-other-session",
    "retries-lost-request": "never-retries",
    "bad-datagram-dropped": "accepts-bad-datagram",
    "partial-answer-asks-rest": "no-rest-request",
    "delivers-in-order-once": "out-of-order",
}


def test_every_listener_case_has_a_fault_that_breaks_it() -> None:
    assert {c.id.rsplit("/", 1)[1] for c in CASES} == set(CATCHES)
    assert set(CATCHES.values()) == set(FAULTS)


async def _run(fault: str | None, ids: list[str]) -> dict[str, Outcome]:
    chosen = [c for c in CASES if c.id in ids]
    results = await run_cases(chosen, ListenerTarget(launcher(fault)), jobs=len(chosen))
    return {r.case.id: r.outcome for r in results}


async def test_each_case_catches_the_listener_broken_in_its_rule() -> None:
    got: dict[str, Outcome] = {}
    runs = [_run(CATCHES[c.id.rsplit("/", 1)[1]], [c.id]) for c in CASES]
    for outcome in await asyncio.gather(*runs):
        got.update(outcome)
    assert len(got) == len(CASES)
    assert {k: v for k, v in got.items() if v is not Outcome.FAIL} == {}


@pytest.mark.long
async def test_the_unbroken_scripted_listener_passes() -> None:
    got = await _run(None, [c.id for c in CASES])
    assert {k: v for k, v in got.items() if v is not Outcome.PASS} == {}
