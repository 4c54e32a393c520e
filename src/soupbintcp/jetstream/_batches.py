"""The writer's messages numbered and cut into log entries, until the log holds them.

Layer 4. Part of `LogWriter`: published messages get the next numbers and gather in an
open batch, sealed at `max_messages` messages or `max_bytes` bytes (or when the send loop
comes round: batching never holds a message back waiting for more). Sealed batches wait
here, oldest first, until the follower has read them back from the log.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Final

from .._wire._packets import sequenced_frames
from ._log import Batch

__all__ = ["Batches"]

#: The largest entry we send; NATS refuses payloads over its max_payload (1 MiB by default).
_MAX_ENTRY: Final = 512 * 1024


class Batches:
    """The numbering and the batches of one writer."""

    __slots__ = ("_open", "_open_bytes", "_open_count", "max_bytes", "max_messages", "next",
                 "sealed")  # fmt: skip

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        #: Sealed batches the log does not hold validly yet, oldest first.
        self.sealed: deque[Batch] = deque()
        self._open: list[bytes] = []
        self._open_count = 0
        self._open_bytes = 0
        self.next = 0  # the number the next published message gets (after start)

    def add(self, messages: Sequence[bytes]) -> None:
        """Number `messages` (at most `max_messages` of them) into the open batch."""
        frames, count = sequenced_frames(messages)
        if len(frames) > _MAX_ENTRY and count > 1:
            # Big messages: halve until an entry fits well inside NATS's payload limit.
            half = count // 2
            self.add(messages[:half])
            self.add(messages[half:])
            return
        self._open.append(frames)
        self._open_count += count
        self._open_bytes += len(frames)
        self.next += count
        if self._open_count >= self.max_messages or self._open_bytes >= self.max_bytes:
            self.seal()

    def seal(self) -> None:
        if not self._open_count:
            return
        frames = self._open[0] if len(self._open) == 1 else b"".join(self._open)
        first = self.next - self._open_count
        self.sealed.append(Batch(first, self._open_count, frames))
        self._open.clear()
        self._open_count = self._open_bytes = 0

    def held(self, count: int) -> int:
        """The log holds messages up to `count`: forget the sealed batches it covers; return
        how many there were."""
        sealed = self.sealed
        dropped = 0
        while sealed and sealed[0].first + sealed[0].count - 1 <= count:
            sealed.popleft()
            dropped += 1
        return dropped
