"""Other participants: seeded market makers and takers, so a program under test sees a market.

Bot *i* is account ``*bot<i>`` (no SoupBinTCP login can name it: usernames are
alphanumeric, so a client never shares a bot's account). Even ones make markets (a bid
and an offer a few cents either side of a drifting mid price, at most 8 resting orders,
the oldest cancelled first), odd ones take (IOC orders through the mid). Each has its own
`random.Random` seeded from ``seed`` and its number, and acts every ``interval`` seconds;
their orders go through the venue's input journal like any account's, so a restart
replays them.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import soupbintcp.ouch as ouch

__all__ = ["BOT_PREFIX", "Bots", "bot_names"]

#: Bots' accounts start with it; their answers are never published (nobody reads them).
BOT_PREFIX = "*"

_MAX_RESTING = 8
_CENT = 100  # ticks


def bot_names(count: int) -> list[str]:
    """The accounts of ``count`` bots."""
    return [f"{BOT_PREFIX}bot{i}" for i in range(1, count + 1)]


class Bots:
    def __init__(self, venue: Any, count: int, seed: int, interval: float = 0.02) -> None:
        self.venue = venue
        self.names = bot_names(count)
        self.rngs = {name: random.Random(f"{seed}:{name}") for name in self.names}
        base = random.Random(seed)
        self.mids = {s: 1_000_000 + base.randrange(-50, 50) * _CENT for s in venue.symbols}
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.venue.engine.open:
                self.step()

    def step(self) -> None:
        """One action of every bot."""
        for number, name in enumerate(self.names):
            rng = self.rngs[name]
            symbol = rng.choice(self.venue.symbols)
            self.mids[symbol] = max(10 * _CENT, self.mids[symbol] + rng.choice((-1, 0, 1)) * _CENT)
            if number % 2 == 0:
                self._make(name, rng, symbol)
            else:
                self._take(name, rng, symbol)

    def _next(self, name: str) -> int:
        return int(self.venue.engine.account(name).last_user_ref_num) + 1

    def _make(self, name: str, rng: random.Random, symbol: str) -> None:
        orders = self.venue.engine.account(name).orders
        if len(orders) >= _MAX_RESTING:
            oldest = min(orders.values(), key=lambda o: o.ref)
            self.venue.submit(name, ouch.CancelOrderRequest(oldest.user_ref_num, 0).encode())
        mid = self.mids[symbol]
        for side, sign in ((ouch.Side.BUY, -1), (ouch.Side.SELL, 1)):
            price = mid + sign * rng.randint(1, 5) * _CENT
            order = ouch.EnterOrder(
                self._next(name), side, rng.randint(1, 5) * 100, symbol, price,
                cl_ord_id=f"{name}-mm",
            )  # fmt: skip
            self.venue.submit(name, order.encode())

    def _take(self, name: str, rng: random.Random, symbol: str) -> None:
        buy = rng.random() < 0.5
        mid = self.mids[symbol]
        order = ouch.EnterOrder(
            self._next(name), ouch.Side.BUY if buy else ouch.Side.SELL,
            rng.randint(1, 3) * 100, symbol, mid + (10 if buy else -10) * _CENT,
            ouch.TimeInForce.IOC, cl_ord_id=f"{name}-take",
        )  # fmt: skip
        self.venue.submit(name, order.encode())
