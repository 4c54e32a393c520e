"""What a `FileStore` holds and shows: the journal it has open, what the journal's header
records, how far it is written and made durable, and what the check ahead found.

Apart from `_file`, which is what the store does (append, flush, read, close): here are the
store's slots, which `_file` and `_opening` fill in, and its read-only properties.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._ahead import CheckAhead
    from ._checksums import Checksums
    from ._index import IndexFile
    from ._protocol import Durability, JournalCorruptError
    from ._reading import FrameReader

__all__ = ["JournalState"]


class JournalState:
    """The slots and read-only properties of a `FileStore`."""

    __slots__ = (
        "_ahead",
        "_base",
        "_closed",
        "_count",
        "_durability",
        "_durable_count",
        "_durable_end",
        "_end",
        "_ended",
        "_fsync",
        "_idx",
        "_index",
        "_interval",
        "_journal_id",
        "_path",
        "_pending",
        "_reader",
        "_readonly",
        "_recovered",
        "_rfd",
        "_session_id",
        "_size",
        "_sums",
        "_wfd",
    )

    _ahead: CheckAhead | None
    _base: int  # record n is message n + base
    _closed: bool
    _count: int
    _durability: Durability
    _durable_count: int
    _durable_end: int
    _end: int
    _ended: bool
    _fsync: bool
    _idx: IndexFile | None
    _index: array[int]
    _interval: int
    _journal_id: bytes
    _path: str
    _pending: bytearray
    _reader: FrameReader
    _readonly: bool
    _recovered: int
    _rfd: int
    _session_id: str | None
    _size: int
    _sums: Checksums | None
    _wfd: int

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"count={self.count}"
        if not self._closed and self._base:
            state += f", first_sequence={self._base + 1}"
        return (
            f"FileStore({self._path!r}, {state}, durability={self._durability.name}, "
            f"session_id={self._session_id!r})"
        )

    @property
    def path(self) -> str:
        """The journal's path."""
        return self._path

    @property
    def durability(self) -> Durability:
        """The journal's `Durability`: when an append counts as held."""
        return self._durability

    @property
    def first_sequence(self) -> int:
        """The number of the journal's first message (1 unless it was created otherwise)."""
        return self._base + 1

    @property
    def count(self) -> int:
        return self._count + self._base

    @property
    def durable_count(self) -> int:
        return self._durable_count + self._base

    @property
    def session_id(self) -> str | None:
        return self._session_id

    @property
    def session_ended(self) -> bool:
        """Whether the session ended (`end_session`): then nothing more can be appended."""
        return self._ended

    @property
    def recovered_bytes(self) -> int:
        """Bytes of a torn last record cut off (ignored, if `readonly`) when opened."""
        return self._recovered

    @property
    def corruption(self) -> JournalCorruptError | None:
        """The first damage the check ahead found in the journal (None: none found, or not
        checked yet): the server's corrupt-from gauge shows it before a replay reaches it.
        A read that reaches damage raises `JournalCorruptError` whether or not it is here."""
        ahead = self._ahead
        return None if ahead is None else ahead.damage

    @property
    def closed(self) -> bool:
        """Whether `close` has been called."""
        return self._closed
