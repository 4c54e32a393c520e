"""The order client's chaos trials: a program entering orders (tests/order_chaos_client.py)
is SIGKILLed at random moments and run again with its state, through a fault proxy that
cuts connections, against mirrored venue hosts it fails over between, with scripted
rejects; afterwards the venue's own records are checked:

- every intended order was entered exactly once (its ClOrdID among the orders the venue
  consumed a UserRefNum for, once);
- no UserRefNum was reused (the numbers the venue consumed strictly increase, and the
  client's journal never holds a number twice);
- the client's final view (rebuilt from its state directory, as a rerun would) of every
  order (open and executed shares), every fill and the positions equals the venue's.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from soupbintcp import ouch
from soupbintcp.orders import OrderCore, StateDir

from .fault_proxy import FaultProxy
from .order_chaos_client import KILL_POINTS, run

USER = "acct1"
#: What each trial adds to the kills: nothing, cuts, cuts and a mirror to fail over to,
#: scripted rejects and delays.
KINDS = ("kill", "cut", "failover", "reject")

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["soupbintcp.orders", "tests.order_chaos_client"])


class ChaosVenue(Protocol):
    """What a trial needs of a venue: mirrored hosts, its records, its scripted faults."""

    addresses: list[tuple[str, int]]

    def consumed(self, user: str) -> list[tuple[int, str]]:
        """(UserRefNum, ClOrdID) of every Enter Order the venue consumed a number for."""

    def orders(self, user: str) -> dict[int, tuple[str, int, int]]:
        """UserRefNum -> (ClOrdID, open shares, executed shares), as the venue holds them."""

    def positions(self, user: str) -> dict[str, int]:
        """Net executed shares per symbol (bought minus sold)."""

    def reject_next(self, count: int) -> None: ...

    def ignored(self) -> int:
        """Inbound messages the venue dropped without an answer (repeats, superfluous)."""

    def delay(self, milliseconds: float) -> None: ...

    async def close(self) -> None: ...


@dataclass
class TrialResult:
    kind: str
    kills: int = 0
    kill_points: Counter[str] = field(default_factory=Counter)
    runs: int = 0
    cuts: int = 0
    intents: int = 0
    ignored: int = 0


def make_intents(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "id": f"C{k}",
            "symbol": rng.choice(["AAPL", "MSFT"]),
            "side": rng.choice("BS"),
            "qty": rng.randint(1, 5) * 100,
            # around $100.00, a few cents apart: the orders cross each other often
            "price": 1_000_000 + rng.randint(-3, 3) * 100,
            "tif": rng.choice("003"),
        }
        for k in range(1, rng.randint(5, 40))
    ]


async def _run_child(
    addresses: list[tuple[str, int]],
    state: Path,
    intents_file: Path,
    seed: int,
    kill_at: tuple[str, int] | None,
    kill_after: float | None,
) -> int | None:
    """One run of the program: its exit code (-9: killed)."""
    args = (addresses, USER, str(state), str(intents_file), seed, kill_at)
    process = _CONTEXT.Process(target=run, args=args)
    process.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (kill_after if kill_after is not None else 20.0)
    while process.exitcode is None and loop.time() < deadline:
        await asyncio.sleep(0.002)  # the venue runs in this loop: never block it
    if process.exitcode is None:
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        while process.exitcode is None:
            await asyncio.sleep(0.002)
    code = process.exitcode
    process.close()
    return code


async def trial(venue: ChaosVenue, seed: int, kind: str, tmp: Path) -> TrialResult:
    rng = random.Random(seed)
    result = TrialResult(kind)
    intents = make_intents(rng)
    result.intents = len(intents)
    intents_file = tmp / "intents.json"
    intents_file.write_text(json.dumps(intents))
    state = tmp / "state"
    proxy: FaultProxy | None = None
    addresses = list(venue.addresses[:1])
    if kind in ("cut", "failover"):
        # the first connections are cut at a random byte of the stream (mid-packet too)
        cuts = [rng.randint(20, 1500) for _ in range(rng.randint(1, 4))]
        proxy = FaultProxy(
            venue.addresses[0], cut_at=lambda n: cuts[n] if n < len(cuts) else None, seed=seed
        )
        addresses = [await proxy.start()]
        if kind == "failover":
            addresses.append(venue.addresses[1])  # a mirror: the same account, the same book
    if kind == "reject":
        # scripted rejects (the numbers are used up all the same) and delayed answers
        venue.reject_next(rng.randint(1, 3))
        venue.delay(rng.choice([0.0, 2.0, 10.0]))
    max_kills = rng.randint(0, 3)
    try:
        while True:
            kill_at = kill_after = None
            if result.kills < max_kills:
                if rng.random() < 0.6:
                    kill_at = (rng.choice(sorted(KILL_POINTS)), rng.randint(1, 6))
                else:
                    kill_after = rng.uniform(0.0, 0.08)
            code = await _run_child(
                addresses, state, intents_file, seed * 100 + result.runs, kill_at, kill_after
            )
            result.runs += 1
            if code == -signal.SIGKILL:
                result.kills += 1
                if kill_at is not None:
                    result.kill_points[kill_at[0]] += 1
                else:
                    result.kill_points["timer"] += 1
                continue
            assert code == 0, f"the program failed (exit {code}), seed {seed}"
            break
    finally:
        if proxy is not None:
            result.cuts = proxy.cuts
            await proxy.close()
    check(venue, intents, state, seed)
    result.ignored = venue.ignored()
    return result


def check(venue: ChaosVenue, intents: list[dict[str, Any]], state: Path, seed: int) -> None:
    consumed = venue.consumed(USER)
    ids = Counter(clid for _, clid in consumed)
    wanted = Counter(str(i["id"]) for i in intents)
    assert ids == wanted, f"seed {seed}: entered {ids - wanted} too often, {wanted - ids} never"
    numbers = [num for num, _ in consumed]
    assert numbers == sorted(set(numbers)), f"seed {seed}: a UserRefNum reused: {numbers}"

    sent = StateDir(state)
    try:
        journaled = []
        for payload in sent.sent_payloads():
            msg = ouch.decode_inbound(payload)
            if isinstance(msg, ouch.EnterOrder | ouch.ReplaceOrderRequest):
                journaled.append(msg.user_ref_num)
        assert journaled == sorted(set(journaled)), f"seed {seed}: the journal reuses a number"
    finally:
        sent.close()

    core = OrderCore(StateDir(state))  # the client's view, rebuilt as a rerun rebuilds it
    try:
        book = core.book
        theirs = venue.orders(USER)
        mine = {
            n: (o.cl_ord_id, o.open, o.executed)
            for n, o in book.orders.items()
            if n in theirs or o.status.value != "rejected"
        }
        assert mine == theirs, f"seed {seed}: client {mine} != venue {theirs}"
        for order in book.orders.values():
            assert sum(f.quantity for f in order.fills) == order.executed
        assert {s: p for s, p in book.positions.items() if p} == venue.positions(USER)
        assert core.idle or not book.has_unanswered
    finally:
        assert core.state is not None
        core.state.close()


async def run_trials(
    make_venue: Any, count: int, tmp: Path, first_seed: int = 0
) -> list[TrialResult]:
    results = []
    for seed in range(first_seed, first_seed + count):
        kind = KINDS[seed % len(KINDS)]
        venue = await make_venue()
        try:
            directory = tmp / f"trial{seed}"
            directory.mkdir()
            results.append(await trial(venue, seed, kind, directory))
        finally:
            await venue.close()
    return results
