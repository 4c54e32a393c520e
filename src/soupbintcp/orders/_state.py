"""The order client's state on disk: two journals in one directory (the project's `FileStore`).

- ``sent.soup``: every inbound message, written **before it leaves** and fsync'd, so a
  process killed at any moment and restarted knows every UserRefNum it may have used (it
  goes on above the last one) and every request it may have sent (it re-sends those the
  stream has not answered, unchanged: a benign repeat, OUCH 5.0 §5.1). Group commit: the
  messages a driver takes in one go (one event-loop turn, one throttle grant) share one
  `write` and one `fdatasync`; that is how the fsyncs are batched under load.
- ``stream.soup``: the outbound stream as received (Sequenced Data numbers kept), so a
  restart rebuilds every order from it and asks the venue only for what follows.

Both record the venue's session id: the numbers are day-unique, a new session needs a new
state directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ..store import Durability, FileStore, StoreError

__all__ = ["StateDir", "StateMismatch"]

_READ_CHUNK = 4096


class StateMismatch(StoreError):
    """The state directory belongs to another session (another trading day)."""


def _payloads(store: FileStore) -> Iterator[bytes]:
    sequence = 1
    while sequence <= store.count:
        chunk = store.read(sequence, min(_READ_CHUNK, store.count - sequence + 1))
        yield from chunk
        sequence += len(chunk)


class StateDir:
    """The journals of one account's order client. `fsync` False trades power-cut safety
    for speed: a SIGKILL still loses nothing (the data is in the kernel before it leaves)."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self.sent: FileStore | None = None
        self.stream: FileStore | None = None
        for name in ("sent", "stream"):
            file = self.path / f"{name}.soup"
            if file.exists():
                self._open(name, None)

    def _open(self, name: str, session_id: str | None) -> FileStore:
        fsync = self._fsync and name == "sent"
        store = FileStore(
            self.path / f"{name}.soup",
            durability=Durability.TIMER,
            fsync=fsync,
            session_id=session_id,
        )
        setattr(self, name, store)
        return store

    @property
    def session_id(self) -> str | None:
        """The session the state belongs to (None: no state yet)."""
        for store in (self.stream, self.sent):
            if store is not None and store.session_id:
                return store.session_id
        return None

    @property
    def received(self) -> int:
        """Outbound messages held: the next one wanted is this plus one."""
        return self.stream.count if self.stream is not None else 0

    def bind(self, session_id: str) -> None:
        """Tie the state to the venue's session (after the login), creating the journals."""
        held = self.session_id
        if held is not None and held != session_id:
            raise StateMismatch(
                f"the state in {self.path} is for session {held!r}, the venue is at "
                f"{session_id!r}: a new trading day needs a new state directory"
            )
        for name in ("sent", "stream"):
            if getattr(self, name) is None:
                self._open(name, session_id)

    def sent_payloads(self) -> Iterator[bytes]:
        return _payloads(self.sent) if self.sent is not None else iter(())

    def stream_payloads(self) -> Iterator[bytes]:
        return _payloads(self.stream) if self.stream is not None else iter(())

    def write_ahead(self, payloads: list[bytes]) -> None:
        """Make `payloads` durable before they are sent: one write, one fdatasync."""
        assert self.sent is not None, "bind() first"
        self.sent.append_many(payloads)
        self.sent.flush()

    def received_run(self, payloads: list[bytes]) -> None:
        """Keep a run of outbound messages (in the kernel before the application hears)."""
        assert self.stream is not None, "bind() first"
        self.stream.append_many(payloads)
        self.stream.flush()

    def close(self) -> None:
        for store in (self.sent, self.stream):
            if store is not None and not store.closed:
                store.close()
