"""What every connection of one server shares, in one small object.

Layer 3 (server driver). The `Server` makes it and changes `session` when a new session
starts; the connections read it. It is the whole of what a connection knows of its server.
"""

from __future__ import annotations

import asyncio
import logging

from ._config import ServerConfig
from ._feed_session import FeedSession
from ._inbox import InboxBudget
from ._listener import Admission
from ._repeats import RepeatedLines
from ._throttle import LoginThrottle

__all__ = ["ServerContext"]


class ServerContext:
    """The configuration, the loop, the admission registry, the current session and the
    tasks running `on_unsequenced` handlers (the server cancels them when it closes), what
    their inboxes share, the failed logins per address and user, and the warning lines that
    repeat."""

    __slots__ = ("admission", "config", "inboxes", "lines", "loop", "session", "throttle",
                 "workers")  # fmt: skip

    def __init__(
        self, config: ServerConfig, loop: asyncio.AbstractEventLoop, session: FeedSession
    ) -> None:
        self.config = config
        self.loop = loop
        self.admission = Admission(config)
        #: The current session: the one logins are answered for.
        self.session = session
        self.workers: set[asyncio.Task[None]] = set()
        self.inboxes = InboxBudget()
        self.throttle = LoginThrottle()
        self.lines = RepeatedLines(loop, logging.getLogger("soupbintcp.server"))
