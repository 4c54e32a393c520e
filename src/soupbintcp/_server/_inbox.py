"""The unsequenced inbox: a client's Unsequenced Data, handed to `on_unsequenced` in order.

Layer 3 (server driver). A plain handler runs at once. A coroutine handler runs in a task
per connection; what arrives while it awaits waits here, in order, and the next call waits
for the previous one. If the handler falls behind by `_INBOX_HIGH` messages the connection
stops reading from the client (the rest waits in the socket, and TCP slows the client down)
until the inbox is down to `_INBOX_LOW`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final

from ._config import OnUnsequenced

if TYPE_CHECKING:
    from ._protocol import ServerProtocol

__all__ = ["Inbox"]

# Unsequenced messages waiting for a slow handler before we stop reading from that client.
_INBOX_HIGH: Final = 1024
_INBOX_LOW: Final = 256


class Inbox:
    """The Unsequenced Data of one connection on its way to the handler."""

    __slots__ = ("_conn", "_handler", "_loop", "_queue", "_worker", "_workers", "paused")

    def __init__(
        self,
        conn: ServerProtocol,
        handler: OnUnsequenced,
        loop: asyncio.AbstractEventLoop,
        workers: set[asyncio.Task[None]],
    ) -> None:
        self._conn = conn
        self._handler = handler
        self._loop = loop
        self._workers = workers  # the server's: it cancels them when it closes
        self._queue: deque[bytes] = deque()
        self._worker: asyncio.Task[None] | None = None
        #: Reading from the client is paused because the handler fell behind.
        self.paused = False

    def put(self, data: bytes) -> None:
        if self._worker is not None:
            # A handler is still awaiting: queue, in order, and stop reading if it falls behind.
            queue = self._queue
            queue.append(data)
            if len(queue) >= _INBOX_HIGH and not self.paused:
                self.paused = True
                self._conn.pause_reading()
            return
        try:
            result = self._handler(self._conn.connection, data)
        except Exception:
            self._conn.handler_failed("on_unsequenced")
            return
        if result is not None and inspect.isawaitable(result):
            self._worker = self._loop.create_task(self._work(result))
            self._workers.add(self._worker)

    def clear(self) -> None:
        self._queue.clear()

    async def _work(self, first: Awaitable[None]) -> None:
        """Await the handler, then run it over what was queued meanwhile, in order. Keeps
        going if the connection closes: the client sent those messages."""
        handler = self._handler
        conn = self._conn
        queue = self._queue
        try:
            await first
            while queue:
                data = queue.popleft()
                if self.paused and len(queue) <= _INBOX_LOW:
                    self.paused = False
                    conn.resume_reading()
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
