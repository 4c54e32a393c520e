"""Gateways: SoupBinTCP clients of a MoldUDP64 -> SoupBinTCP gateway at sequence 1, n and 0
get exactly what the multicast carried; a restarted gateway resumes its journal; and a
SoupBinTCP server's journal goes out on MoldUDP64 with re-requests answered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import soupbintcp
from soupbintcp.gateways import mold_to_soupbintcp, soupbintcp_to_mold
from soupbintcp.moldudp64 import listen_async
from soupbintcp.store import FileStore, MemoryStore

from .helpers import wait_for, within
from .mold_relay import Faults, MulticastRelay
from .mold_support import SESSION, itch_like, random_group
from .test_mold_e2e import LOOP, collect, start_feed, wait_sent

CREDS = {"user": "secret"}


async def read_client(address: tuple[str, int], sequence: int, count: int) -> list[int]:
    client = await soupbintcp.connect_async(address, "user", "secret", sequence=sequence)
    got: list[int] = []
    try:
        async for msg in client:
            assert msg.sequence is not None
            assert int.from_bytes(msg.data[:8], "big") == msg.sequence
            got.append(msg.sequence)
            if len(got) == count:
                break
    finally:
        await client.close()
    return got


async def test_clients_at_1_n_and_0_get_what_the_multicast_carried(tmp_path: Path) -> None:
    source, target = random_group(), random_group()
    feed = await start_feed(source)
    relay = await MulticastRelay(source, target, Faults(loss=0.05, reorder=0.05, seed=3)).start()
    feed.store.append_many(itch_like(3000))  # before the gateway: back-filled from 1
    await wait_sent(feed.tx, 3001)
    store = FileStore(tmp_path / "gw.soup")
    gateway = await mold_to_soupbintcp(
        target, feed.rq.address, (LOOP, 0), store, credentials=CREDS, interface=LOOP,
        first_packet_timeout=10,
    )  # fmt: skip
    try:
        feed.store.append_many(itch_like(6000)[3000:])
        at_1 = asyncio.create_task(read_client(gateway.address, 1, 6000))
        assert await within(at_1, 30) == list(range(1, 6001))
        # (A login beyond the journal's head is answered with the head, as SoupBinTCP says;
        # by now the journal holds 6000.)
        at_n = asyncio.create_task(read_client(gateway.address, 4500, 1501))
        assert await within(at_n, 30) == list(range(4500, 6001))

        def logged_in() -> int:
            return sum(c.logged_in for c in gateway.server.connections)

        await within(wait_for(lambda: logged_in() == 0, 10))  # the first two have gone
        at_0 = asyncio.create_task(read_client(gateway.address, 0, 100))
        # Logged in at the head before more is appended (a sleep here was a guess at it).
        await within(wait_for(lambda: logged_in() == 1, 10))
        feed.store.append_many(itch_like(6100)[6000:])
        assert await within(at_0, 30) == list(range(6001, 6101))
        assert gateway.server.session_id == SESSION  # learned from the first packet
    finally:
        await gateway.close()
        store.close()

    # Restarted on the same journal, the gateway resumes after what it holds.
    store = FileStore(tmp_path / "gw.soup")
    assert store.count == 6100
    gateway = await mold_to_soupbintcp(
        target, feed.rq.address, (LOOP, 0), store, credentials=CREDS, interface=LOOP
    )
    try:
        feed.store.append_many(itch_like(6500)[6100:])
        assert await within(read_client(gateway.address, 1, 6500), 30) == list(range(1, 6501))
        # End of Session on the multicast ends the SoupBinTCP session too.
        await feed.tx.end_session(linger=0.3)
        await within(gateway.wait_closed(), 10)
        assert gateway.server.session_ended
    finally:
        await gateway.close()
        store.close()
        await relay.close()
        await feed.close()


async def test_a_soupbintcp_server_journal_on_moldudp64() -> None:
    store = MemoryStore(session_id=SESSION)
    server = await soupbintcp.serve((LOOP, 0), store=store, credentials=CREDS)
    group = random_group()
    mold = await soupbintcp_to_mold(server, group, (LOOP, 0), interface=LOOP, ttl=0, first=1)
    listener = await listen_async(group, mold.requests.address, interface=LOOP)
    try:
        server.publish_many(itch_like(2000))
        assert await within(collect(listener, 2000)) == list(range(1, 2001))
        # Both protocols carry the same numbers.
        assert await within(read_client(server.address[:2], 1990, 11)) == list(range(1990, 2001))
    finally:
        await listener.close()
        await mold.close()
        await server.close()
