"""Replay, live fan-out and slow consumers: exactly once, in order, in bounded memory."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

import soupbintcp
from soupbintcp import AsyncClient, serve
from soupbintcp.lowlevel import LoginAcceptedPacket, SequencedMessages
from soupbintcp.store import MemoryStore

from .helpers import wait_for, within
from .server_support import (
    CREDENTIALS,
    PASSWORD,
    SESSION,
    USER,
    closes,
    login_packet,
    payload,
    payloads,
    stalled_socket,
)


async def receive_until(
    client: AsyncClient, last: int, messages: list[bytes] | None = None
) -> tuple[int, list[bytes]]:
    """Everything up to sequence `last`: (first sequence, payloads), checked contiguous."""
    got: list[bytes] = [] if messages is None else messages
    first = 0
    while True:
        for item in await within(client.receive_batch(), 20):
            assert type(item) is SequencedMessages
            if not first:
                first = item.first_sequence
            assert item.first_sequence == first + len(got)  # no gap, no duplicate
            got.extend(item.messages)
        if first and first + len(got) - 1 >= last:
            return first, got


async def test_fifty_clients_join_at_different_sequences_while_publishing() -> None:
    history, batches, batch = 5000, 40, 250
    last = history + batches * batch
    rng = random.Random(7)
    store = MemoryStore()
    store.append_many(payloads(1, history))
    async with serve(
        ("127.0.0.1", 0), store=store, session_id=SESSION, credentials=CREDENTIALS
    ) as server:

        async def publisher() -> None:
            seq = history + 1
            for i in range(batches):
                if i % 2:
                    assert server.publish_many(payloads(seq, seq + batch - 1)) == seq
                else:
                    for s in range(seq, seq + batch):
                        assert server.publish(payload(s)) == s
                seq += batch
                await asyncio.sleep(0.002)  # pacing, so logins land all along the stream

        async def follower(requested: int) -> None:
            accepted: list[int] = []

            def status(event: object) -> None:
                if isinstance(event, LoginAcceptedPacket):
                    accepted.append(event.sequence)

            await asyncio.sleep(rng.random() * 0.06)
            client = await soupbintcp.connect_async(
                server.address, USER, PASSWORD, sequence=requested, on_status=status
            )
            try:
                first, got = await receive_until(client, last)
                # Asking beyond the head gets Login Accepted at the head + 1, and a first
                # login starts there: nothing was delivered yet, so nothing is skipped.
                assert first == accepted[0]
                assert first == requested or requested == 0 or accepted[0] < requested
                if 1 <= requested <= history:
                    assert accepted[0] == requested  # history is there from the start
                assert got == payloads(first, last)  # its range, then live, exactly once
            finally:
                await client.close()

        starts = [0, 1, 2, history, history + 1, last]
        starts += [rng.randint(1, last) for _ in range(50 - len(starts))]
        async with asyncio.timeout(40):
            await asyncio.gather(publisher(), *(follower(s) for s in starts))


async def test_stalled_client_costs_bounded_memory_and_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "soupbintcp.server")
    total, batch = 1_000_000, 2000
    high = 64 * 1024
    everything = payloads(1, total)
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials=CREDENTIALS,
        stall_timeout=0.5,
        client_heartbeat_timeout=60,
        write_buffer_high=high,
    ) as server:
        stalled = stalled_socket(server.address, login_packet())
        healthy = await soupbintcp.connect_async(server.address, USER, PASSWORD)
        await wait_for(lambda: sum(c.logged_in for c in server.connections) == 2)
        received: list[bytes] = []
        reader = asyncio.create_task(receive_until(healthy, total, received))
        peak = 0
        for seq in range(1, total + 1, batch):
            server.publish_many(everything[seq - 1 : seq - 1 + batch])
            await asyncio.sleep(0)
            peak = max(peak, server.queued_bytes)
        await wait_for(lambda: len(server.connections) == 1, timeout=10)
        first, got = await within(reader, 30)
        assert first == 1
        assert got == everything
        # ~11 MB went out; the server never held more than a few buffers' worth.
        assert peak < 8 * high
        stall_lines = [r for r in closes(caplog) if "stalled" in r.getMessage()]
        assert len(stall_lines) == 1
        assert stall_lines[0].levelno == logging.WARNING
        assert stall_lines[0].exc_info is None
        await healthy.close()
        stalled.close()


async def test_long_replay_streams_in_bounded_memory_beside_a_live_client() -> None:
    history = 300_000
    store = MemoryStore()
    store.append_many(payloads(1, history))
    high = 64 * 1024
    async with serve(
        ("127.0.0.1", 0),
        store=store,
        session_id=SESSION,
        credentials=CREDENTIALS,
        write_buffer_high=high,
    ) as server:
        live = await soupbintcp.connect_async(server.address, USER, PASSWORD, sequence=0)
        replaying = await soupbintcp.connect_async(server.address, USER, PASSWORD, sequence=1)
        peak = 0
        live_got: list[bytes] = []
        live_task = asyncio.create_task(receive_until(live, history + 100, live_got))
        replay_task = asyncio.create_task(receive_until(replaying, history + 100))
        for seq in range(history + 1, history + 101):
            server.publish(payload(seq))
            await asyncio.sleep(0)
            peak = max(peak, server.queued_bytes)
        # The live client is not held up by the replay next to it.
        first, got = await within(live_task, 20)
        assert (first, got) == (history + 1, payloads(history + 1, history + 100))
        while not replay_task.done():
            peak = max(peak, server.queued_bytes)
            await asyncio.sleep(0.001)
        first, got = replay_task.result()
        assert first == 1
        assert got == payloads(1, history + 100)
        assert peak < 8 * high
        await live.close()
        await replaying.close()


async def test_timers_are_lazy_not_rescheduled_per_write() -> None:
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials=CREDENTIALS,
        heartbeat_interval=30.0,
        client_heartbeat_timeout=60.0,
    ) as server:
        client = await soupbintcp.connect_async(server.address, USER, PASSWORD)
        (conn,) = server.connections
        timer = conn._timer
        assert timer is not None
        for seq in range(1, 501):
            server.publish(payload(seq))
            await asyncio.sleep(0)
        _, got = await receive_until(client, 500)
        assert got == payloads(1, 500)
        assert conn._timer is timer  # 500 writes, one timer, untouched
        await client.close()


async def _uvloop_stall() -> None:
    high = 64 * 1024
    total = 1_000_000  # ~11 MB: well past what the kernel buffers for a silent peer
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials=CREDENTIALS,
        stall_timeout=0.3,
        write_buffer_high=high,
    ) as server:
        stalled = stalled_socket(server.address, login_packet())
        healthy = await soupbintcp.connect_async(server.address, USER, PASSWORD)
        await wait_for(lambda: sum(c.logged_in for c in server.connections) == 2)
        reader = asyncio.create_task(receive_until(healthy, total))
        peak = 0
        everything = payloads(1, total)
        for seq in range(1, total + 1, 1000):
            server.publish_many(everything[seq - 1 : seq + 999])
            await asyncio.sleep(0)
            peak = max(peak, server.queued_bytes)
        await wait_for(lambda: len(server.connections) == 1, timeout=10)
        assert (await within(reader, 20))[1] == everything
        assert peak < 8 * high
        await healthy.close()
        stalled.close()


def test_stall_handling_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(_uvloop_stall(), 30))
