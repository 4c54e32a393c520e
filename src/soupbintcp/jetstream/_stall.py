"""Letting a gateway's clients go while it cannot follow its log.

Layer 4. A gateway *cannot follow* when its follower stopped for good, when its cache cannot
be written (a full disk), or when it is connected to the log but the log does not answer for
the stream or stays ahead of it. After `stall_after` seconds of that, `StallGuard` has the
server refuse logins ("session not available") and closes the logged-in clients, so that a
client given several gateways fails over to one that follows; it takes logins again once the
gateway follows. A gateway that reaches no log node at all, or whose session has ended, is
not stalled: the first cannot tell a log that is down from its own isolation (every gateway
may be in the same place) and serves what it holds; the second holds the whole session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from .._server._server import Server
from ._follower import LogFollower
from ._log import LogAddress, LogState
from ._nats import stop_task

__all__ = ["StallGuard"]

log = logging.getLogger("soupbintcp.jetstream")

#: How often the guard looks.
WATCH_INTERVAL: Final = 0.25


class StallGuard:
    """Watches one gateway (through the callables it is given: the two are composed, not
    inherited) and lets its clients go after `stall_after` seconds of not following."""

    def __init__(
        self,
        address: LogAddress,
        state: LogState,
        stall_after: float,
        *,
        server: Callable[[], Server | None],
        follower: Callable[[], LogFollower | None],
        connected: Callable[[], bool],
    ) -> None:
        self._address = address
        self._state = state
        self.stall_after = stall_after
        self._server = server
        self._follower = follower
        self._connected = connected
        self._loop = asyncio.get_running_loop()
        self._since: float | None = None
        self._task: asyncio.Task[None] | None = None
        #: Why the gateway is letting its clients go (None: it follows its log).
        self.letting_go: str | None = None
        #: Logged-in clients closed because the gateway could not follow its log.
        self.clients_let_go = 0

    def start(self) -> None:
        if self._task is None:
            self._task = self._loop.create_task(self._watch())

    async def close(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None

    def stall(self) -> tuple[str, float] | None:
        """Why the gateway is not following its log and for how many seconds, or None."""
        follower = self._follower()
        if follower is None:
            return None  # not connected since it started: it serves its cache meanwhile
        if follower.error is not None:
            why = f"following the log failed: {follower.error}"
        elif follower.cache_error is not None:
            why = f"the cache cannot be written: {follower.cache_error}"
        elif self._state.ended or not self._connected():
            self._since = None
            return None
        elif not follower.reachable:
            why = f"the log {self._address} does not answer for the stream"
        elif follower.entries_behind > 0:
            why = f"{follower.entries_behind} entries behind the log"
        else:
            self._since = None
            return None
        now = self._loop.time()
        if self._since is None:
            # From the later of the last progress and the moment it could have gone on (a
            # log that came back after being down for all is given the full time).
            self._since = max(follower.progressed, now - WATCH_INTERVAL)
        return why, now - self._since

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            self.check()

    def check(self) -> None:
        """Let the clients go if the gateway has not followed its log for `stall_after`
        seconds; take logins again once it does."""
        server = self._server()
        if server is None:
            return
        stall = self.stall()
        if stall is not None and stall[1] >= self.stall_after:
            if self.letting_go is None:
                self.letting_go = f"this gateway cannot follow its log: {stall[0]}"
                server.refuse_logins(self.letting_go)
                log.error(
                    "not following the log for %.1f s (%s): refusing logins and closing the "
                    "connections of %d clients so that they fail over to another gateway",
                    stall[1],
                    stall[0],
                    sum(1 for conn in server.connections if conn.logged_in),
                )
            for conn in server.connections:
                if conn.logged_in and not conn.closed:
                    conn.close(self.letting_go)
                    self.clients_let_go += 1
        elif stall is None and self.letting_go is not None:
            log.warning("following the log %s again: taking logins", self._address)
            self.letting_go = None
            server.refuse_logins(None)
