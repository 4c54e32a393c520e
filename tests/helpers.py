"""Test helpers: build wire bytes by hand and wire sessions back to back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from soupbintcp.lowlevel import ClientSession, Event, SequencedMessages, ServerConnectionState

T = TypeVar("T")


def wire(ptype: bytes, payload: bytes = b"") -> bytes:
    """One packet built by hand from the spec's layout, independent of the library."""
    return (len(payload) + 1).to_bytes(2, "big") + ptype + payload


def login_pair(
    client: ClientSession | None = None,
    *,
    session_id: str = "SESSION1",
    sequence: int = 1,
    now: float = 0.0,
) -> tuple[ClientSession, ServerConnectionState]:
    """A client and a server session logged in to each other, no sockets."""
    client = client or ClientSession("user", "secret")
    server = ServerConnectionState(now)
    server.receive_data(client.login(now), now)
    client.receive_data(server.accept(session_id, sequence, now), now)
    return client, server


def sequenced(events: list[Event]) -> list[tuple[int, bytes]]:
    """(sequence, payload) of every sequenced message in `events`."""
    return [
        (m.sequence, m.data)  # type: ignore[misc]
        for e in events
        if isinstance(e, SequencedMessages)
        for m in e.to_messages()
    ]


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `predicate()` holds, polling the loop; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def within(awaitable: Awaitable[T], timeout: float = 10.0) -> T:
    return await asyncio.wait_for(awaitable, timeout)
