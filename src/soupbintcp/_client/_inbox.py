"""The received messages of a client, waiting for the application: the bounded queue, the
building of `Message` objects and the batch handout. Shared by both drivers, no I/O here.

Layer 3 (drivers). A driver derives from `Inbox` (no indirection on the hot path) and
supplies `_pause_reading()` / `_resume_reading()` (the core does, over the driver's I/O);
the blocking driver calls these with its lock held.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Iterator

from .._session._events import (
    BatchItem,
    Event,
    FramesItem,
    Message,
    SequencedFrames,
    SequencedMessages,
    message_run,
)
from .._wire._packets import UnsequencedData

__all__ = ["Inbox"]


class Inbox:
    """Runs of sequenced payloads and unsequenced messages, in stream order.

    `Message` objects are made one at a time as they are handed out (`next(self._run)`): a
    tuple subclass stays tracked by the garbage collector, so a whole run of them made at
    once slows every collection. `next()` on that `map` is one C call, so several threads
    may take from a run without a lock and each message still goes to exactly one of them.
    """

    def _init_inbox(self, max_queue: int) -> None:
        self._high_water = max(1, max_queue)
        self._low_water = self._high_water // 4
        self._items: deque[_Queued] = deque()  # received, not yet handed out
        self._queued = 0  # messages in _items
        # The run being handed out: `_run` makes Messages from `_run_left`'s payloads.
        self._run: Iterator[Message] = iter(())
        self._run_left: Iterator[bytes] = iter(())
        self._run_end = 0  # the sequence number after the run's last message
        self._paused = False  # reading stopped: the queue is full

    # --- the driver's side -----------------------------------------------------------------

    def _pause_reading(self) -> bool:
        """Stop reading the connection; False if it cannot be (no connection, logging out)."""
        raise NotImplementedError

    def _resume_reading(self) -> None:
        raise NotImplementedError

    def _queue(self, events: list[Event]) -> tuple[int, list[Event]]:
        """Queue the messages among `events`: (how many, the other events in order)."""
        n = 0
        items = self._items
        other: list[Event] = []
        for event in events:
            if type(event) is SequencedMessages:
                items.append(event)
                n += len(event.messages)
            elif type(event) is UnsequencedData:
                items.append(event)
                n += 1
            elif type(event) is SequencedFrames:  # the session's zero-copy view is on
                items.append(event)
                n += len(event)
            else:
                other.append(event)
        if n:
            self._queued += n
            if self._queued >= self._high_water and not self._paused:
                self._paused = self._pause_reading()
        return n, other

    # --- the application's side ------------------------------------------------------------

    def _unread(self) -> int:
        """Messages received and not yet handed to the application."""
        return self._queued + operator.length_hint(self._run_left)

    def _dequeued(self, n: int) -> None:
        self._queued -= n
        if self._paused and self._queued <= self._low_water:
            self._paused = False
            self._resume_reading()

    def _take_one(self) -> Message | None:
        """The next message, or None if none is queued (the slow path of `receive_msg`)."""
        msg = next(self._run, None)
        if msg is not None:
            return msg  # another reader started a run meanwhile: it must not be replaced
        if not self._items:
            return None
        item = self._items.popleft()
        if type(item) is UnsequencedData:
            self._dequeued(1)
            return Message((None, item.data))
        item = _as_batch_item(item)
        assert type(item) is SequencedMessages
        payloads = item.messages
        self._dequeued(len(payloads))
        run, left = message_run(item.first_sequence, payloads)
        msg = next(run)  # before another thread's fast path can see the run
        self._run_left = left
        self._run_end = item.first_sequence + len(payloads)
        self._run = run
        return msg

    def _take_queued(self) -> list[_Queued]:
        """Everything queued (the rest of the current run first); [] if nothing is."""
        out: list[_Queued] = []
        rest = list(self._run_left)
        if rest:
            out.append(SequencedMessages(self._run_end - len(rest), rest))
        if self._items:
            out.extend(self._items)
            self._items.clear()
            self._dequeued(self._queued)
        return out

    def _take_all(self) -> list[BatchItem]:
        """Everything queued as batch items; [] if nothing is."""
        return list(map(_as_batch_item, self._take_queued()))

    def _take_frames(self) -> list[FramesItem]:
        """Everything queued as zero-copy items; [] if nothing is. Runs that arrived before
        the view was on are copied into one buffer each, once."""
        return list(map(_as_frames_item, self._take_queued()))


#: What the inbox holds: batch items, and zero-copy runs once the session's view is on.
_Queued = SequencedMessages | SequencedFrames | UnsequencedData


def _as_batch_item(item: _Queued) -> BatchItem:
    if isinstance(item, SequencedFrames):
        return SequencedMessages(item.first_sequence, item.payloads())
    return item


def _as_frames_item(item: _Queued) -> FramesItem:
    if isinstance(item, SequencedMessages):
        return SequencedFrames.from_payloads(item.first_sequence, item.messages)
    return item
