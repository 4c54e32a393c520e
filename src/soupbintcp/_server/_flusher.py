"""A stream's timed flushes: making what was published durable when the store does not
make it so at once (`Durability.TIMER`), then releasing it.

Layer 3 (server driver). A part of a `Stream`, which calls `soon` when a publish left
messages not yet durable and `now` when everything must be durable at once (the session
ends, the server closes); after each flush the stream's `deliver` releases what it made
durable. A flush that fails is said (a `StoreFlushFailed` event) and tried again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..store import MessageStore
from ._dispatch import EventDispatcher
from ._events import StoreFlushed, StoreFlushFailed

__all__ = ["Flusher"]


class Flusher:
    """The flush timer of one stream's store: at most one flush per `interval`."""

    __slots__ = ("_deliver", "_events", "_handle", "_interval", "_loop", "_session_id",
                 "_store", "_user")  # fmt: skip

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        store: MessageStore,
        interval: float,
        events: EventDispatcher,
        *,
        session_id: str,
        user: str | None,
        deliver: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._store = store
        self._interval = interval
        self._events = events
        self._session_id = session_id
        self._user = user
        self._deliver = deliver
        self._handle: asyncio.TimerHandle | None = None

    def soon(self) -> None:
        """Flush within `interval` (once, however many publishes ask)."""
        if self._handle is None:
            self._handle = self._loop.call_later(self._interval, self._fire)

    def _fire(self) -> None:
        self._handle = None
        try:
            self.flush()
        except Exception as exc:
            self._events.emit(
                StoreFlushFailed(session=self._session_id, user=self._user, error=exc)
            )
            self._handle = self._loop.call_later(self._interval, self._fire)
            return
        self._deliver()

    def flush(self) -> None:
        """Flush the store now (raises what the store raises)."""
        # Timed here, once per flush (every `interval` at most while publishing), not per
        # message: the flush-duration histogram of the metrics.
        started = time.perf_counter()
        self._store.flush()
        seconds = time.perf_counter() - started
        self._events.emit(
            StoreFlushed(
                session=self._session_id,
                user=self._user,
                durable=self._store.durable_count,
                seconds=seconds,
            )
        )

    def now(self) -> None:
        """Make everything published durable now (the timer is no longer needed)."""
        self.cancel()
        store = self._store
        if store.durable_count < store.count:
            self.flush()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
