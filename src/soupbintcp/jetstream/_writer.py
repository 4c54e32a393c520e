"""The one writer of a feed's log: batches of messages appended under a fence.

Layer 4. Messages are numbered here as they are published (the next number after all that
the log holds and all that this writer has in flight) and sent as batch entries of up to
`batch_messages` messages / `batch_bytes` bytes, many entries in flight at once. Each append
says which entry it must follow (``Nats-Expected-Last-Sequence``); JetStream refuses it
otherwise. Nothing here decides what is durable: a message is durable once the follower has
read it back from the log (JetStream delivers only what a quorum stored).

Taking the log (the claim, a takeover after a crashed writer's silence) is `_claim`'s; the
numbering and the batches until the log holds them are `_batches`'s.

Trouble of any kind — a refused append, an acknowledgement that does not come, a lost
connection — is handled one way: stop sending, look at the log as it is (the follower
catches up to its last entry), and if this writer still holds it, send again every batch
the log does not hold validly, fenced on the entry that is really last. If another writer
has claimed the log, stop with `WriterFenced`.

A writer never pretends: `publish_many` raises `LogError` once it cannot append (its
follower stopped, its send loop failed: both latched, said at once in an ERROR line) and
while its cache cannot be written (it could not see its messages come back from the log).
`flush` and `append_control` raise the same. So a message whose number `publish_many`
returned was queued by a writer that could still append; it counts as published once the
follower has read it back (`confirmed_count`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from typing import Final

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from ._batches import Batches
from ._claim import API_TIMEOUT, LogClaim, writer_token
from ._follower import LogFollower
from ._log import (
    COUNT,
    ENTRY,
    EXPECTED_LAST,
    FIRST,
    WRITER,
    WRONG_LAST_SEQUENCE,
    EntryKind,
    LogAddress,
    LogError,
    LogUnavailable,
    WriterFenced,
    describe_writer,
)
from ._nats import ensure_stream, stop_task, stream_info

__all__ = ["LogWriter"]

log = logging.getLogger("soupbintcp.jetstream")


#: 1,000 ITCH-sized messages, about 30 KB: the entry size JetStream takes fastest (issue 11).
DEFAULT_BATCH_MESSAGES: Final = 1000
DEFAULT_BATCH_BYTES: Final = 32 * 1024
#: Entries sent and not yet acknowledged; more would only queue inside NATS.
DEFAULT_WINDOW: Final = 64
_ACK_TIMEOUT: Final = 2.0
_TICK: Final = 0.05
_RESYNC_GAP: Final = 0.25


class LogWriter:
    """Appends to the log that `follower` reads. `await start()` first (it claims the log),
    then `publish_many` from the event loop's thread."""

    def __init__(
        self,
        nc: NATS,
        address: LogAddress,
        follower: LogFollower,
        *,
        session_id: str,
        replicas: int | None = None,
        batch_messages: int = DEFAULT_BATCH_MESSAGES,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        window: int = DEFAULT_WINDOW,
        takeover_after: float = 2.0,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream(timeout=API_TIMEOUT)
        self.address = address
        self._follower = follower
        self.session_id = session_id
        self._replicas = replicas
        self._window = window
        # A live writer speaks well within the time after which another may take over.
        self._keepalive = takeover_after / 4
        self.token = writer_token()
        self._claim = LogClaim(
            self._js, address, follower, session_id=session_id, token=self.token,
            takeover_after=takeover_after,
        )  # fmt: skip
        self._loop = asyncio.get_running_loop()
        # The numbering and the sealed batches; the first `_sent` of those are on their way
        # in this round.
        self._batches = Batches(batch_messages, batch_bytes)
        self._sent = 0
        self._expected = 0  # the log entry the next append must follow
        self._in_flight: dict[int, float] = {}  # reply number -> time sent
        self._reply = 0
        self._round = 0
        self._trouble = False
        self._last_resync = 0.0
        self._last_send = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inbox = ""
        self.fenced: WriterFenced | None = None
        #: Why this writer cannot append any more (None while it can).
        self.failed: LogError | None = None
        self._stopped = False

    # --- taking the log --------------------------------------------------------------------

    async def start(self) -> None:
        """Create the stream if missing, then claim the log: at once if it is new or its
        last writer released it; after `takeover_after` seconds of silence if a writer
        held it (a crashed one); `WriterFenced` if that writer is still appending."""
        self._inbox = self._nc.new_inbox()
        await self._nc.subscribe(f"{self._inbox}.>", cb=self._ack)
        await ensure_stream(self._js, self.address, self._replicas)
        self._expected = claim = await self._claim.take()
        self._batches.next = self._follower.state.count + 1
        log.info(
            "log %s: %s holds the log from entry %d; next message %d",
            self.address,
            describe_writer(self.token),
            claim,
            self._batches.next,
        )
        self._task = self._loop.create_task(self._send_loop())

    # --- publishing ------------------------------------------------------------------------

    @property
    def next_sequence(self) -> int:
        """The number the next published message gets."""
        return self._batches.next

    @property
    def confirmed_count(self) -> int:
        """Messages the log holds, as read back from it: the ones that count as published."""
        return self._follower.state.count

    def check(self) -> None:
        """Raise why this writer cannot append now, if it cannot."""
        if self.fenced is not None:
            raise self.fenced
        if self.failed is not None:
            raise self.failed
        follower = self._follower
        if follower.error is not None:
            self._fail(LogError(f"the writer's follower stopped: {follower.error}"))
            raise self.failed  # type: ignore[misc]
        if follower.cache_error is not None:
            raise LogError(f"the writer cannot see its messages in the log: {follower.cache_error}")

    def _fail(self, exc: LogError) -> None:
        if self.failed is None:
            self.failed = exc
            log.error("log %s: this writer cannot append any more: %s", self.address, exc)
        self._wake.set()

    @property
    def backlog(self) -> int:
        """Messages published and not yet held by the log."""
        return self._batches.next - 1 - self._follower.state.count

    def publish_many(self, messages: Iterable[bytes]) -> int:
        """Number `messages` and queue them for the log; return the first number.
        `LogError` (`WriterFenced`) if this writer cannot append (see the module)."""
        self.check()
        if self._stopped:
            raise LogError("the writer is closed")
        batches = self._batches
        first = batches.next
        if not isinstance(messages, list | tuple):
            messages = list(messages)
        step = batches.max_messages
        for start in range(0, len(messages), step):
            batches.add(messages[start : start + step])
        if batches.next != first:
            self._wake.set()
        return first

    def confirmed(self) -> None:
        """The follower folded an entry in: forget the batches the log now holds, and stop
        if another writer claimed the log."""
        state = self._follower.state
        self._sent = max(0, self._sent - self._batches.held(state.count))
        if (
            self._batches.next
            and not self._stopped
            and state.holder != self.token
            and not self.fenced
        ):
            self._fence(self._claim.taken(state.holder))

    def _fence(self, why: str) -> None:
        self.fenced = WriterFenced(why)
        log.error("%s", why)
        self._wake.set()

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait until the log holds everything published so far (`WriterFenced` if it
        never will)."""
        self._batches.seal()
        self._wake.set()
        target = self._batches.next - 1
        deadline = self._loop.time() + timeout
        while self._follower.state.count < target:
            if self.fenced is not None:
                raise self.fenced
            if self.failed is not None or self._follower.error is not None:
                self.check()
            if self._loop.time() > deadline:
                self.check()
                raise TimeoutError(f"the log did not take messages up to {target} in time")
            await asyncio.sleep(0.005)

    async def append_control(self, kind: EntryKind) -> None:
        """Append End of Session or a release after everything published; waits for it."""
        await self.flush()
        await self._stop_sending()
        while True:
            entry = await self._claim.try_append(kind, self._follower.state.log_seq, {})
            if entry is not None:
                self._expected = entry
                return
            # An entry sent before we stopped (a keepalive) landed first: look again.
            info = await stream_info(self._js, self.address)
            await self._follower.caught_up(info.state.last_seq if info else 0, timeout=10.0)
            if self._follower.state.holder != self.token:
                raise WriterFenced(self._claim.taken(self._follower.state.holder))

    async def _stop_sending(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._wake.set()
            await stop_task(self._task)
            self._task = None

    async def close(self) -> None:
        await self._stop_sending()

    # --- the send loop ---------------------------------------------------------------------

    async def _send_loop(self) -> None:
        try:
            await self._sending()
        except asyncio.CancelledError:
            raise
        except LogError as exc:
            self._fail(exc)
        except Exception as exc:
            log.exception("log %s: the send loop failed", self.address)
            self._fail(LogError(f"the send loop failed: {exc!r}"))

    async def _sending(self) -> None:
        # `_stopped` too, not only the cancellation: 3.11's wait_for can swallow a cancel
        # that arrives as the event is set.
        while self.fenced is None and self.failed is None and not self._stopped:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _TICK)
            self._wake.clear()
            now = self._loop.time()
            if self._in_flight:
                oldest = now - min(self._in_flight.values())
                if oldest > _ACK_TIMEOUT:
                    self._trouble = True
                    await self._follower.watch.unanswered("appends not acknowledged")
                    if not self._nc.is_connected:
                        self._in_flight.clear()  # lost with the connection: resend them
            if self._follower.error is not None:
                raise LogError(f"the writer's follower stopped: {self._follower.error}")
            if self._trouble:
                try:
                    await self._resync()
                except (LogUnavailable, TimeoutError, nats.errors.Error) as exc:
                    why = str(exc) or type(exc).__name__
                    log.warning("log %s: %s; retrying", self.address, why)
                    await self._follower.watch.unanswered(why)
                    await asyncio.sleep(0.25)
                    continue
                except WriterFenced as exc:
                    self._fence(str(exc))
                    return
            self._seal_if_idle()
            try:
                await self._send_batches()
                if (
                    not self._batches.sealed
                    and self._loop.time() - self._last_send > self._keepalive
                ):
                    await self._send(EntryKind.ALIVE, b"", {})
            except (OSError, nats.errors.Error) as exc:
                log.warning("log %s: sending failed (%s); resending", self.address, exc)
                self._trouble = True

    def _seal_if_idle(self) -> None:
        # Whatever was published by the time the loop comes round goes out now: batching
        # never holds a message back waiting for more.
        self._batches.seal()

    async def _send_batches(self) -> None:
        batches = self._batches.sealed
        while self._sent < len(batches) and len(self._in_flight) < self._window:
            if self._trouble or self.fenced is not None:
                return
            batch = batches[self._sent]
            self._sent += 1
            await self._send(
                EntryKind.BATCH,
                batch.frames,
                {FIRST: str(batch.first), COUNT: str(batch.count)},
            )

    async def _send(self, kind: EntryKind, data: bytes, extra: dict[str, str]) -> None:
        headers = {
            ENTRY: kind.value,
            WRITER: self.token,
            EXPECTED_LAST: str(self._expected),
            **extra,
        }
        self._reply += 1
        self._in_flight[self._reply] = self._loop.time()
        self._expected += 1
        self._last_send = self._loop.time()
        reply = f"{self._inbox}.{self._round}.{self._reply}"
        await self._nc.publish(self.address.subject, data, reply=reply, headers=headers)

    async def _ack(self, msg: Msg) -> None:
        _, round_, number = msg.subject.rsplit(".", 2)
        if int(round_) != self._round:
            return  # an answer to a round given up on
        self._in_flight.pop(int(number), None)
        try:
            answer = json.loads(msg.data)
        except ValueError:
            answer = {"error": {"description": "not JSON"}}
        error = answer.get("error") if isinstance(answer, dict) else None
        if error is None:
            self._follower.watch.answered()
            return
        # A node that refuses every append (a cut-off leader answers from what it holds)
        # counts as not answering: once nothing succeeds for the bound, we move off it.
        await self._follower.watch.unanswered(f"appends refused: {error.get('description')}")
        if not self._trouble:
            if error.get("err_code") != WRONG_LAST_SEQUENCE:
                log.warning("log %s refused an entry: %s", self.address, error.get("description"))
            self._trouble = True
            self._wake.set()

    async def _resync(self) -> None:
        """Look at the log as it is and resend from there (at most every `_RESYNC_GAP`
        seconds: a log refusing every append is not hammered, nor the log file flooded)."""
        wait = self._last_resync + _RESYNC_GAP - self._loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_resync = self._loop.time()
        deadline = self._loop.time() + _ACK_TIMEOUT
        while self._in_flight and self._loop.time() < deadline:
            await self._follower.watch.unanswered("appends not acknowledged")
            if not self._nc.is_connected:
                break  # lost with the connection: resent below
            await asyncio.sleep(0.01)
        self._round += 1
        self._in_flight.clear()
        info = await stream_info(self._js, self.address, quorum=True)
        last = info.state.last_seq if info is not None else 0
        # Bounded: entries the follower is not given in time send us round again (and
        # count towards moving off a node that does not answer).
        await self._follower.caught_up(last, timeout=_ACK_TIMEOUT)
        state = self._follower.state
        if state.holder != self.token:
            raise WriterFenced(self._claim.taken(state.holder))
        self.confirmed()
        self._sent = 0
        self._expected = state.log_seq
        self._trouble = False
        log.info(
            "log %s: resending from message %d after entry %d",
            self.address,
            state.count + 1,
            state.log_seq,
        )
