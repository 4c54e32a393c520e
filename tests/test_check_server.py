"""`soupbintcp check server`: each case against a server broken in exactly the rule it tests
(it must catch it). Our server's results, case by case, are in tests/test_check_interop.py."""

from __future__ import annotations

import asyncio

import pytest

from soupbintcp import serve
from soupbintcp.check import CATALOGUE, Outcome, ServerTarget, Target, run_cases, select
from soupbintcp.store import MemoryStore

from .check_broken_server import FAULTS, PASSWORD, USER, broken_server

HISTORY = [b"m%d" % i for i in range(1, 21)]
SERVER_CASES = select(CATALOGUE, Target.SERVER)
NAMES = sorted({c.id.rsplit("/", 1)[1] for c in SERVER_CASES})

#: The fault of `check_broken_server` that breaks each case's rule.
CATCHES = {
    "login-accepted-first": "heartbeat-before-accept",
    "sequence-number-left-padded": "zero-padded-sequence",
    "session-left-padded": "session-right-padded",
    "blank-session-gets-current": "blank-session-in-accept",
    "first-sequence-is-1": "first-sequence-0",
    "requested-sequence-n": "replay-from-1",
    "requested-sequence-0": "zero-replays-all",
    "requested-sequence-past-end": "hang-past-end",
    "resume-after-cut": "replay-from-1",
    "named-session-accepted": "reject-named-session",
    "unknown-session-rejected": "accept-any-session",
    "bad-password-rejected": "accept-any-password",
    "credentials-case-insensitive": "case-sensitive",
    "requested-sequence-zero-padded": "zero-padded-as-1",
    "two-clients-same-stream": "one-client-at-a-time",
    "server-heartbeat-cadence": "no-heartbeats",
    "heartbeat-timeout-enforced": "ignore-heartbeat-timeout",
    "client-heartbeats-keep-alive": "heartbeat-is-error",
    "debug-before-login": "debug-is-error",
    "debug-after-login": "debug-is-error",
    "logout-closes": "ignore-logout",
    "unsequenced-after-login": "unsequenced-is-error",
    "data-before-login-refused": "login-on-any-packet",
    "second-login-request": "second-login-accepted",
    "split-packets": "partial-read-closes",
    "coalesced-packets": "multi-packet-read-closes",
    "zero-length-packet": "crash-on-zero-length",
    "unknown-packet-type": "crash-on-unknown-type",
    "oversize-login-request": "accept-long-login",
    "truncated-login-then-close": "crash-on-truncated",
    "largest-packet-accepted": "max-packet-1000",
    "end-of-session-last": "ended-data-after-z",
    "no-server-unsequenced-or-end": "omega-sends-z",
    "empty-message-ends-replay": "empty-message-mid-replay",
}


async def test_our_ended_session_sends_end_of_session_last() -> None:
    store = MemoryStore()
    store.append_many(HISTORY)
    async with serve(
        ("127.0.0.1", 0), store=store, session_id="SESSION1", credentials={USER: PASSWORD}
    ) as server:
        await server.end_session()
        target = ServerTarget(*server.address, user=USER, password=PASSWORD)
        results = await run_cases(select(CATALOGUE, Target.SERVER, cases=["*/2.2.6/*"]), target)
    assert [(r.case.id, r.outcome) for r in results] == [
        ("4.00/2.2.6/end-of-session-last", Outcome.PASS),
        ("4.10/2.2.6/end-of-session-last", Outcome.PASS),
    ]


def test_every_server_case_has_a_fault_that_breaks_it() -> None:
    assert set(NAMES) == set(CATCHES)
    assert set(CATCHES.values()) == set(FAULTS)


async def _run(fault: str | None, cases: list[str], dialect: str) -> dict[str, Outcome]:
    async with broken_server(fault) as (host, port):
        target = ServerTarget(host, port, user=USER, password=PASSWORD, dialect=dialect)
        chosen = [c for c in SERVER_CASES if c.id in cases]
        return {r.case.id: r.outcome for r in await run_cases(chosen, target, jobs=8)}


def _variants(name: str) -> dict[str, list[str]]:
    """The ids of case `name` (every version) by dialect."""
    by_dialect: dict[str, list[str]] = {}
    for case in SERVER_CASES:
        if case.id.endswith("/" + name):
            by_dialect.setdefault(case.dialect, []).append(case.id)
    return by_dialect


async def _catches() -> dict[str, Outcome]:
    """Every case against the server broken in its rule, all at once: the outcomes."""
    runs = [
        _run(CATCHES[name], ids, dialect)
        for name in NAMES
        for dialect, ids in _variants(name).items()
    ]
    merged: dict[str, Outcome] = {}
    for got in await asyncio.gather(*runs):
        merged.update(got)
    return merged


async def test_every_case_catches_the_server_broken_in_its_rule() -> None:
    """Every case of every version (4.00, 4.10, Omega), each against its broken server."""
    got = await _catches()
    assert len(got) == len(SERVER_CASES)
    assert {k: v for k, v in got.items() if v is not Outcome.FAIL} == {}


@pytest.mark.long
@pytest.mark.parametrize("dialect", ["soupbintcp", "omega"])
async def test_the_unbroken_scripted_server_passes(dialect: str) -> None:
    names = [c.id for c in select(CATALOGUE, Target.SERVER, dialect)]
    got = await _run(None, names, dialect)
    failed = {k: v for k, v in got.items() if v is Outcome.FAIL}
    assert failed == {}
