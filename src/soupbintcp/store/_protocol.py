"""What a message store is: the contract between the server and the journals it replays from.

Layer 4 (stores). A server numbers each Sequenced Data message 1, 2, 3, ... by counting, and a
client that reconnects asks to resume from any number. The store keeps every message under
its number and hands back runs of them already encoded as they go on the wire.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Protocol, Self, runtime_checkable

from .._errors import SoupBinTCPError

__all__ = ["Durability", "EndsSession", "JournalCorruptError", "MessageStore", "StoreError"]


class StoreError(SoupBinTCPError):
    """A store cannot do what was asked: a closed store, a journal that is not one, a
    session id that does not match, a corrupt journal or BinaryFILE."""


class JournalCorruptError(StoreError):
    """A journal's records fail their checksum or their structure: nothing from message
    `sequence` (at file `offset`) on can be trusted, so nothing from there on is served."""

    def __init__(self, path: str, offset: int, sequence: int, why: str) -> None:
        self.path = path
        self.offset = offset
        self.sequence = sequence
        self.why = why
        super().__init__(
            f"journal {path} is corrupt from message {sequence:,} at offset {offset:,} ({why}):"
            f" nothing from there on is served; `soupbintcp journal verify {path}` says more"
        )


class Durability(enum.Enum):
    """When an appended message counts as held (see `MessageStore.durable_count`)."""

    #: Every append call is written to the operating system before it returns: the message
    #: survives the process being killed (SIGKILL, a crash), not a power cut unless `fsync`.
    PUBLISH = "publish"
    #: Appends wait in the process's memory and are written together by `flush()`, which the
    #: server calls every few milliseconds: fewer system calls, and a crash loses what was not
    #: flushed yet, which no client ever saw.
    TIMER = "timer"


@runtime_checkable
class MessageStore(Protocol):
    """An append-only sequence of messages numbered from 1, replayable from any number.

    A store may start later: one with a `first_sequence` attribute N (`FileStore` and
    `MemoryStore` have it; N is 1 unless created otherwise) holds messages N, N + 1, ...
    (a journal of a session that a capture joined late), and reading a message before N
    raises `StoreError`. The server logs a client that asks for less than N in at N.

    Two counters matter. `count` is the number of the last message appended (how many
    were appended, when the store starts at 1): the next append gets `count + 1`.
    `durable_count` is the last number held under the store's durability policy; it never
    exceeds `count` and never goes back.

    The rule that makes replay safe, "one number, one message": a server sends clients only
    messages up to `durable_count`. Those survive a crash of the server, so after a restart a
    sequence number never names a different message from the one a client already has.

    Stores are not thread-safe: one thread (an asyncio loop) appends and reads.
    """

    @property
    def count(self) -> int:
        """The last sequence number (`first_sequence - 1`, so 0, when empty)."""
        ...

    @property
    def durable_count(self) -> int:
        """Messages held under the durability policy: the highest number a server may send."""
        ...

    @property
    def session_id(self) -> str | None:
        """The SoupBinTCP session these messages belong to, if recorded."""
        ...

    def append(self, data: bytes) -> int:
        """Append one message; return its sequence number.

        A payload over 65534 bytes raises `LocalProtocolError`.
        """
        ...

    def append_many(self, messages: Iterable[bytes]) -> int:
        """Append messages in order, in one write; return the FIRST sequence number assigned.

        An empty iterable appends nothing and returns `count + 1`. A payload over 65534 bytes
        raises `LocalProtocolError` and appends none of them.
        """
        ...

    def append_frames(self, frames: bytes, count: int) -> int:
        """Append `count` messages given as Sequenced Data frames exactly as on the wire
        (2-byte big-endian length of type and payload, b"S", payload), back to back; return
        the first sequence number assigned.

        This lets the server encode a message once and share the bytes between the store and
        every live client. The stores check that `count` frames exactly fill `frames` (a
        by-product of indexing them) and raise `LocalProtocolError` otherwise, appending
        nothing; they do not check every type byte: the caller guarantees the frames are
        Sequenced Data, as the wire layer builds them.
        """
        ...

    def read_frames(self, sequence: int, max_bytes: int) -> tuple[bytes, int]:
        """The frames of consecutive messages from `sequence` on, and how many there are.

        At most `max_bytes` of frames, but always at least one whole frame when
        `sequence <= durable_count`; `(b"", 0)` when `sequence > durable_count`. The bytes
        are exactly what goes on the wire: the server writes them straight to the socket.
        """
        ...

    def read(self, sequence: int, count: int) -> list[bytes]:
        """Payloads of messages `sequence .. sequence + count - 1`, stopping early at
        `durable_count` (like slicing past the end of a list)."""
        ...

    def flush(self) -> None:
        """Make every appended message durable under the policy (`durable_count == count`)."""
        ...

    def close(self) -> None:
        """Flush and release the store; idempotent. Other calls then raise `StoreError`."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


@runtime_checkable
class EndsSession(Protocol):
    """A store that remembers that its session ended (optional; `FileStore` does).

    The server calls `end_session()` when it sends End of Session, and checks
    `session_ended` when it opens the store: a server restarted on an ended journal serves
    the rest and then End of Session again, and refuses to publish into it."""

    @property
    def session_ended(self) -> bool:
        """Whether the session ended: nothing more can be appended."""
        ...

    def end_session(self) -> None:
        """Record that the session ended, durably; appends raise `StoreError` from then on."""
        ...
