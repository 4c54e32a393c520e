"""What every connection of one server shares, in one small object.

Layer 3 (server driver). The `Server` makes it and changes `session` when a new session
starts; the connections read it. It is the whole of what a connection knows of its server.
"""

from __future__ import annotations

import asyncio
import itertools

from ._config import ServerConfig
from ._dispatch import EventDispatcher
from ._feed_session import FeedSession
from ._inbox import InboxBudget
from ._listener import Admission
from ._status import ServerStats
from ._throttle import LoginThrottle

__all__ = ["ServerContext"]


class ServerContext:
    """The configuration, the loop, the admission registry, the current session, the tasks
    running `on_unsequenced` handlers (the server cancels them when it closes), what their
    inboxes share, the failed logins per address and user, and where events go (`events`,
    counted in `stats`, logged through `lines`: warnings that repeat are counted)."""

    __slots__ = ("_ids", "admission", "config", "events", "inboxes", "lines", "loop", "refusing",
                 "session", "stats", "throttle", "workers")  # fmt: skip

    def __init__(
        self,
        config: ServerConfig,
        loop: asyncio.AbstractEventLoop,
        session: FeedSession,
        events: EventDispatcher,
        stats: ServerStats,
    ) -> None:
        self.config = config
        self.loop = loop
        self.admission = Admission(config)
        #: The current session: the one logins are answered for.
        self.session = session
        self.workers: set[asyncio.Task[None]] = set()
        self.inboxes = InboxBudget()
        self.throttle = LoginThrottle()
        self.events = events
        self.lines = events.lines
        self.stats = stats
        #: Why logins are answered "session not available" for now (None: they are not).
        self.refusing: str | None = None
        self._ids = itertools.count(1)

    def connection_id(self) -> int:
        """A new connection's number: 1, 2, 3, ... for the life of the server."""
        return next(self._ids)
