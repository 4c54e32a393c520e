"""The bounded queue of received runs waiting for the application, and the handing out of
`Message` objects one at a time: what the SoupBinTCP clients' inbox and the MoldUDP64
listeners' queue share. No I/O here.

Layer 2 (sans-IO): it is handed `pause` / `resume` callbacks over its owner's I/O and calls
nothing else of the layers above (the blocking drivers call into it with their lock held, so
the callbacks run with it held). The SoupBinTCP clients own one (`_client._inbox.Inbox`);
the MoldUDP64 listeners derive from it. The hot path stays `next(queue._run, None)` in the
driver: one attribute and one C call.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .._errors import SoupBinTCPError
from .._wire._packets import UnsequencedData
from ._events import BatchItem, Message, SequencedFrames, SequencedMessages, message_run

__all__ = ["Queued", "RunQueue", "as_batch_item"]

#: What a queue may hold: batch items, zero-copy runs once a session's view is on, and
#: single sequenced messages as the round trip's fast path makes them (`put_one`).
Queued = SequencedMessages | SequencedFrames | UnsequencedData | Message

_Item = TypeVar("_Item", bound=Queued)


class RunQueue(Generic[_Item]):
    """Runs of sequenced payloads (and, for a client, unsequenced messages), in stream order.

    `Message` objects are made one at a time as they are handed out (`next(self._run)`): a
    tuple subclass stays tracked by the garbage collector, so a whole run of them made at
    once slows every collection. `next()` on that run is one C call, so several threads
    may take from a run without a lock and each message still goes to exactly one of them.
    """

    def __init__(
        self, max_queue: int, *, pause: Callable[[], bool], resume: Callable[[], None]
    ) -> None:
        self._init_queue(max_queue, pause=pause, resume=resume)

    def _init_queue(
        self, max_queue: int, *, pause: Callable[[], bool], resume: Callable[[], None]
    ) -> None:
        """`pause()` stops reading when `max_queue` messages are queued (False if it cannot:
        no connection, logging out); `resume()` reads again once a quarter of that is left."""
        self._pause = pause
        self._resume = resume
        self._high_water = max(1, max_queue)
        self._low_water = self._high_water // 4
        self._items: deque[_Item] = deque()  # received, not yet handed out
        self._queued = 0  # messages in _items
        # The run being handed out: `_run` makes Messages from `_run_left`'s payloads.
        self._run: Iterator[Message] = iter(())
        self._run_left: Iterator[bytes] = iter(())
        self._run_end = 0  # the sequence number after the run's last message
        self._paused = False  # reading stopped: the queue is full
        self._end: SoupBinTCPError | None = None  # set once the stream is over for good

    # --- the application's side ------------------------------------------------------------

    def _unread(self) -> int:
        """Messages received and not yet handed to the application."""
        return self._queued + operator.length_hint(self._run_left)

    def _dequeued(self, n: int) -> None:
        self._queued -= n
        if self._paused and self._queued <= self._low_water:
            self._paused = False
            self._resume()

    def _take_one(self) -> Message | None:
        """The next message, or None if none is queued (the slow path of `receive_msg`);
        raises once the stream is over and every message received before its end has been
        handed out."""
        msg = next(self._run, None)
        if msg is not None:
            return msg  # another reader started a run meanwhile: it must not be replaced
        if not self._items:
            if self._end is not None:
                raise self._end
            return None
        item = self._items.popleft()
        run_item: Queued = item
        if type(run_item) is not SequencedMessages:  # checked inline: no call for a plain run
            if type(run_item) is Message:  # the round trip's answer: `_dequeued(1)` inlined
                self._queued -= 1
                if self._paused:
                    self._dequeued(0)  # resumes reading at the low-water mark
                return run_item
            if type(run_item) is UnsequencedData:
                self._dequeued(1)
                return Message((None, run_item.data))
            run_item = as_batch_item(run_item)
            assert type(run_item) is SequencedMessages
        payloads = run_item.messages
        self._dequeued(len(payloads))
        run, left = message_run(run_item.first_sequence, payloads)
        msg = next(run)  # before another thread's fast path can see the run
        self._run_left = left
        self._run_end = run_item.first_sequence + len(payloads)
        self._run = run
        return msg

    def put_one(self, msg: Message) -> None:
        """Queue one sequenced message, made already (the round trip's fast path)."""
        self._items.append(msg)  # type: ignore[arg-type]  # every queue takes a Message
        self._queued += 1
        if self._queued >= self._high_water and not self._paused:
            self._paused = self._pause()

    def _take_queued(self) -> list[SequencedMessages | _Item]:
        """Everything queued (the rest of the current run first); [] if nothing is."""
        out: list[SequencedMessages | _Item] = []
        rest = list(self._run_left)
        if rest:
            out.append(SequencedMessages(self._run_end - len(rest), rest))
        if self._items:
            out.extend(self._items)
            self._items.clear()
            self._dequeued(self._queued)
        return out


def as_batch_item(item: Queued) -> BatchItem:
    """`item` as `receive_batch` hands it out (a zero-copy run copied into payloads)."""
    if isinstance(item, SequencedFrames):
        return SequencedMessages(item.first_sequence, item.payloads())
    if type(item) is Message:
        return SequencedMessages(item[0], [item[1]])  # type: ignore[arg-type]  # sequenced
    return item  # type: ignore[return-value]  # SequencedMessages or UnsequencedData
