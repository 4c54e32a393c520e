"""`soupbintcp check mold-transmitter`: the MoldUDP64 cases against our transmitter ending
its session, and each case against a transmitter broken in exactly the rule it tests."""

from __future__ import annotations

import asyncio

import pytest

from soupbintcp.check import CATALOGUE, MoldTarget, Outcome, Target, run_cases, select
from soupbintcp.moldudp64 import serve_requests, transmit
from soupbintcp.store import MemoryStore

from .check_broken_mold import FAULTS, broken_mold
from .mold_support import random_group

MOLD_CASES = select(CATALOGUE, Target.MOLD_TRANSMITTER)
LOOP = "127.0.0.1"

CATCHES = {
    "packet-layout": "count-lies",
    "one-session": "session-changes",
    "sequence-contiguous": "sequence-skips",
    "cadence": "no-heartbeats",
    "repeated": "single-end",
    "right-messages": "answers-shifted",
    "right-count": "answers-too-many",
    "clipped-to-datagram": "answers-huge",
    "other-session-ignored": "answers-any-session",
    "malformed-ignored": "crash-on-malformed",
    "hostile-counts-survived": "crash-on-hostile",
    "beyond-end-unanswered": "answers-beyond-end",
}


async def test_our_ending_session_passes_every_case() -> None:
    """Our transmitter ending its session while the cases watch: End of Session is judged
    too (the live session's results are in tests/test_check_interop.py)."""
    store = MemoryStore(session_id="TEST1")
    store.append_many([b"message %03d" % i for i in range(1, 101)])
    group = random_group()
    requests = await serve_requests(store, (LOOP, 0))
    tx = await transmit(store, group, interface=LOOP, ttl=0, first=1)
    try:
        await asyncio.sleep(0.5)
        ending = asyncio.create_task(tx.end_session(linger=10))
        target = MoldTarget(group, requests.address, interface=LOOP)
        results = await run_cases(MOLD_CASES, target, jobs=len(MOLD_CASES))
        ending.cancel()
    finally:
        await tx.close()
        await requests.close()
    failed = {r.case.id: r.reason for r in results if r.outcome is not Outcome.PASS}
    assert failed == {}


def test_every_mold_case_has_a_fault_that_breaks_it() -> None:
    assert {c.id.rsplit("/", 1)[1] for c in MOLD_CASES} == set(CATCHES)
    assert set(CATCHES.values()) == set(FAULTS)


async def _run(fault: str | None, cases: list[str], ended: bool = False) -> dict[str, Outcome]:
    group = random_group()
    async with broken_mold(group, fault, ended) as address:
        target = MoldTarget(group, address, interface=LOOP)
        chosen = [c for c in MOLD_CASES if c.id in cases]
        return {r.case.id: r.outcome for r in await run_cases(chosen, target, jobs=len(chosen))}


async def test_each_case_catches_the_transmitter_broken_in_its_rule() -> None:
    runs = [_run(CATCHES[c.id.rsplit("/", 1)[1]], [c.id]) for c in MOLD_CASES]
    got: dict[str, Outcome] = {}
    for outcome in await asyncio.gather(*runs):
        got.update(outcome)
    assert len(got) == len(MOLD_CASES)
    assert {k: v for k, v in got.items() if v is not Outcome.FAIL} == {}


@pytest.mark.long
@pytest.mark.parametrize("ended", [False, True])
async def test_the_unbroken_scripted_transmitter_passes(ended: bool) -> None:
    got = await _run(None, [c.id for c in MOLD_CASES], ended)
    assert {k: v for k, v in got.items() if v is Outcome.FAIL} == {}
