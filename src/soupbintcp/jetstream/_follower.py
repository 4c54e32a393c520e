"""Following the log: every entry from the next one we lack, in order, folded by `LogState`.

Layer 4. An ordered consumer of JetStream (ephemeral, no acks, one per follower) delivers the
entries from `state.log_seq + 1` on. JetStream hands a consumer only what a quorum of the
stream's replicas has stored, so whatever the follower passes on is acknowledged by the log.
If deliveries stop (the node holding the consumer died, the connection was lost), the
follower asks the stream how far it reaches and, if it lacks entries, subscribes again from
the next one it lacks: it never skips one and never takes one twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from ._log import Batch, LogAddress, LogError, LogState, LogUnavailable
from ._nats import stop_task, stream_info

__all__ = ["LogFollower"]

log = logging.getLogger("soupbintcp.jetstream")

#: How long one JetStream API call may take before the log counts as unreachable.
_API_TIMEOUT: Final = 2.0

#: The consumer's idle heartbeat: a silent consumer is noticed after a few of these.
_HEARTBEAT = 0.5
_STALL = 4 * _HEARTBEAT


class LogFollower:
    """Folds the log into `state` and hands each valid batch to `deliver` in order.

    `on_entry()` is called after each entry (the writer watches `state.holder` there),
    `on_end()` once End of Session is in the log.
    """

    def __init__(
        self,
        nc: NATS,
        address: LogAddress,
        state: LogState,
        deliver: Callable[[Batch], None],
        on_end: Callable[[], Awaitable[None]],
        on_entry: Callable[[], None] | None = None,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream(timeout=_API_TIMEOUT)
        self.address = address
        self.state = state
        self._deliver = deliver
        self._on_end = on_end
        self._on_entry = on_entry
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Whether the log answered the last time we asked (for status lines and tests).
        self.reachable = True
        self.error: BaseException | None = None
        #: Entries the log held after the last one delivered, as JetStream said with it
        #: (per entry, not per message: what metrics call the gateway's lag behind the log).
        self.entries_behind = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def caught_up(self, log_seq: int, timeout: float | None = None) -> None:
        """Wait until entries 1..`log_seq` are folded in."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self.state.log_seq < log_seq:
            if self.error is not None:
                raise LogError(f"the follower stopped: {self.error}") from self.error
            self._progress.clear()
            wait = None if deadline is None else max(0.0, deadline - loop.time())
            if wait == 0.0:
                raise TimeoutError(f"log entry {log_seq} not reached")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), wait if wait is not None else 1.0)

    async def _run(self) -> None:
        try:
            while True:
                try:
                    await self._follow()
                except LogUnavailable as exc:
                    self._unreachable(str(exc))
                    await asyncio.sleep(_HEARTBEAT)
                except (TimeoutError, nats.errors.Error) as exc:
                    self._unreachable(f"the log {self.address} does not answer ({exc!r})")
                    await asyncio.sleep(_HEARTBEAT)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.error = exc
            self._progress.set()
            log.exception("following the log %s failed", self.address)
            raise

    def _unreachable(self, why: str) -> None:
        if self.reachable:
            log.warning(
                "%s: serving the %d messages already held; catching up when it returns",
                why,
                self.state.count,
            )
        self.reachable = False

    async def _follow(self) -> None:
        """One subscription: until deliveries stall while the stream holds more."""
        start = self.state.log_seq + 1
        if await stream_info(self._js, self.address) is None:
            if self.reachable:
                log.warning("log %s: no such stream yet: waiting for its writer", self.address)
            self.reachable = True
            await asyncio.sleep(_HEARTBEAT)
            return
        sub = await self._js.subscribe(
            self.address.subject,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=start),
            idle_heartbeat=_HEARTBEAT,
            pending_msgs_limit=1 << 20,
            pending_bytes_limit=256 * 1024 * 1024,
        )
        if not self.reachable:
            log.warning("log %s answers again: following from entry %d", self.address, start)
            self.reachable = True
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=_STALL)
                except (TimeoutError, nats.errors.TimeoutError):
                    info = await stream_info(self._js, self.address)
                    if info is not None and info.state.last_seq > self.state.log_seq:
                        return  # entries exist that did not come: subscribe again
                    self.reachable = True
                    continue
                await self._entry(msg)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _entry(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        state = self.state
        if seq <= state.log_seq:
            return  # a redelivery after a resubscription
        if seq != state.log_seq + 1:
            raise LogUnavailable(f"log entry {seq} came where {state.log_seq + 1} was due")
        self.entries_behind = msg.metadata.num_pending
        was_ended = state.ended
        batch = state.apply(seq, msg.headers, msg.data)
        if batch is not None:
            self._deliver(batch)
        self._progress.set()
        if self._on_entry is not None:
            self._on_entry()
        if state.ended and not was_ended:
            await self._on_end()
