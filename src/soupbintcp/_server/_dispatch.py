"""Where the server's events go: counted, logged, then to `on_event` and the iterators.

Layer 3 (server driver). The `EventDispatcher` does three things with each `ServerEvent`,
always in this order: counts it in the server's `ServerStats` (what metrics read), writes the
server's log line for it (made from the event, so the log and the events never disagree),
and hands it to the application's `on_event` callback and to every `Server.events()`
iterator. An exception raised by `on_event` is logged and dropped: it never affects a
connection, and the server never waits for a slow listener.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Final

from ._config import OnEvent
from ._events import ServerEvent
from ._repeats import RepeatedLines, kind_of

__all__ = ["ITERATOR_QUEUE", "EventDispatcher"]

log = logging.getLogger("soupbintcp.server")

#: Events an `events()` iterator holds for a consumer that is behind; older ones are dropped.
ITERATOR_QUEUE: Final = 10_000


class EventDispatcher:
    """Counts, logs and hands out the server's events (see the module's docstring)."""

    __slots__ = ("_count", "_iterators", "_loop", "_on_event", "_queue", "_worker", "lines")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_event: OnEvent | None,
        count: Callable[[ServerEvent], None],
    ) -> None:
        self._loop = loop
        self._on_event = on_event
        self._count = count
        self._iterators: list[_EventIterator] = []
        # A coroutine on_event is awaited by one worker task, event after event, in order.
        self._queue: deque[ServerEvent] = deque()
        self._worker: asyncio.Task[None] | None = None
        #: Warning lines that repeat (a storm of hostile connections) are said once, then
        #: counted: every event's line goes through it.
        self.lines = RepeatedLines(loop, log)

    def emit(self, event: ServerEvent) -> None:
        self._count(event)
        level = event.log_level()
        if log.isEnabledFor(level):
            error = getattr(event, "error", None)
            if isinstance(error, OSError):  # the machine's (a full disk): one line says it
                self.lines.log(level, event.describe(), f"{type(event).__name__}: {error}")
            elif error is not None:  # the application's bug: every traceback matters
                log.log(level, "%s", event.describe(), exc_info=error)
            elif level >= logging.WARNING:
                # Alike: the same kind of event for the same reason, numbers aside.
                kind = kind_of(f"{type(event).__name__}: {getattr(event, 'detail', '')}")
                self.lines.log(level, event.describe(), kind)
            else:
                log.log(level, "%s", event.describe())
        on_event = self._on_event
        if on_event is not None:
            if inspect.iscoroutinefunction(on_event):
                self._queue.append(event)
                if self._worker is None:
                    self._worker = self._loop.create_task(self._drain(on_event))
            else:
                try:
                    on_event(event)
                except Exception:
                    log.exception("on_event raised for %r (ignored)", event)
        for iterator in self._iterators:
            iterator.put(event)

    async def _drain(self, on_event: OnEvent) -> None:
        queue = self._queue
        try:
            while queue:
                event = queue.popleft()
                try:
                    await on_event(event)  # type: ignore[misc]
                except Exception:
                    log.exception("on_event raised for %r (ignored)", event)
        finally:
            self._worker = None
            if queue:  # cancelled with events left: the server is closing, drop them
                queue.clear()

    def iterate(self) -> AsyncIterator[ServerEvent]:
        iterator = _EventIterator(self._iterators.remove)
        self._iterators.append(iterator)
        return iterator

    async def close(self) -> None:
        """The server closed: the iterators end once they have handed out what they hold,
        and the events already given to a coroutine `on_event` are awaited."""
        for iterator in list(self._iterators):
            iterator.end()
        worker = self._worker
        if worker is not None and worker is not asyncio.current_task():
            await asyncio.gather(worker, return_exceptions=True)


class _EventIterator:
    """`async for event in server.events()`: every event from its creation until the server
    closes. A consumer that falls `ITERATOR_QUEUE` events behind loses the oldest ones (the
    server never waits for it); `dropped` counts them."""

    def __init__(self, forget: Callable[[_EventIterator], None]) -> None:
        self._forget = forget
        self._events: deque[ServerEvent] = deque()
        self._ended = False
        self._wakeup: asyncio.Future[None] | None = None
        self.dropped = 0

    def put(self, event: ServerEvent) -> None:
        events = self._events
        if len(events) >= ITERATOR_QUEUE:
            events.popleft()
            self.dropped += 1
        events.append(event)
        self._wake()

    def end(self) -> None:
        self._ended = True
        self._forget(self)
        self._wake()

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def __aiter__(self) -> _EventIterator:
        return self

    async def __anext__(self) -> ServerEvent:
        while not self._events:
            if self._ended:
                raise StopAsyncIteration
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        return self._events.popleft()

    async def aclose(self) -> None:
        """Stop listening (also what `break` out of `async for` leads to, eventually)."""
        if not self._ended:
            self.end()
