"""Events the sans-IO sessions hand to their drivers, beyond the packets themselves.

Layer 2. A session returns packets (`LoginAccepted`, `UnsequencedData`, `Debug`, ...) as events
as they are, plus the events here, which have no one-to-one packet.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate, count
from operator import itemgetter
from typing import TYPE_CHECKING, Final

from .._speedups import ACCELERATED
from .._wire._packets import Packet, UnsequencedData

if ACCELERATED:
    from .._speedups._core import MessageCursor

__all__ = [
    "BatchItem",
    "Event",
    "FramesItem",
    "Message",
    "NoMoreMessages",
    "SequencedFrames",
    "SequencedMessages",
    "message_run",
]


class Message(tuple[int | None, bytes]):
    """One message delivered to the application: `.sequence` (None if unsequenced), `.data`.

    A plain tuple subclass, because the receive path builds millions of them: `Message((n, b))`
    in bulk through `map` is several times cheaper than a dataclass.
    """

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def sequence(self) -> int | None: ...

        @property
        def data(self) -> bytes: ...
    else:
        sequence = property(itemgetter(0), doc="Sequence number, or None if unsequenced.")
        data = property(itemgetter(1), doc="The message payload.")

    def __repr__(self) -> str:
        return f"Message(sequence={self[0]!r}, data={self[1]!r})"


def message_run(first: int, payloads: list[bytes]) -> tuple[Iterator[Message], Iterator[bytes]]:
    """Messages numbered from `first`, made one at a time as `next()` asks, and the payloads
    not made into messages yet; both share one place, so what one takes the other skips.

    `next()` on either is one C call, so threads may share them without a lock. The compiled
    cursor when the extension is in use, else `map` over `zip` (the reference).
    """
    if ACCELERATED:
        cursor = MessageCursor(Message, first, payloads)
        return cursor, cursor.payloads_left()
    left = iter(payloads)
    return map(Message, zip(count(first), left)), left


@dataclass(frozen=True, slots=True)
class SequencedMessages:
    """One or more consecutive Sequenced Data packets: `messages[i]` has `first_sequence + i`.

    Runs of sequenced data are handed over whole so that the hot path makes no object per
    message; `Message` objects are built by whoever wants them, in bulk.
    """

    first_sequence: int
    messages: list[bytes]

    @property
    def next_sequence(self) -> int:
        """The sequence number after the last message of the run."""
        return self.first_sequence + len(self.messages)

    def to_messages(self) -> list[Message]:
        """The run as one `Message` per message, numbered."""
        first = self.first_sequence
        if ACCELERATED:
            return list(MessageCursor(Message, first, self.messages))
        return list(
            map(Message, zip(range(first, first + len(self.messages)), self.messages, strict=True))
        )


@dataclass(frozen=True, slots=True)
class SequencedFrames:
    """Consecutive sequenced messages as a zero-copy view of the bytes they arrived in:
    message `first_sequence + i` is ``buffer[offsets[i] : offsets[i] + lengths[i]]``.

    No object per message: `offsets` is an ``array("I")`` and `lengths` an ``array("H")``,
    ready for bulk decoders (``numpy.frombuffer(frames.offsets, numpy.uint32)``, Arrow, a
    compiled ITCH decoder); `buffer` is immutable ``bytes`` (wrap it in a `memoryview` to
    slice without copying).
    """

    first_sequence: int
    buffer: bytes
    offsets: array[int]
    lengths: array[int]

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def next_sequence(self) -> int:
        """The sequence number after the run's last message."""
        return self.first_sequence + len(self.offsets)

    def payloads(self) -> list[bytes]:
        """Each message's payload as its own bytes object (a copy of each)."""
        buf = self.buffer
        return [buf[o : o + n] for o, n in zip(self.offsets, self.lengths, strict=True)]

    def to_messages(self) -> list[Message]:
        """The run as one `Message` per message, numbered (a copy of each payload)."""
        return SequencedMessages(self.first_sequence, self.payloads()).to_messages()

    @classmethod
    def from_payloads(cls, first_sequence: int, payloads: list[bytes]) -> SequencedFrames:
        """The view of messages received as separate payloads (one copy, into one buffer)."""
        lengths = array("H", map(len, payloads))
        offsets = array("I", accumulate(lengths, initial=0))
        offsets.pop()
        return cls(first_sequence, b"".join(payloads), offsets, lengths)


@dataclass(frozen=True, slots=True)
class NoMoreMessages:
    """Omega/Lynx dialect: an empty Sequenced Data packet, "no more messages available".

    It is not counted as a message.
    """

    sequence: int  # the next sequence number, unchanged


Event = Packet | SequencedMessages | SequencedFrames | NoMoreMessages

#: What the clients' batch path hands over: runs of sequenced payloads, and unsequenced
#: messages in their place in the stream.
BatchItem = SequencedMessages | UnsequencedData
#: What the clients' zero-copy path (`receive_frames`) hands over, likewise.
FramesItem = SequencedFrames | UnsequencedData
EVENT_TYPES: Final = (Packet, SequencedMessages, SequencedFrames, NoMoreMessages)
