"""Where `record` and `mold record` write what they receive: a journal or a BinaryFILE."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from soupbintcp.store import BinaryFileWriter, Durability, FileStore

from ._common import stderr


class Sink(Protocol):
    """Where a recording goes: a journal or a BinaryFILE."""

    session_id: str | None

    @property
    def count(self) -> int: ...

    def write(self, messages: list[bytes]) -> None: ...
    def close(self) -> None: ...


class JournalSink:
    """A `FileStore` journal, resumed at its next sequence number."""

    def __init__(
        self, path: Path, session_id: str | None, durability: Durability, fsync: bool
    ) -> None:
        self.store = FileStore(
            path, session_id=session_id or None, durability=durability, fsync=fsync
        )
        self.count = self.store.count
        self.session_id = self.store.session_id

    def write(self, messages: list[bytes]) -> None:
        self.store.append_many(messages)
        self.count += len(messages)

    def close(self) -> None:
        self.store.flush()
        self.store.close()


class BinaryFileSink:
    """BinaryFILE: each message preceded by its 2-byte big-endian length."""

    def __init__(self, path: Path, session_id: str | None) -> None:
        self.session_id = session_id
        self.writer = BinaryFileWriter(path)
        if self.writer.cut_bytes:
            end = path.stat().st_size
            stderr.print(f"cutting a torn last record off {path} at offset {end}")

    @property
    def count(self) -> int:
        return self.writer.count

    def write(self, messages: list[bytes]) -> None:
        self.writer.write(messages)

    def close(self) -> None:
        self.writer.close()
