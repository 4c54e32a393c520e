"""The server's status events: one scripted sequence of connections gives exactly the expected
list, delivered alike to a function, a coroutine function and `server.events()`; the log
lines are made from the same events; a failing listener changes nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from soupbintcp import MemoryStore, RejectReason, Server, serve
from soupbintcp.events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionRefused,
    LoggedIn,
    LoggedOut,
    LoginRejectedSent,
    LoginTimedOut,
    ProtocolViolation,
    ServerEvent,
    SessionEnding,
    SessionStarted,
)

from .helpers import wire
from .server_support import CREDENTIALS, SESSION, USER, RawClient, frames, payloads

Peer = tuple[str, int]


async def until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


def closed(events: list[ServerEvent], connection: int) -> bool:
    return any(isinstance(e, ConnectionClosed) and e.connection == connection for e in events)


def peer_of(client: RawClient) -> Peer:
    host, port = client.writer.get_extra_info("sockname")[:2]
    return (host, port)


async def scripted(server: Server, seen: list[ServerEvent]) -> list[ServerEvent]:
    """Accepted, rejected A, rejected S, login timeout, protocol error, logout, in turn; each
    waits for the server's ConnectionClosed of the one before. The expected list back."""
    address = server.address
    server.publish_many(payloads(1, 3))
    server.flush()
    expected: list[ServerEvent] = [SessionStarted(session=SESSION)]

    first = await RawClient.connect(address)
    p1 = peer_of(first)
    assert (await first.login(sequence=1))[0] == b"A"
    got = b""
    while len(got) < len(frames(payloads(1, 3))):
        got += await first.reader.read(4096)
    assert got == frames(payloads(1, 3))
    expected += [
        ConnectionAccepted(connection=1, peer=p1),
        LoggedIn(connection=1, peer=p1, user=USER, session=SESSION, requested_sequence=1,
                 sequence=1, head=3),
    ]  # fmt: skip

    wrong = await RawClient.connect(address)
    p2 = peer_of(wrong)
    assert await wrong.login(password="nope") == (b"J", b"A")
    await until(lambda: closed(seen, 2), "rejected A closed")
    expected += [
        ConnectionAccepted(connection=2, peer=p2),
        LoginRejectedSent(connection=2, peer=p2, user=USER, reason=RejectReason.NOT_AUTHORIZED,
                     detail="not authorized"),
        ConnectionClosed(connection=2, peer=p2, user=USER, reason="login_rejected",
                         detail="login rejected: not authorized ('A')", logged_in=False),
    ]  # fmt: skip

    other = await RawClient.connect(address)
    p3 = peer_of(other)
    assert await other.login(session="OTHER") == (b"J", b"S")
    await until(lambda: closed(seen, 3), "rejected S closed")
    why = f"session 'OTHER' not available (current session {SESSION!r})"
    expected += [
        ConnectionAccepted(connection=3, peer=p3),
        LoginRejectedSent(connection=3, peer=p3, user=USER,
                     reason=RejectReason.SESSION_NOT_AVAILABLE, detail=why),
        ConnectionClosed(connection=3, peer=p3, user=USER, reason="login_rejected",
                         detail=f"login rejected: {why} ('S')", logged_in=False),
    ]  # fmt: skip

    silent = await RawClient.connect(address)
    p4 = peer_of(silent)
    assert await silent.closed_by_server()
    await until(lambda: closed(seen, 4), "login timeout closed")
    expected += [
        ConnectionAccepted(connection=4, peer=p4),
        LoginTimedOut(connection=4, peer=p4, detail="no Login Request within 0.3 s"),
        ConnectionClosed(connection=4, peer=p4, reason="login_timeout",
                         detail="no Login Request within 0.3 s", logged_in=False),
    ]  # fmt: skip

    bad = await RawClient.connect(address)
    p5 = peer_of(bad)
    bad.send(wire(b"Q", b"?"))  # no client sends a "Q"
    assert await bad.closed_by_server()
    await until(lambda: closed(seen, 5), "protocol error closed")
    fault = "unexpected packet type b'Q' at offset 2 (not a packet a client sends)"
    expected += [
        ConnectionAccepted(connection=5, peer=p5),
        ProtocolViolation(connection=5, peer=p5, kind="unknown packet type", detail=fault),
        ConnectionClosed(connection=5, peer=p5, reason="protocol_error",
                         detail=f"protocol error: {fault}", logged_in=False),
    ]  # fmt: skip

    first.send(wire(b"O"))
    assert await first.closed_by_server()
    await until(lambda: closed(seen, 1), "logout closed")
    expected += [
        LoggedOut(connection=1, peer=p1, user=USER),
        ConnectionClosed(connection=1, peer=p1, user=USER, reason="logout", detail="logged out",
                         logged_in=True, session=SESSION, messages_sent=3,
                         bytes_sent=33 + len(frames(payloads(1, 3))), next_sequence=4, lag=0),
    ]  # fmt: skip
    for client in (first, wrong, other, silent, bad):
        client.close()
    return expected


