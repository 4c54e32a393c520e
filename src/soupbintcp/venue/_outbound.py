"""The accounts' answers on their way out: published at once, or each held for the `delay`
fault's time, in order.

Layer 4. Part of `Venue`; what is held is published on time by a timer of the loop, and
all of it at once when the venue closes.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .._server._server import Server

__all__ = ["Outbound"]


class Outbound:
    """Publishes into the per-account streams of `server` (set once it is started)."""

    def __init__(self) -> None:
        self.server: Server | None = None
        #: How long each answer is held before it is published (0: not at all).
        self.delay_seconds = 0.0
        self._delayed: deque[tuple[float, str, bytes]] = deque()
        self._delay_timer: asyncio.TimerHandle | None = None

    def publish(self, account: str, payloads: list[bytes]) -> None:
        if not self.delay_seconds and not self._delayed:
            assert self.server is not None
            self.server.publish_many(payloads, user=account)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + self.delay_seconds
        self._delayed.extend((due, account, payload) for payload in payloads)
        if self._delay_timer is None:
            self._delay_timer = loop.call_at(self._delayed[0][0], self.publish_delayed)

    def publish_delayed(self, force: bool = False) -> None:
        """Publish what is due (with `force`: everything held)."""
        self._delay_timer = None
        if not self._delayed or self.server is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._delayed and (force or self._delayed[0][0] <= now):
            _, account, payload = self._delayed.popleft()
            self.server.publish(payload, user=account)
        if self._delayed:
            self._delay_timer = loop.call_at(self._delayed[0][0], self.publish_delayed)

    def close(self) -> None:
        """Publish everything held now (the venue is closing)."""
        if self._delay_timer is not None:
            self._delay_timer.cancel()
        self.publish_delayed(force=True)
