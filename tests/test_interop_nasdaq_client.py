"""Interop: the client of the `nasdaq-protocols` package (PyPI) against our server.

Their client reads one frame per loop turn and sleeps between (about 1 ms per message on
stock asyncio), so message counts stay small and every wait is bounded.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nasdaq_protocols import soup

from soupbintcp import Connection, Server, serve
from soupbintcp.store import MemoryStore

from .helpers import wait_for, within
from .server_support import CREDENTIALS, PASSWORD, SESSION, USER, closes, payload, payloads

HISTORY = 20


def echo(connection: Connection, data: bytes) -> None:
    connection.send_unseq_data(b"ack:" + data)


@pytest.fixture
async def server(caplog: pytest.LogCaptureFixture) -> AsyncIterator[Server]:
    caplog.set_level(logging.INFO, "soupbintcp.server")
    store = MemoryStore()
    store.append_many(payloads(1, HISTORY))
    async with serve(
        ("127.0.0.1", 0),
        store=store,
        session_id=SESSION,
        credentials=CREDENTIALS,
        on_unsequenced=echo,
    ) as running:
        yield running


async def their_client(server: Server, **kwargs: Any) -> Any:
    return await within(soup.connect_async(server.address, USER, PASSWORD, **kwargs), 10)


async def receive(session: Any, n: int) -> list[Any]:
    return [await within(session.receive_msg(), 5) for _ in range(n)]


async def test_login_and_replay_from_a_sequence_then_live(server: Server) -> None:
    session = await their_client(server, session_id=SESSION, sequence=5)
    try:
        got = await receive(session, HISTORY - 4)
        assert all(isinstance(m, soup.SequencedData) for m in got)
        assert [m.data for m in got] == payloads(5, HISTORY)
        server.publish_many(payloads(HISTORY + 1, HISTORY + 3))
        assert [m.data for m in await receive(session, 3)] == payloads(HISTORY + 1, HISTORY + 3)
        assert session.sequence == HISTORY + 3  # their count of what arrived
    finally:
        await session.close()


async def test_login_at_zero_gets_only_new_messages(server: Server) -> None:
    session = await their_client(server, sequence=0)
    try:
        server.publish(payload(HISTORY + 1))
        (msg,) = await receive(session, 1)
        assert msg.data == payload(HISTORY + 1)
    finally:
        await session.close()


async def test_login_rejected(server: Server) -> None:
    with pytest.raises(ConnectionRefusedError):
        await within(soup.connect_async(server.address, USER, "wrong"), 10)
    with pytest.raises(ConnectionRefusedError):
        await within(soup.connect_async(server.address, USER, PASSWORD, "NOSUCH"), 10)


async def test_unsequenced_both_ways(server: Server) -> None:
    session = await their_client(server, sequence=HISTORY + 1)
    try:
        session.send_unseq_data(b"order-1")
        session.send_unseq_data(b"order-2")
        got = await receive(session, 2)
        assert all(isinstance(m, soup.UnSequencedData) for m in got)
        assert [m.data for m in got] == [b"ack:order-1", b"ack:order-2"]
    finally:
        await session.close()


async def test_end_of_session(server: Server) -> None:
    session = await their_client(server, sequence=HISTORY - 1)
    assert [m.data for m in await receive(session, 2)] == payloads(HISTORY - 1, HISTORY)
    await server.end_session()
    # Their client marks itself closed on End of Session and drops the connection. Their
    # on_close_coro is not waited for: under load their close task can be cancelled by their
    # own reader's shutdown before it calls it (seen once in a full `make test` on a loaded
    # host), which is their client's race, not our server's behaviour.
    await wait_for(session.is_closed, timeout=10)
    await wait_for(lambda: not server.connections, timeout=10)


async def test_logout(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    session = await their_client(server, sequence=HISTORY + 1)
    session.logout()
    await wait_for(lambda: not server.connections, timeout=10)
    assert any("logged out" in r.getMessage() for r in closes(caplog))
