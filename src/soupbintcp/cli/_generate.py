"""`--generate RATE`: the synthetic feed published at a steady rate, for `serve` (a journal
or a replicated log's writer) and `mold serve`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from soupbintcp.store import MessageStore

from ._synthetic import synthetic_messages

__all__ = ["Publisher", "generate", "into_store"]

#: How often the generator publishes what is due (seconds): 10 ms batches.
_TICK = 0.01


class Publisher(Protocol):
    """What `into_store` publishes into: a server, or (for `mold serve`) a journal."""

    @property
    def store(self) -> MessageStore: ...

    def publish_many(self, messages: list[bytes]) -> int: ...


def into_store(target: Publisher) -> Callable[[int], object]:
    """Publish the next `n` synthetic messages, numbered after what `target`'s store holds."""
    return lambda n: target.publish_many(synthetic_messages(target.store.count + 1, n))


async def generate(
    publish: Callable[[int], object],
    rate: float,
    stop: asyncio.Event,
    *,
    room: Callable[[], bool] | None = None,
) -> None:
    """Call `publish(n)` with the messages due at `rate` per second, in 10 ms batches, until
    `stop`. While `room()` says no, what falls due is skipped rather than burst later."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    while not stop.is_set():
        due = int((loop.time() - started) * rate) - sent
        if due > 0:
            if room is None or room():
                publish(due)
            sent += due
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _TICK)
