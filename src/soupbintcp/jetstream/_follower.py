"""Following the log: every entry from the next one we lack, in order, folded by `LogState`.

Layer 4. An ordered consumer of JetStream (ephemeral, no acks, one per follower) delivers the
entries from `state.log_seq + 1` on. JetStream hands a consumer only what a quorum of the
stream's replicas has stored, so whatever the follower passes on is acknowledged by the log.
If deliveries stop (the node holding the consumer died, the connection was lost), the
follower asks the stream how far it reaches and, if it lacks entries, subscribes again from
the next one it lacks: it never skips one and never takes one twice. If the node it is on
stops answering for the stream (cut off from the others, it has no leader), a `NodeWatch`
moves the connection to another node.

Trouble with the cache (`CacheUnwritable`: a full disk) is not the log's: the entry is not
folded in, an ERROR line says why, and the follower tries again from that entry with a
growing pause (`cache_error` says what failed meanwhile). Anything else it cannot handle
stops it for good (`error`); the gateway then lets its clients go.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from ._log import Batch, CacheUnwritable, LogAddress, LogError, LogState, LogUnavailable
from ._nats import NodeWatch, stop_task, stream_info

__all__ = ["LogFollower"]

log = logging.getLogger("soupbintcp.jetstream")

#: How long one JetStream API call may take before the log counts as unreachable.
_API_TIMEOUT: Final = 2.0

#: The consumer's idle heartbeat: a silent consumer is noticed after a few of these.
_HEARTBEAT = 0.5
_STALL = 4 * _HEARTBEAT
#: The pause before writing the cache again after it failed: doubling up to the maximum.
_RETRY_FIRST: Final = 0.25
_RETRY_MAX: Final = 5.0


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
        #: What the cache last refused (None: its last write worked), and how many times.
        self.cache_error: str | None = None
        self.cache_errors = 0
        self._retry = _RETRY_FIRST
        #: Loop time of the last entry folded in, or of the last look at the stream that
        #: found nothing missing: how long the follower has not progressed.
        self.progressed = asyncio.get_running_loop().time()
        self.watch = NodeWatch(nc, address)

    @property
    def failed(self) -> bool:
        """Stopped for good (`error` says why)."""
        return self.error is not None

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
                except CacheUnwritable as exc:
                    self.cache_errors += 1
                    retry = self._retry
                    if self.cache_error is None or retry >= _RETRY_MAX:
                        log.error(
                            "%s; entry %d of the log stays unapplied: trying again in %.2g s",
                            exc,
                            self.state.log_seq + 1,
                            retry,
                        )
                    self.cache_error = str(exc)
                    await asyncio.sleep(retry)
                    self._retry = min(2 * retry, _RETRY_MAX)
                except LogUnavailable as exc:
                    self._unreachable(str(exc))
                    await self.watch.unanswered(str(exc))
                    await asyncio.sleep(_HEARTBEAT)
                except (TimeoutError, nats.errors.Error) as exc:
                    why = f"the log {self.address} does not answer ({exc!r})"
                    self._unreachable(why)
                    await self.watch.unanswered(why)
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
            self.progressed = asyncio.get_running_loop().time()
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
                    info = await stream_info(self._js, self.address, quorum=True)
                    if info is not None and info.state.last_seq > self.state.log_seq:
                        self.entries_behind = info.state.last_seq - self.state.log_seq
                        await self.watch.unanswered("entries that were not delivered")
                        return  # entries exist that did not come: subscribe again
                    self.reachable = True
                    if self.state.holder is None or self.state.ended:
                        # Nobody is appending: silence is all there is to hear. While a
                        # writer holds the log it speaks every half second, so only its
                        # entries (or its acknowledgements) say this node still answers.
                        self.watch.answered()
                    self.progressed = asyncio.get_running_loop().time()
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
        was_ended = state.ended
        before = copy.copy(state)
        batch = state.apply(seq, msg.headers, msg.data)
        if batch is not None:
            try:
                self._deliver(batch)
            except CacheUnwritable:
                # Not folded in: the same entry is applied again when the cache takes it.
                state.__dict__.update(before.__dict__)
                raise
        self.entries_behind = msg.metadata.num_pending
        self.progressed = asyncio.get_running_loop().time()
        self.watch.answered()
        if self.cache_error is not None:
            log.warning("the cache takes writes again: following from entry %d", seq)
            self.cache_error = None
            self._retry = _RETRY_FIRST
        self._progress.set()
        if self._on_entry is not None:
            self._on_entry()
        if state.ended and not was_ended:
            await self._on_end()