def options(on_event: Callable[[ServerEvent], Awaitable[None] | None] | None) -> dict[str, Any]:
    # No heartbeats during the script: the figures at close are then exact.
    return {
        "store": MemoryStore(session_id=SESSION),
        "credentials": CREDENTIALS,
        "login_timeout": 0.3,
        "heartbeat_interval": 60.0,
        "client_heartbeat_timeout": 60.0,
        "on_event": on_event,
    }


async def test_a_scripted_sequence_gives_exactly_the_expected_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "soupbintcp.server")
    seen: list[ServerEvent] = []
    async with serve(("127.0.0.1", 0), **options(seen.append)) as server:
        expected = await scripted(server, seen)
        assert seen == expected
        # The log lines are the events' own, in the same order.
        lines = [r.getMessage() for r in caplog.records if r.name == "soupbintcp.server"]
        described = [event.describe() for event in seen]
        assert [line for line in lines if line in described] == described
        stats = server.stats
        assert stats.logins == {"accepted": 1, "not_authorized": 1, "session_not_available": 1}
        assert stats.disconnects == {
            "login_rejected": 2,
            "login_timeout": 1,
            "protocol_error": 1,
            "logout": 1,
        }
        assert stats.protocol_errors == {"unknown packet type": 1}
        assert stats.accepted == 5


async def test_a_coroutine_listener_and_the_iterator_see_the_same_list() -> None:
    awaited: list[ServerEvent] = []

    async def on_event(event: ServerEvent) -> None:
        await asyncio.sleep(0)  # a listener that awaits does not reorder or hold up anything
        awaited.append(event)

    async with serve(("127.0.0.1", 0), **options(on_event)) as server:
        iterated: list[ServerEvent] = []

        async def consume() -> None:
            async for event in server.events():
                iterated.append(event)  # noqa: PERF401  (seen one by one, while it runs)

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)
        expected = await scripted(server, awaited)
        await until(lambda: len(iterated) == len(expected) - 1, "iterator caught up")
        assert awaited == expected
        # The iterator started after serve(): everything but SessionStarted.
        assert iterated == expected[1:]
        await server.end_session()
    await asyncio.wait_for(consumer, 5)  # the iteration ends when the server closes
    assert iterated[-1] == SessionEnding(session=SESSION, head=3)


@pytest.mark.parametrize("kind", ["function", "coroutine"])
async def test_a_listener_that_raises_is_logged_and_changes_nothing(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[ServerEvent] = []

    def sync(event: ServerEvent) -> None:
        calls.append(event)
        raise RuntimeError("listener bug")

    async def coro(event: ServerEvent) -> None:
        sync(event)

    listener = sync if kind == "function" else coro
    async with serve(("127.0.0.1", 0), **options(listener)) as server:
        expected = await scripted(server, calls)
        assert calls == expected
    failures = [r for r in caplog.records if r.getMessage().startswith("on_event raised for")]
    assert len(failures) == len(expected)
    assert all(r.exc_info is not None for r in failures)


async def test_a_refusal_names_its_cap() -> None:
    seen: list[ServerEvent] = []
    async with serve(
        ("127.0.0.1", 0),
        **options(seen.append),
        max_connections=1,
    ) as server:
        first = await RawClient.connect(server.address)
        assert (await first.login())[0] == b"A"  # logged in: not one to evict for a newer
        second = await RawClient.connect(server.address)
        assert await second.closed_by_server()
        await until(lambda: any(isinstance(e, ConnectionRefused) for e in seen), "refusal")
        refusal = next(e for e in seen if isinstance(e, ConnectionRefused))
        assert refusal == ConnectionRefused(
            peer=peer_of(second), cap="max_connections",
            detail="too many connections (max_connections 1)",
        )  # fmt: skip
        assert server.stats.refusals == {"max_connections": 1}
        first.close()
        second.close()
