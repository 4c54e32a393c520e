"""Hostile or broken peers: each closes its own connection alone, with one warning line,
while another client keeps receiving and the server keeps serving."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

import soupbintcp
from soupbintcp import AsyncClient, Connection, Message, Server, serve
from soupbintcp.store import MemoryStore

from .helpers import wait_for, wire, within
from .server_support import (
    CREDENTIALS,
    PASSWORD,
    SESSION,
    USER,
    RawClient,
    closes,
    login_packet,
    payload,
)

LOGIN = login_packet()


@dataclass
class Bystander:
    """A well-behaved client receiving a steady stream while something else goes wrong."""

    server: Server
    client: AsyncClient
    published: int = 0

    def publish(self, n: int = 1) -> None:
        for _ in range(n):
            self.published += 1
            self.server.publish(payload(self.published))

    async def check(self) -> None:
        """Publish more, and see it got everything, in order, still connected."""
        self.publish(5)
        got: list[Message] = []
        while len(got) < self.published:
            got.append(await within(self.client.receive_msg(), 5))
        assert [tuple(m) for m in got] == [(i, payload(i)) for i in range(1, len(got) + 1)]


async def on_unsequenced(connection: Connection, data: bytes) -> None:
    if data == b"boom":
        raise RuntimeError("handler bug")
    connection.send_unseq_data(b"echo:" + data)


@pytest.fixture
async def bystander(caplog: pytest.LogCaptureFixture) -> AsyncIterator[Bystander]:
    caplog.set_level(logging.INFO, "soupbintcp.server")
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials=CREDENTIALS,
        login_timeout=0.2,
        client_heartbeat_timeout=0.5,
        max_packet_length=512,
        on_unsequenced=on_unsequenced,
    ) as server:
        client = await soupbintcp.connect_async(
            server.address, USER, PASSWORD, heartbeat_interval=0.05
        )
        watcher = Bystander(server, client)
        watcher.publish(3)
        try:
            yield watcher
        finally:
            await client.close()


HOSTILE = {
    "data before login": (wire(b"U", b"x"), "Unsequenced Data received in state 'awaiting login'"),
    "heartbeat before login": (wire(b"R"), "Client Heartbeat received in state 'awaiting login'"),
    "two login requests at once": (
        LOGIN + LOGIN,
        "Login Request received in state 'login pending'",
    ),
    "unknown packet type": (LOGIN + wire(b"x"), "unexpected packet type b'x'"),
    "server packet from a client": (LOGIN + wire(b"S", b"x"), "unexpected packet type b'S'"),
    "oversize packet": (LOGIN + b"\x10\x00U", "exceeds the limit of 512"),
    "not soupbintcp at all": (b"GET / HTTP/1.1\r\n\r\n", "exceeds the limit of 512"),
    "zero length": (b"\x00\x00", "length 0"),
    "short login request": (wire(b"L", b"x" * 10), "LoginRequest payload is 10 bytes"),
    "malformed sequence field": (
        wire(b"L", b"user  secret    " + b" " * 10 + b"12x".rjust(20)),
        "requested sequence number field",
    ),
    "silent, never logs in": (b"", "no Login Request within 0.2 s"),
    "silent after login": (LOGIN, "nothing received from the client"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_input_closes_only_its_own_connection(
    bystander: Bystander, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    data, reason = HOSTILE[case]
    raw = await RawClient.connect(bystander.server.address)
    port = raw.writer.get_extra_info("sockname")[1]
    raw.send(data)
    bystander.publish(2)
    assert await raw.closed_by_server(timeout=5)
    await bystander.check()
    await wait_for(lambda: len(bystander.server.connections) == 1)
    (line,) = [r for r in closes(caplog) if f":{port}" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert line.exc_info is None  # no traceback for a misbehaving peer
    assert reason in line.getMessage()
    # The server still takes new clients.
    client = await soupbintcp.connect_async(bystander.server.address, USER, PASSWORD)
    assert tuple(await within(client.receive_msg())) == (1, payload(1))
    await client.close()


async def test_second_login_request_after_login_accepted(
    bystander: Bystander, caplog: pytest.LogCaptureFixture
) -> None:
    raw = await RawClient.connect(bystander.server.address)
    assert (await raw.login(sequence=0))[0] == b"A"
    raw.send(LOGIN)
    assert await raw.closed_by_server()
    await bystander.check()
    assert any(
        r.levelno == logging.WARNING
        and "Login Request received in state 'logged in'" in r.getMessage()
        for r in closes(caplog)
    )


async def test_truncated_packet_then_eof(
    bystander: Bystander, caplog: pytest.LogCaptureFixture
) -> None:
    raw = await RawClient.connect(bystander.server.address)
    port = raw.writer.get_extra_info("sockname")[1]
    raw.send(LOGIN[:20])
    await asyncio.sleep(0)
    raw.writer.write_eof()
    assert await raw.closed_by_server()
    await bystander.check()
    await wait_for(lambda: len(bystander.server.connections) == 1)
    (line,) = [r for r in closes(caplog) if f":{port}" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert "in the middle of a packet (20 bytes of it)" in line.getMessage()


async def test_failing_unsequenced_handler_closes_only_that_connection(
    bystander: Bystander, caplog: pytest.LogCaptureFixture
) -> None:
    other = await RawClient.connect(bystander.server.address)
    assert (await other.login(sequence=0))[0] == b"A"
    other.send(wire(b"U", b"hello"))
    assert await other.packet() == (b"U", b"echo:hello")
    other.send(wire(b"U", b"boom"))
    assert await other.closed_by_server()
    await bystander.check()
    assert any(r.exc_info for r in caplog.records if "on_unsequenced raised" in r.getMessage())


async def test_connection_flood_is_capped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "soupbintcp.server")
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials=CREDENTIALS,
        max_connections=4,
        max_pending_logins=2,
    ) as server:
        watcher = Bystander(server, await soupbintcp.connect_async(server.address, USER, PASSWORD))
        idle = [await RawClient.connect(server.address) for _ in range(2)]
        await wait_for(lambda: len(server.connections) == 3)

        def said(*words: str) -> bool:
            return any(all(w in r.getMessage() for w in words) for r in closes(caplog))

        # A third connection that does not log in is one too many awaiting login: the
        # oldest of them is evicted for it (issue 15: the newest may be an honest client).
        extra = await RawClient.connect(server.address)
        assert await idle[0].closed_by_server()
        assert said("evicted", "max_pending_logins 2")
        # Once one of them logs in, there is room for a fourth connection; a fifth fills
        # max_connections, and the oldest still awaiting login makes room for it.
        assert (await idle[1].login(sequence=0))[0] == b"A"
        fourth = await RawClient.connect(server.address)
        await wait_for(lambda: len(server.connections) == 4)
        fifth = await RawClient.connect(server.address)
        assert await extra.closed_by_server()
        assert said("evicted", "max_connections 4")
        # With every connection logged in, there is nobody to evict: a new one is refused.
        assert (await fourth.login(sequence=0))[0] == b"A"
        assert (await fifth.login(sequence=0))[0] == b"A"
        sixth = await RawClient.connect(server.address)
        assert await sixth.closed_by_server()
        assert said("refused", "max_connections 4")
        refusals = [r for r in closes(caplog) if "refused" in r.getMessage()]
        assert all(r.levelno == logging.WARNING and r.exc_info is None for r in refusals)
        await watcher.check()
        for raw in (*idle, extra, fourth, fifth, sixth):
            raw.close()
        await watcher.client.close()
