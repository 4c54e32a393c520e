"""End of session, new sessions, per-user streams, unsequenced handlers, durability, restarts."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

import soupbintcp
from soupbintcp import (
    AsyncClient,
    Connection,
    Dialect,
    LocalProtocolError,
    Message,
    SessionEnded,
    serve,
)
from soupbintcp.store import Durability, FileStore, MemoryStore

from .helpers import wait_for, wire, within
from .server_support import (
    CREDENTIALS,
    PASSWORD,
    SESSION,
    USER,
    RawClient,
    payload,
    payloads,
)


async def take(client: AsyncClient, n: int) -> list[tuple[int | None, bytes]]:
    return [tuple(await within(client.receive_msg(), 5)) for _ in range(n)]  # type: ignore[misc]


def seqs(first: int, last: int) -> list[tuple[int | None, bytes]]:
    return [(i, payload(i)) for i in range(first, last + 1)]


async def settle(turns: int = 20) -> None:
    """Let the loop run a few turns (no timing involved)."""
    for _ in range(turns):
        await asyncio.sleep(0)


# --- end of session ----------------------------------------------------------------------------


async def test_end_of_session_follows_everything_before_it() -> None:
    store = MemoryStore()
    store.append_many(payloads(1, 20_000))
    async with serve(
        ("127.0.0.1", 0), store=store, session_id=SESSION, credentials=CREDENTIALS
    ) as server:
        live = await soupbintcp.connect_async(server.address, USER, PASSWORD, sequence=0)
        replaying = await soupbintcp.connect_async(server.address, USER, PASSWORD, sequence=1)
        server.publish_many(payloads(20_001, 20_010))
        await server.end_session()
        assert server.session_ended
        with pytest.raises(LocalProtocolError, match="ended"):
            server.publish(b"late")
        assert await take(live, 10) == seqs(20_001, 20_010)
        assert await take(replaying, 20_010) == seqs(1, 20_010)
        for client in (live, replaying):
            with pytest.raises(SessionEnded):
                await within(client.receive_msg())
            assert client.close_reason is soupbintcp.CloseReason.END_OF_SESSION
        # The clients close after Z; the server follows.
        await wait_for(lambda: not server.connections)


async def test_relogin_after_a_lost_connection_gets_the_rest_then_z() -> None:
    store = MemoryStore()
    store.append_many(payloads(1, 100))
    async with serve(
        ("127.0.0.1", 0), store=store, session_id=SESSION, credentials=CREDENTIALS
    ) as server:
        raw = await RawClient.connect(server.address)
        assert (await raw.login(sequence=1))[0] == b"A"
        for seq in range(1, 51):
            assert await raw.packet() == (b"S", payload(seq))
        raw.close()  # lost before End of Session
        await wait_for(lambda: not server.connections)
        await server.end_session()
        again = await RawClient.connect(server.address)
        accepted = await again.login(session=SESSION, sequence=51)
        assert accepted == (b"A", SESSION.encode().rjust(10) + b"51".rjust(20))
        assert await again.rest() == [(b"S", payload(s)) for s in range(51, 101)] + [(b"Z", b"")]
        # Our client, asking for its next message, gets Z at once.
        client = await soupbintcp.connect_async(server.address, USER, PASSWORD, SESSION, 101)
        with pytest.raises(SessionEnded):
            await within(client.receive_msg())


async def test_a_new_session_after_the_end() -> None:
    async with serve(
        ("127.0.0.1", 0), store=MemoryStore(), session_id=SESSION, credentials=CREDENTIALS
    ) as server:
        client = await soupbintcp.connect_async(server.address, USER, PASSWORD)
        server.publish(b"old")
        # start_session ends the current session first.
        await server.start_session("SESSION2", MemoryStore())
        assert await take(client, 1) == [(1, b"old")]
        with pytest.raises(SessionEnded):
            await within(client.receive_msg())
        raw = await RawClient.connect(server.address)
        assert await raw.login(session=SESSION) == (b"J", b"S")
        assert server.publish(b"new") == 1
        fresh = await soupbintcp.connect_async(server.address, USER, PASSWORD)
        assert fresh.session_id == "SESSION2"
        assert await take(fresh, 1) == [(1, b"new")]
        await fresh.close()


# --- per-user streams --------------------------------------------------------------------------


async def ack(connection: Connection, data: bytes) -> None:
    await asyncio.sleep(random.random() / 1000)  # order must survive awaiting handlers
    connection.publish(b"ack:" + data)


async def test_per_user_streams_survive_reconnects() -> None:
    made: list[str] = []

    def user_store(username: str) -> MemoryStore:
        made.append(username)
        return MemoryStore(session_id=SESSION)

    async with serve(
        ("127.0.0.1", 0),
        user_store=user_store,
        session_id=SESSION,
        credentials={"alice": "a1", "Bob": "b2"},
        on_unsequenced=ack,
    ) as server:
        alice = await soupbintcp.connect_async(server.address, "ALICE", "A1")
        bob = await soupbintcp.connect_async(server.address, "bob", "b2")
        for i in range(20):
            alice.send_unseq_data(b"order%d" % i)
        bob.send_unseq_data(b"bid")
        assert await take(alice, 20) == [(i + 1, b"ack:order%d" % i) for i in range(20)]
        assert await take(bob, 1) == [(1, b"ack:bid")]
        await alice.close()
        # Published to alice's stream while she is away (usernames are case-insensitive).
        assert server.publish(b"fill", user="Alice") == 21
        with pytest.raises(LocalProtocolError, match="name the user"):
            server.publish(b"to whom?")
        alice = await soupbintcp.connect_async(server.address, "alice", "a1", SESSION, 19)
        assert await take(alice, 3) == [(19, b"ack:order18"), (20, b"ack:order19"), (21, b"fill")]
        assert sorted(made) == ["alice", "bob"]
        assert {s.user for s in server.streams} == {"alice", "bob"}
        await server.end_session()
        for client in (alice, bob):
            with pytest.raises(SessionEnded):
                await within(client.receive_msg())


async def test_unsequenced_handler_answers_its_client_alone() -> None:
    def echo(connection: Connection, data: bytes) -> None:
        connection.send_unseq_data(connection.username.encode() + b":" + data)

    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials={"one": "x", "two": "y"},
        on_unsequenced=echo,
    ) as server:
        one = await soupbintcp.connect_async(server.address, "one", "x")
        two = await soupbintcp.connect_async(server.address, "two", "y")
        one.send_unseq_data(b"ping")
        assert await within(one.receive_msg()) == Message((None, b"one:ping"))
        server.publish(b"seq")
        assert await within(two.receive_msg()) == Message((1, b"seq"))
        assert await within(one.receive_msg()) == Message((1, b"seq"))
        await one.close()
        await two.close()


# --- durability and restarts -------------------------------------------------------------------


async def test_timer_durability_delivers_only_after_the_flush(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "feed.soup", durability=Durability.TIMER, session_id=SESSION)
    async with serve(
        ("127.0.0.1", 0),
        store=store,
        credentials=CREDENTIALS,
        flush_interval=3600,  # no flush unless asked: what is published waits
    ) as server:
        client = await soupbintcp.connect_async(server.address, USER, PASSWORD, sequence=0)
        assert server.publish_many(payloads(1, 3)) == 1
        await settle()
        assert store.count == 3
        assert store.durable_count == 0
        assert client.queued == 0
        # A login now is told 1: the three are not numbers any client may see yet.
        late = await RawClient.connect(server.address)
        assert await late.login(sequence=0) == (b"A", SESSION.encode().rjust(10) + b"1".rjust(20))
        server.flush()
        assert await take(client, 3) == seqs(1, 3)
        assert [await late.packet() for _ in range(3)] == [(b"S", payload(i)) for i in (1, 2, 3)]
        await client.close()
    store.close()


async def test_timer_durability_flushes_on_its_own(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "feed.soup", durability=Durability.TIMER)
    async with serve(
        ("127.0.0.1", 0),
        store=store,
        session_id=SESSION,
        credentials=CREDENTIALS,
        flush_interval=0.005,
    ) as server:
        client = await soupbintcp.connect_async(server.address, USER, PASSWORD)
        for i in range(1, 101):
            server.publish(payload(i))
        assert await take(client, 100) == seqs(1, 100)
        assert store.durable_count == 100
        await client.close()
    store.close()


async def test_restart_on_the_same_file_continues_the_numbering(tmp_path: Path) -> None:
    path = tmp_path / "feed.soup"
    with FileStore(path, session_id=SESSION) as store:
        async with serve(("127.0.0.1", 0), store=store, credentials=CREDENTIALS) as server:
            assert server.publish_many(payloads(1, 5)) == 1
    with FileStore(path) as store:
        async with serve(("127.0.0.1", 0), store=store, credentials=CREDENTIALS) as server:
            assert server.session_id == SESSION  # recorded in the journal
            assert server.publish(payload(6)) == 6
            client = await soupbintcp.connect_async(server.address, USER, PASSWORD, SESSION, 1)
            assert await take(client, 6) == seqs(1, 6)
            await client.close()


async def test_omega_dialect_closes_instead_of_end_of_session() -> None:
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials=CREDENTIALS,
        dialect=Dialect.OMEGA,
    ) as server:
        raw = await RawClient.connect(server.address)
        assert (await raw.login())[0] == b"A"
        server.publish(b"x")
        await server.end_session()
        assert await raw.rest() == [(b"S", b"x")]


async def test_client_unsequenced_order_is_kept_under_backpressure() -> None:
    seen: list[bytes] = []
    gate = asyncio.Event()

    async def slow(connection: Connection, data: bytes) -> None:
        await gate.wait()
        seen.append(data)

    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials=CREDENTIALS,
        on_unsequenced=slow,
    ) as server:
        raw = await RawClient.connect(server.address)
        assert (await raw.login())[0] == b"A"
        count = 3000  # past the point where the server stops reading from this client
        raw.send(b"".join(wire(b"U", b"%d" % i) for i in range(count)))
        await wait_for(lambda: server.connections[0]._reading_paused)
        gate.set()
        await wait_for(lambda: len(seen) == count)
        assert seen == [b"%d" % i for i in range(count)]
        raw.close()


async def test_end_session_then_close_still_delivers_z() -> None:
    server = await serve(
        ("127.0.0.1", 0), store=MemoryStore(), session_id=SESSION, credentials=CREDENTIALS
    )
    client = await soupbintcp.connect_async(server.address, USER, PASSWORD)
    server.publish_many(payloads(1, 1000))
    await server.end_session()
    await server.close()
    assert await take(client, 1000) == seqs(1, 1000)
    with pytest.raises(SessionEnded):
        await within(client.receive_msg())
    assert client.close_reason is soupbintcp.CloseReason.END_OF_SESSION
