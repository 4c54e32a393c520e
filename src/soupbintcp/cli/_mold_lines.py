"""Helpers of the `mold` commands: joining one group or the A/B lines of a session, and
the summary line, per line when there are several."""

from __future__ import annotations

import time

from soupbintcp.moldudp64 import AsyncListener, listen_async

from ._common import plural

__all__ = ["listen_lines", "named", "summary"]

Address = tuple[str, int]


def named(groups: tuple[Address, ...] | list[Address]) -> str:
    return " + ".join(f"{host}:{port}" for host, port in groups)


async def listen_lines(
    groups: tuple[Address, ...],
    request: Address,
    sequence: int,
    session_id: str | None,
    interface: str | None,
) -> AsyncListener:
    """One listener fed by every group given (the first copy of each message wins)."""
    return await listen_async(
        list(groups), request, sequence=sequence, session_id=session_id, interface=interface
    )


def summary(listener: AsyncListener, received: int, started: float, end: str) -> str:
    elapsed = max(time.monotonic() - started, 1e-9)
    stats = listener.stats
    drops = stats["kernel_drops"]
    lines = "".join(
        f"; line {line.name}: {line.first:,} first, {line.missed:,} missed, "
        f"{line.covered:,} of them covered by another line"
        for line in listener.lines
    )
    return (
        f"{plural(received, 'message')} in {elapsed:.2f} s ({received / elapsed:,.0f} msg/s); "
        f"{stats['gaps']} gaps, {stats['requests_sent']} requests "
        f"({stats['request_retries']} retried), {stats['duplicates']} duplicates dropped, "
        f"{'?' if drops is None else drops} kernel drops{lines}; stopped: {end}"
    )
