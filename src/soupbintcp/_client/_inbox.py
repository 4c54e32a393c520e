"""The received messages of a client, waiting for the application: the queueing of the
session's events and the batch handouts (as payloads or zero-copy). The bounded queue and the
handing out of `Message` objects are `_session._queue`'s, shared with the MoldUDP64
listeners. No I/O here.

Layer 3 (drivers). `ClientCore` owns one, handing it `pause` / `resume` over the driver's
I/O; the drivers read its run directly (`next(inbox._run, None)`, the hot path) and call
`queue` / `take_all` / `take_frames` (the blocking driver with its lock held).
"""

from __future__ import annotations

import operator

from .._session._events import (
    BatchItem,
    Event,
    FramesItem,
    Message,
    SequencedFrames,
    SequencedMessages,
)
from .._session._queue import Queued, RunQueue, as_batch_item
from .._wire._packets import UnsequencedData

__all__ = ["Inbox"]


class Inbox(RunQueue[Queued]):
    """Runs of sequenced payloads and unsequenced messages, in stream order."""

    def queue(self, events: list[Event]) -> tuple[int, list[Event]]:
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
                self._paused = self._pause()
        return n, other

    # --- the application's side ------------------------------------------------------------

    def take_all(self) -> list[BatchItem]:
        """Everything queued as batch items; [] if nothing is."""
        items = self._items
        if len(items) == 1 and not operator.length_hint(self._run_left):
            # The usual hand-out (one run queued, none begun): `_take_queued` written out,
            # without its lists (the order client's round trip reads every answer here).
            item = items.popleft()
            self._dequeued(self._queued)
            return [item if type(item) is SequencedMessages else as_batch_item(item)]
        return list(map(as_batch_item, self._take_queued()))

    def take_frames(self) -> list[FramesItem]:
        """Everything queued as zero-copy items; [] if nothing is. Runs that arrived before
        the view was on are copied into one buffer each, once."""
        return list(map(_as_frames_item, self._take_queued()))


def _as_frames_item(item: Queued) -> FramesItem:
    if isinstance(item, SequencedMessages):
        return SequencedFrames.from_payloads(item.first_sequence, item.messages)
    if type(item) is Message:
        return SequencedFrames.from_payloads(item[0], [item[1]])  # type: ignore[arg-type]
    return item  # type: ignore[return-value]  # SequencedFrames or UnsequencedData
