"""The unsequenced inbox: a client's Unsequenced Data, handed to `on_unsequenced` in order.

Layer 3 (server driver). A plain handler runs at once. A coroutine handler runs in a task
per connection; what arrives while it awaits waits here, in order, and the next call waits
for the previous one.

Bounded in bytes, not only in count (issue 15): a connection stops reading from its client
(the rest waits in the socket, and TCP slows the client down) while its inbox holds
`_INBOX_HIGH` messages or `_INBOX_HIGH_BYTES`, until it is down to a quarter of both; and
every connection stops adding while all inboxes together hold `_INBOX_TOTAL_BYTES`, each
resuming once the total is back under it. 1,024 packets of 64 KB per connection had let
eight clients take half a gigabyte.

Per user, in the order sent (issue 15): when a user reconnects while its earlier
connection's messages still wait for the handler, the new connection's messages wait until
those are handled. For order entry, a later order never overtakes an earlier one.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final

from ._config import OnUnsequenced

if TYPE_CHECKING:
    from ._connection import Connection
    from ._protocol import ServerProtocol

__all__ = ["Inbox", "InboxBudget"]

_INBOX_HIGH: Final = 1024
_INBOX_LOW: Final = 256
_INBOX_HIGH_BYTES: Final = 1024 * 1024
_INBOX_LOW_BYTES: Final = 256 * 1024
_INBOX_TOTAL_BYTES: Final = 64 * 1024 * 1024
#: Why a connection stops reading, as `ServerProtocol.pause_reading` records it.
HOLD: Final = "inbox"


class InboxBudget:
    """What the inboxes of one server share: the bytes they hold together, those waiting
    for that total to go down, and each user's latest inbox (for the order per user)."""

    __slots__ = ("by_user", "total", "waiting")

    def __init__(self) -> None:
        self.total = 0
        self.waiting: dict[Inbox, None] = {}
        self.by_user: dict[str, Inbox] = {}

    def full(self) -> bool:
        return self.total >= _INBOX_TOTAL_BYTES

    def wake(self) -> None:
        """Resume the inboxes that wait only for the total to go down."""
        if self.waiting and not self.full():
            waiting = list(self.waiting)
            self.waiting.clear()
            for inbox in waiting:
                inbox.resume()


class Inbox:
    """The Unsequenced Data of one connection on its way to the handler."""

    __slots__ = ("_budget", "_bytes", "_conn", "_done", "_loop", "_predecessor", "_queue",
                 "_user", "_worker", "_workers", "handler", "idle", "paused")  # fmt: skip

    def __init__(
        self,
        conn: ServerProtocol,
        handler: OnUnsequenced,
        loop: asyncio.AbstractEventLoop,
        workers: set[asyncio.Task[None]],
        budget: InboxBudget,
    ) -> None:
        self._conn = conn
        self.handler = handler
        self._loop = loop
        self._workers = workers  # the server's: it cancels them when it closes
        self._budget = budget
        self._queue: deque[bytes] = deque()
        self._bytes = 0
        self._worker: asyncio.Task[None] | None = None
        self._done: asyncio.Event | None = None  # set when the worker ends, if awaited
        self._predecessor: Inbox | None = None  # the same user's earlier inbox, still busy
        self._user: str | None = None
        #: Reading from the client is paused because the handler fell behind.
        self.paused = False
        #: No handler call is under way and none waits for an earlier connection: a
        #: message can go to `handler` at once (what `put` does then, and the connection's
        #: one-packet path inline). Kept equal to `_worker is None and _predecessor is None`.
        self.idle = True

    @property
    def busy(self) -> bool:
        """Messages are still on their way to the handler."""
        return self._worker is not None

    def logged_in(self, user: str) -> None:
        """The connection logged in as `user` (normalized): queue behind that user's
        earlier connection if its messages are still being handled."""
        by_user = self._budget.by_user
        earlier = by_user.get(user)
        if earlier is not None and earlier.busy:
            self._predecessor = earlier
            self.idle = False
        by_user[user] = self
        self._user = user

    def closed(self) -> None:
        """The connection closed; what it sent is still handled."""
        if not self.busy:
            self._forget_user()

    def put(self, data: bytes) -> None:
        if self._worker is None:
            if self._predecessor is not None and self._predecessor.busy:
                self._enqueue(data)
                self.start(None)
                return
            self._predecessor = None
            self.idle = True
            try:
                result = self.handler(self._conn.connection, data)
            except Exception:
                self._conn.handler_failed("on_unsequenced")
                return
            if result is not None and inspect.isawaitable(result):
                self.start(result)
            return
        self._enqueue(data)

    def _enqueue(self, data: bytes) -> None:
        # A handler is still awaiting: queue, in order, and stop reading if it falls behind.
        self._queue.append(data)
        size = len(data)
        self._bytes += size
        budget = self._budget
        budget.total += size
        if not self.paused and (
            len(self._queue) >= _INBOX_HIGH or self._bytes >= _INBOX_HIGH_BYTES or budget.full()
        ):
            self.paused = True
            self._conn.pause_reading(HOLD)

    def start(self, first: Awaitable[None] | None) -> None:
        """Await `first` (the handler's awaitable), or the earlier connection's messages,
        in a task; what arrives meanwhile is queued."""
        self.idle = False
        self._worker = self._loop.create_task(self._work(first))
        self._workers.add(self._worker)

    def clear(self, *, drop_from_now: bool = False) -> None:
        """Drop what waits; with `drop_from_now` (the handler failed after the session
        ended) also what the client sends from now on: the failure is logged once."""
        if drop_from_now:
            self.handler = _dropped
        self._budget.total -= self._bytes
        self._bytes = 0
        self._queue.clear()
        self._budget.wake()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._conn.resume_reading(HOLD)

    def _popped(self, size: int) -> None:
        self._bytes -= size
        budget = self._budget
        budget.total -= size
        if (
            self.paused
            and len(self._queue) <= _INBOX_LOW
            and self._bytes <= _INBOX_LOW_BYTES
            and self not in budget.waiting
        ):
            if budget.full():
                budget.waiting[self] = None
            else:
                self.resume()
        budget.wake()

    async def _idle(self) -> None:
        if self._worker is None:
            return
        if self._done is None:
            self._done = asyncio.Event()
        await self._done.wait()

    async def _work(self, first: Awaitable[None] | None) -> None:
        """Wait for the same user's earlier connection, await the handler, then run it over
        what was queued meanwhile, in order. Keeps going if the connection closes: the
        client sent those messages."""
        handler = self.handler
        conn = self._conn
        queue = self._queue
        try:
            if self._predecessor is not None:
                await self._predecessor._idle()
                self._predecessor = None
            if first is not None:
                await first
            while queue:
                data = queue.popleft()
                self._popped(len(data))
                result = handler(conn.connection, data)
                if result is not None and inspect.isawaitable(result):
                    await result
        except asyncio.CancelledError:
            raise
        except Exception:
            conn.handler_failed("on_unsequenced")
        finally:
            self._workers.discard(asyncio.current_task())
            self._worker = None
            self.idle = self._predecessor is None
            if self._done is not None:
                self._done.set()
                self._done = None
            if conn.closed:
                self._forget_user()

    def _forget_user(self) -> None:
        by_user = self._budget.by_user
        if self._user is not None and by_user.get(self._user) is self:
            del by_user[self._user]
        self._budget.waiting.pop(self, None)


def _dropped(connection: Connection, data: bytes) -> None:
    """The handler once `clear(drop_from_now=True)` was called: `data` is dropped."""
