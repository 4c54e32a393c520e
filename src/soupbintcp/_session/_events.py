"""Events the sans-IO sessions hand to their drivers, beyond the packets themselves.

Layer 2. A session returns packets (`LoginAccepted`, `UnsequencedData`, `Debug`, ...) as events
as they are, plus the events here, which have no one-to-one packet.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Final

from .._wire._packets import Packet, UnsequencedData

__all__ = ["BatchItem", "Event", "Message", "NoMoreMessages", "SequencedMessages"]


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
        return list(
            map(
                Message,
                zip(
                    range(self.first_sequence, self.first_sequence + len(self.messages)),
                    self.messages,
                    strict=True,
                ),
            )
        )


@dataclass(frozen=True, slots=True)
class NoMoreMessages:
    """Omega/Lynx dialect: an empty Sequenced Data packet, "no more messages available".

    It is not counted as a message.
    """

    sequence: int  # the next sequence number, unchanged


Event = Packet | SequencedMessages | NoMoreMessages

#: What the clients' batch path hands over: runs of sequenced payloads, and unsequenced
#: messages in their place in the stream.
BatchItem = SequencedMessages | UnsequencedData
EVENT_TYPES: Final = (Packet, SequencedMessages, NoMoreMessages)
