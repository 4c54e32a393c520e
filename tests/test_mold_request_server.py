"""The re-request server against hostile input: garbage, other sessions, impossible and huge
requests, one source flooding and floods from many sources. Answers stay bounded (per
source, per request, in all) and the transmitter's listeners still get every message."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

from soupbintcp._wire._moldudp64 import encode_request, session_field
from soupbintcp.moldudp64 import Downstream, RequestServer, listen_async, serve_requests
from soupbintcp.store import MemoryStore

from .helpers import wait_for, within
from .mold_support import FIELD, SESSION, itch_like, random_group
from .test_mold_e2e import LOOP, collect, start_feed


@pytest.fixture
async def server() -> AsyncIterator[RequestServer]:
    store = MemoryStore(session_id=SESSION)
    store.append_many(itch_like(10_000))
    rq = await serve_requests(store, (LOOP, 0), rate=1_000, burst=50)
    try:
        yield rq
    finally:
        await rq.close()


def client(source: str = LOOP) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    return sock


def drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(65536))
        except BlockingIOError:
            return out


async def test_an_answer_is_one_datagram_for_the_requester(server: RequestServer) -> None:
    sock = client()
    sock.sendto(encode_request(FIELD, 100, 0xFFFF), server.address)
    await wait_for(lambda: server.answers == 1)
    await asyncio.sleep(0.01)
    (answer,) = drain(sock)
    assert len(answer) <= 1400
    packet = Downstream.decode(answer)
    assert packet.sequence == 100
    assert 1 <= len(packet.messages) < 0xFFFF
    assert packet.messages[0] == itch_like(100)[99]
    sock.close()


async def test_garbage_other_sessions_and_impossible_requests_are_ignored_and_counted(
    server: RequestServer,
) -> None:
    sock = client()
    hostile = [
        b"",
        b"x" * 19,
        b"x" * 21,
        b"\xff" * 1400,
        encode_request(session_field("OTHER"), 1, 10),
        encode_request(FIELD, 0, 10),  # numbers start at 1
        encode_request(FIELD, 5, 0),  # nothing asked for
        encode_request(FIELD, 10_001, 10),  # not yet
        encode_request(FIELD, 2**64 - 1, 0xFFFF),
    ]
    for datagram in hostile:
        sock.sendto(datagram, server.address)
    await wait_for(lambda: server.requests == len(hostile))
    await asyncio.sleep(0.02)
    assert drain(sock) == []
    assert server.answers == 0
    assert server.malformed == 6  # four not 20 bytes long, sequence 0, count 0
    assert server.other_session == 1
    assert server.not_yet == 2
    sock.close()


async def test_one_source_is_rate_limited(server: RequestServer) -> None:
    sock = client()
    start = time.monotonic()
    for i in range(3000):
        sock.sendto(encode_request(FIELD, 1 + i, 1), server.address)
        if i % 100 == 0:
            await asyncio.sleep(0)
    await wait_for(lambda: server.requests == 3000)
    elapsed = time.monotonic() - start
    assert server.answers <= server.burst + server.rate * elapsed + 1
    assert server.rate_limited == 3000 - server.answers
    sock.close()


async def test_floods_from_many_sources_leave_the_feed_whole() -> None:
    feed = await start_feed(random_group())
    # A small budget so that the flood exceeds it.
    await feed.rq.close()
    feed.rq = await serve_requests(feed.store, (LOOP, 0), max_requests=2_000)
    listener = await listen_async(feed.tx.group, feed.rq.address, interface=LOOP)
    flooders = [client(f"127.0.0.{i}") for i in range(2, 34)]
    stop = asyncio.Event()

    async def flood() -> int:
        sent = 0
        while not stop.is_set():
            for sock in flooders:
                for _ in range(20):
                    try:
                        sock.sendto(encode_request(FIELD, 1, 0xFFFF), feed.rq.address)
                        sent += 1
                    except BlockingIOError:
                        pass
                drain(sock)
            await asyncio.sleep(0)
        return sent

    try:
        flooding = asyncio.create_task(flood())
        start = time.monotonic()
        messages = itch_like(20_000)
        for i in range(0, 20_000, 5_000):
            feed.store.append_many(messages[i : i + 5_000])
            await asyncio.sleep(0.005)
        assert await within(collect(listener, 20_000), timeout=60) == list(range(1, 20_001))
        stop.set()
        sent = await flooding
        elapsed = time.monotonic() - start
        rq = feed.rq
        assert sent > rq.max_requests  # the flood was bigger than the budget
        assert rq.requests <= rq.max_requests * (elapsed + 2)
        # Each source is answered within its own bucket.
        assert rq.answers <= len(flooders) * (rq.burst + rq.rate * elapsed) + 1_000
    finally:
        stop.set()
        for sock in flooders:
            sock.close()
        await listener.close()
        await feed.close()


async def test_a_store_that_starts_later_answers_from_its_first_message() -> None:
    """A journal of a capture that joined the session late: asking before its first message
    is not an error, only nothing to send (counted as not there)."""
    store = MemoryStore(session_id=SESSION, first_sequence=5000)
    store.append_many(itch_like(100))
    rq = await serve_requests(store, (LOOP, 0))
    sock = client()
    try:
        sock.sendto(encode_request(FIELD, 10, 5), rq.address)
        sock.sendto(encode_request(FIELD, 5001, 2), rq.address)
        await wait_for(lambda: rq.requests == 2 and rq.answers == 1)
        await asyncio.sleep(0.01)
        (answer,) = drain(sock)
        packet = Downstream.decode(answer)
        assert (packet.sequence, list(packet.messages)) == (5001, itch_like(100)[1:3])
        assert rq.not_yet == 1
    finally:
        sock.close()
        await rq.close()
