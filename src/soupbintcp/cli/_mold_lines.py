"""Helpers of the `mold` commands: the options they share, joining one group or the A/B
lines of a session, the summary line (per line when there are several), and errors that
say what to do."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from collections.abc import Awaitable, Iterator
from typing import TypeVar

import click

from soupbintcp.moldudp64 import AsyncListener, listen_async

from ._common import ADDRESS, UserError, describe_error, plural, stderr

__all__ = [
    "binding",
    "group_option",
    "interface_option",
    "listen_lines",
    "named",
    "session_option",
    "summary",
    "waiting_hint",
]

T = TypeVar("T")

group_option = click.option(
    "--group",
    type=ADDRESS,
    required=True,
    multiple=True,
    help="Multicast GROUP:PORT (e.g. 239.1.1.1:5000); twice for the A and B lines of one "
    "session (the first copy of each message wins).",
)
interface_option = click.option(
    "--interface",
    metavar="ADDR",
    help="Address of the interface to use for multicast (127.0.0.1: this host only).",
)
session_option = click.option(
    "--session", "session_id", help="Session id (default: the first seen)."
)


#: Seconds `mold gateway` waits for a first packet before it says what it checked.
HINT_AFTER = 5.0


@contextlib.contextmanager
def binding(what: str, address: tuple[str, int] | None = None) -> Iterator[None]:
    """Say which address and what to do when opening `what` fails: a port in use, no
    interface for multicast (ENODEV: no route, and no --interface)."""
    try:
        yield
    except OSError as exc:
        where = f" {address[0]}:{address[1]}" if address else ""
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = ": another process has that port (give another HOST:PORT)"
        elif exc.errno in (errno.ENODEV, errno.EADDRNOTAVAIL, errno.ENETUNREACH):
            hint = (
                ": no interface to use for multicast (no route for it?): give the address of "
                "the interface with --interface ADDR (127.0.0.1: this host only)"
            )
        raise UserError(f"cannot open {what}{where}: {describe_error(exc)}{hint}") from None


async def waiting_hint(work: Awaitable[T], what: str, interface: str | None) -> T:
    """Await `work`; if it takes more than `HINT_AFTER` seconds, say what is being waited
    for and what to check, once."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait([task], timeout=HINT_AFTER)
    if not done:
        via = f"interface {interface}" if interface else "the system's choice of interface"
        stderr.print(
            f"still waiting for {what} after {HINT_AFTER:g} s, listening through {via}: is the "
            "transmitter running, and does its multicast reach this host? On one host, give "
            "both sides --interface 127.0.0.1; across hosts, the interface on that network"
        )
    return await task


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
    with binding(f"a listener of {named(groups)}"):
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
