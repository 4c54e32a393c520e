"""`serve --import-binaryfile FILE --pace`: publish a captured ITCH day live, at its own pace.

Each ITCH 5.0 message carries its time of day (nanoseconds since midnight, 6 bytes at
offset 5); a message is published when as much time has passed since the replay started as
had passed in the capture since its first message, divided by the pace factor. Messages
without a readable timestamp (too short) go with the one before them; a timestamp earlier
than the one before (not ITCH, or past midnight) does not make the replay wait.
`--import-journal FILE` replays a journal made by `journal import --pcap` the same way, at
the capture times kept beside it (FILE.times), whatever protocol its messages are.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

import soupbintcp
from soupbintcp.capture import times_path
from soupbintcp.store import FileStore, JournalReader, import_binaryfile, iter_binaryfile

from ._captures import capture_times
from ._common import UserError

JOURNAL_MAGIC = b"SBTCPJNL"  # a journal's first bytes (store/_journal.py)

__all__ = ["PACES", "import_source", "parse_pace", "replay", "source_first"]

PACES = ("1x", "10x", "100x", "max")
_BATCH = 2000  # at most this many messages in one publish_many
_MAX_WAKEUP = 0.25  # wait at most this long at a time, so that a stop is seen promptly


def parse_pace(value: str) -> float | None:
    """``"10x"`` -> 10.0, ``"max"`` -> None (as fast as the server takes them)."""
    if value == "max":
        return None
    try:
        factor = float(value.removesuffix("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give 1x, 10x, 2.5x ... or max") from None
    if not factor > 0:
        raise click.BadParameter(f"{value!r}: the pace must be above 0")
    return factor


def itch_time(message: bytes) -> int | None:
    """The ITCH 5.0 timestamp of a message (ns since midnight), None if it has none."""
    return int.from_bytes(message[5:11], "big") if len(message) >= 11 else None


def _is_journal(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(8) == JOURNAL_MAGIC


def source_first(path: Path) -> int:
    """The number of the first message of a replay source: a journal's own (a journal
    imported from a capture that joined the session late starts later), 1 for a BinaryFILE.
    A journal made from the source starts there too, so its messages keep their numbers."""
    if not _is_journal(path):
        return 1
    with JournalReader(path) as reader:
        return reader.first_sequence


def _timed(path: Path) -> Iterator[tuple[int | None, bytes]]:
    if not _is_journal(path):
        for message in iter_binaryfile(path):
            yield itch_time(message), message
        return
    # Without capture times (a journal a server wrote) nothing is paced: all at once.
    times = capture_times(path) if times_path(path).exists() else []
    with JournalReader(path) as reader:
        sequence = start = reader.first_sequence
        while sequence <= reader.count:
            batch = reader.read(sequence, _BATCH)
            for offset, message in enumerate(batch):
                at = sequence + offset - start  # the times are in the journal's order
                yield (times[at] if at < len(times) else None), message
            sequence += len(batch)


def import_source(path: Path, store: FileStore) -> int:
    """Everything of a BinaryFILE or a journal appended to `store` at once (no --pace).

    Resumable: what `store` holds already must be the source's first messages (checked,
    byte for byte); the import goes on after them."""
    if not _is_journal(path):
        return import_binaryfile(path, store, resume=True)
    count = held = store.count
    with JournalReader(path) as reader:
        if store.first_sequence != reader.first_sequence:
            raise UserError(
                f"{store.path} starts at message {store.first_sequence:,}, {path} at "
                f"{reader.first_sequence:,}: import into a new journal"
            )
        for first in range(reader.first_sequence, held + 1, _BATCH):
            want = min(_BATCH, held - first + 1)
            if reader.read(first, want) != store.read(first, want):
                raise UserError(
                    f"{store.path} is not an interrupted import of {path}: messages "
                    f"{first:,}..{first + want - 1:,} differ (import into a new journal)"
                )
        while count < reader.count:
            batch = reader.read(count + 1, _BATCH)
            store.append_many(batch)
            count += len(batch)
    return count - held


async def replay(
    server: soupbintcp.Server, path: Path, pace: float | None, stop: asyncio.Event
) -> int:
    """Publish every message of the BinaryFILE at `path`; return how many were published
    (fewer if `stop` was set first)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    origin: int | None = None
    due = 0.0  # seconds after `started` at which the message in hand is due
    published = 0
    batch: list[bytes] = []
    for stamp, message in _timed(path):
        if pace is not None and stamp is not None:
            origin = stamp if origin is None else origin
            due = max(due, (stamp - origin) / 1e9 / pace)
        while pace is not None and (wait := started + due - loop.time()) > 0:
            if batch:  # what is due already goes out before the wait
                server.publish_many(batch)
                published += len(batch)
                batch = []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(wait, _MAX_WAKEUP))
            if stop.is_set():
                return published
        batch.append(message)
        if len(batch) >= _BATCH:
            server.publish_many(batch)
            published += len(batch)
            batch = []
            await asyncio.sleep(0)  # let the clients be served between batches
            if stop.is_set():
                return published
    if batch:
        server.publish_many(batch)
        published += len(batch)
    return published
