"""Shared by the reliability, crash-restart, load and security tests: numbered payloads that
say which message they are, checks of exactly-once in-order delivery, and small utilities."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from soupbintcp import AsyncClient, BlockingClient, ReconnectPolicy
from soupbintcp.lowlevel import SequencedMessages

T = TypeVar("T")

USER, PASSWORD, SESSION = "user", "secret", "SESSION1"
CREDENTIALS = {USER: PASSWORD}

#: Reconnect at once, with a short backoff: the tests want many reconnects, quickly.
FAST = ReconnectPolicy(initial_delay=0.001, max_delay=0.02, jitter=0.5)

_FILL = bytes(range(33, 127)) * 2


def numbered(n: int, tag: bytes = b"") -> bytes:
    """Message number `n`: it names its own number (and `tag`, e.g. the publisher's epoch),
    then 0..60 filler bytes, so a gap, a duplicate or a swap shows in the content."""
    return b"%d:%s:" % (n, tag) + _FILL[: (n * 7919) % 61]


def numbered_range(first: int, last: int, tag: bytes = b"") -> list[bytes]:
    return [numbered(n, tag) for n in range(first, last + 1)]


def stream_bytes(first: int, last: int) -> int:
    """Bytes of Sequenced Data packets of messages `first..last` on the wire."""
    return sum(len(numbered(n)) + 3 for n in range(first, last + 1))


@dataclass
class Receipt:
    """What one client received: checked contiguous as it arrives."""

    first: int = 0
    messages: list[bytes] = field(default_factory=list)

    @property
    def next(self) -> int:
        return self.first + len(self.messages)

    def take(self, items: list[Any]) -> None:
        for item in items:
            assert type(item) is SequencedMessages, f"unexpected {item!r}"
            if not self.first:
                self.first = item.first_sequence
            # No gap and no duplicate: each run starts exactly where the last one ended.
            assert item.first_sequence == self.next, (item.first_sequence, self.next)
            self.messages.extend(item.messages)


async def receive_through(client: AsyncClient, last: int, receipt: Receipt, timeout: float) -> None:
    """Receive (asyncio client) until message `last` is in `receipt`."""
    while not receipt.first or receipt.next <= last:
        receipt.take(await asyncio.wait_for(client.receive_batch(), timeout))


def receive_through_blocking(
    client: BlockingClient, last: int, receipt: Receipt, timeout: float
) -> None:
    """Receive (blocking client) until message `last` is in `receipt`."""
    while not receipt.first or receipt.next <= last:
        receipt.take(client.receive_batch(timeout=timeout))


def check_numbered(receipt: Receipt, last: int) -> None:
    """`receipt` holds exactly messages `receipt.first..last`, each the right one."""
    assert receipt.next == last + 1
    assert receipt.messages == numbered_range(receipt.first, last)


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for `predicate()`, polling the loop; fail (saying `what`) after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout:g} s: {what}")
        await asyncio.sleep(0.005)


def run_on(
    loop_factory: Callable[[], asyncio.AbstractEventLoop], coro: Coroutine[Any, Any, T]
) -> T:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coro)


def raise_nofile(needed: int) -> int:
    """Raise this process's open-file limit to at least `needed` (up to the hard limit), or
    skip the test saying why. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(
            f"needs {needed} open files; the hard limit RLIMIT_NOFILE is {hard} "
            f"(raise it with `ulimit -Hn {needed}` as root)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
