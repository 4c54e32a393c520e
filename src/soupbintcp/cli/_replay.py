"""`serve --import-binaryfile FILE --pace`: publish a captured ITCH day live, at its own pace.

Each ITCH 5.0 message carries its time of day (nanoseconds since midnight, 6 bytes at
offset 5); a message is published when as much time has passed since the replay started as
had passed in the capture since its first message, divided by the pace factor. Messages
without a readable timestamp (too short) go with the one before them; a timestamp earlier
than the one before (not ITCH, or past midnight) does not make the replay wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

import soupbintcp
from soupbintcp.store import iter_binaryfile

__all__ = ["PACES", "parse_pace", "replay"]

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


def _timed(path: Path) -> Iterator[tuple[int | None, bytes]]:
    for message in iter_binaryfile(path):
        yield itch_time(message), message


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
