"""`soupbintcp check client`: each case against a client broken in exactly the rule it tests
(it must catch it). Our client's results, case by case, are in tests/test_check_interop.py."""

from __future__ import annotations

import asyncio

import pytest

from soupbintcp.check import CATALOGUE, ClientTarget, Outcome, Target, run_cases, select

from .check_broken_client import FAULTS, launcher

CLIENT_CASES = select(CATALOGUE, Target.CLIENT)
NAMES = sorted({c.id.rsplit("/", 1)[1] for c in CLIENT_CASES})

CATCHES = {
    "login-request-first": "heartbeat-first",
    "login-request-length": "login-47-bytes",
    "credentials-right-padded": "credentials-left-padded",
    "requested-sequence-numeric": "sequence-not-numeric",
    "requested-session-alphanumeric": "session-with-dash",
    "heartbeat-timeout-numeric": "timeout-not-numeric",
    "client-heartbeat-cadence": "no-heartbeats",
    "server-heartbeat-before-accept": "heartbeat-before-accept-is-error",
    "debug-tolerated": "debug-is-error",
    "server-unsequenced-tolerated": "unsequenced-is-error",
    "resume-after-cut": "resume-from-1",
    "unsequenced-not-counted": "counts-unsequenced",
    "count-from-login-accepted": "counts-from-requested",
    "empty-message-counted": "skips-empty-messages",
    "empty-message-not-counted": "counts-empty-marker",
    "split-packets": "partial-read-closes",
    "large-message": "max-message-1000",
    "end-of-session-honoured": "rejoins-after-end",
    "login-rejected-no-storm": "reconnect-storm",
    "no-data-before-accept": "sends-before-accept",
    "session-either-padding": "session-padding-strict",
}


def test_every_client_case_has_a_fault_that_breaks_it() -> None:
    assert set(NAMES) == set(CATCHES)
    assert set(CATCHES.values()) == set(FAULTS)


async def _run(fault: str | None, ids: list[str], dialect: str) -> dict[str, Outcome]:
    target = ClientTarget(dialect=dialect, launch=launcher(fault, dialect))
    chosen = [c for c in CLIENT_CASES if c.id in ids]
    return {r.case.id: r.outcome for r in await run_cases(chosen, target, jobs=len(chosen))}


async def test_each_case_catches_the_client_broken_in_its_rule() -> None:
    runs = []
    for case in CLIENT_CASES:
        fault = CATCHES[case.id.rsplit("/", 1)[1]]
        runs.append(_run(fault, [case.id], case.dialect))
    got: dict[str, Outcome] = {}
    for outcome in await asyncio.gather(*runs):
        got.update(outcome)
    assert len(got) == len(CLIENT_CASES)
    assert {k: v for k, v in got.items() if v is not Outcome.FAIL} == {}


@pytest.mark.long
@pytest.mark.parametrize("dialect", ["soupbintcp", "omega"])
async def test_the_unbroken_scripted_client_passes(dialect: str) -> None:
    ids = [c.id for c in select(CATALOGUE, Target.CLIENT, dialect)]
    got = await _run(None, ids, dialect)
    assert {k: v for k, v in got.items() if v is not Outcome.PASS} == {}
