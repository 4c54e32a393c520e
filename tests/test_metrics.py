"""Metrics scraped over real HTTP while a server runs, parsed with prometheus-client's own
parser, and checked against the server's state: a stalled client's lag grows by exactly what
was published meanwhile, its series go when it goes, refusals are counted by reason and cap."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

import soupbintcp
import soupbintcp.lowlevel
from soupbintcp import Connection, MemoryStore, Server, serve
from soupbintcp.metrics import MetricsEndpoint, serve_metrics

from .server_support import CREDENTIALS, PASSWORD, SESSION, USER, RawClient, stalled_socket
from .server_support import login_packet as login

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SLOW = "slow"


def scrape_now(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(endpoint: MetricsEndpoint) -> Samples:
    # From another thread, as Prometheus would: the collector asks this loop for a snapshot.
    return await asyncio.to_thread(scrape_now, endpoint.url)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def client_series(samples: Samples, user: str) -> list[str]:
    return [
        name
        for name, labels in samples
        if name.startswith("soupbintcp_server_client_") and ("user", user) in labels
    ]


def labels_of(conn: Connection) -> dict[str, str]:
    host, port = conn.address
    return {"session": SESSION, "user": conn.username, "peer": f"{host}:{port}",
            "connection": str(conn.id)}  # fmt: skip


async def receive(client: soupbintcp.AsyncClient) -> int:
    """Messages in the next batch."""
    batch = await client.receive_batch()
    return sum(
        len(item.messages)
        for item in batch
        if isinstance(item, soupbintcp.lowlevel.SequencedMessages)
    )


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    store = MemoryStore(session_id=SESSION)
    credentials = {**CREDENTIALS, SLOW: PASSWORD}
    # No stall timeout: the stalled client stays as long as the test needs it.
    async with serve(("127.0.0.1", 0), store=store, credentials=credentials,
                     stall_timeout=None, write_buffer_high=16 * 1024) as server:  # fmt: skip
        yield server


@pytest.fixture
async def endpoint(server: Server) -> AsyncIterator[MetricsEndpoint]:
    with serve_metrics(("127.0.0.1", 0), server) as endpoint:
        yield endpoint


def connection_of(server: Server, user: str) -> Connection:
    return next(c for c in server.connections if c.username == user)


async def test_a_stalled_clients_lag_grows_by_exactly_what_was_published(
    server: Server, endpoint: MetricsEndpoint
) -> None:
    reader = await soupbintcp.connect_async(server.address, USER, PASSWORD)
    stalled = stalled_socket(server.address, login(username=SLOW))
    await until(lambda: len(server.stream().connections) == 2)
    slow = connection_of(server, SLOW)
    payload = b"x" * 200
    while not slow.paused:  # publish until the stalled client's buffers are all full
        server.publish_many([payload] * 500)
        server.flush()
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # let anything in flight settle: it stays paused
    assert slow.paused
    count = 0

    async def drain() -> None:
        nonlocal count
        while count < server.store.count:
            count += await receive(reader)

    await asyncio.wait_for(drain(), 20)
    before = await scrape(endpoint)
    lag_before = value(before, "soupbintcp_server_client_lag_messages", **labels_of(slow))
    assert lag_before == slow.lag
    assert value(before, "soupbintcp_server_client_next_sequence", **labels_of(slow)) == (
        slow.next_sequence
    )

    published = 1234
    server.publish_many([payload] * published)
    server.flush()
    await asyncio.wait_for(drain(), 20)
    after = await scrape(endpoint)
    slow_labels = labels_of(slow)
    assert value(after, "soupbintcp_server_client_lag_messages", **slow_labels) == (
        lag_before + published
    )
    assert value(after, "soupbintcp_server_client_next_sequence", **slow_labels) == (
        slow.next_sequence
    )
    assert value(after, "soupbintcp_server_client_send_buffer_bytes", **slow_labels) == (
        slow.write_buffer_size
    )
    fast = connection_of(server, USER)
    assert value(after, "soupbintcp_server_client_lag_messages", **labels_of(fast)) == 0
    assert value(after, "soupbintcp_server_client_messages_sent_total", **labels_of(fast)) == (
        server.store.count
    )
    assert value(after, "soupbintcp_server_clients") == 2
    assert value(after, "soupbintcp_journal_last_sequence", session=SESSION, stream="feed") == (
        server.store.count
    )
    assert value(after, "soupbintcp_journal_durable_sequence", session=SESSION, stream="feed") == (
        server.store.durable_count
    )
    assert value(after, "soupbintcp_server_messages_sent_total") == (
        fast.messages_sent + slow.messages_sent
    )

    # The stalled client goes: its series go with it, and the disconnect is counted.
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    stalled.close()  # a reset: the server sees the connection lost
    await until(lambda: len(server.connections) == 1)
    gone = await scrape(endpoint)
    assert client_series(gone, SLOW) == []
    assert client_series(gone, USER) != []
    assert value(gone, "soupbintcp_server_clients") == 1
    assert (
        sum(
            value(gone, "soupbintcp_server_disconnects_total", reason=reason)
            for reason in ("connection_lost", "closed_by_client")
        )
        == 1
    )
    # The totals keep what the closed connection was sent.
    assert value(gone, "soupbintcp_server_messages_sent_total") == (
        fast.messages_sent + slow.messages_sent
    )
    await reader.close()


async def test_refused_logins_are_counted_by_reason(
    server: Server, endpoint: MetricsEndpoint
) -> None:
    empty = await scrape(endpoint)
    for result in ("accepted", "not_authorized", "session_not_available"):
        assert value(empty, "soupbintcp_server_logins_total", result=result) == 0
    for password, session, answer in (
        ("wrong", "", b"A"), ("nope", "", b"A"), (PASSWORD, "OTHER", b"S"), (PASSWORD, "", b""),
    ):  # fmt: skip
        client = await RawClient.connect(server.address)
        kind, body = await client.login(password=password, session=session)
        assert (kind, body) == ((b"J", answer) if answer else (b"A", body))
        client.close()
    await until(lambda: server.stats.disconnects.total() == 4)
    samples = await scrape(endpoint)
    assert value(samples, "soupbintcp_server_logins_total", result="not_authorized") == 2
    assert value(samples, "soupbintcp_server_logins_total", result="session_not_available") == 1
    assert value(samples, "soupbintcp_server_logins_total", result="accepted") == 1
    assert value(samples, "soupbintcp_server_disconnects_total", reason="login_rejected") == 3
    assert value(samples, "soupbintcp_server_connections_accepted_total") == 4
    assert value(samples, "soupbintcp_server_admission_refusals_total", cap="max_connections") == 0


async def test_admission_refusals_are_counted_by_cap() -> None:
    async with serve(("127.0.0.1", 0), store=MemoryStore(session_id=SESSION),
                     credentials=CREDENTIALS, max_connections=1) as server:  # fmt: skip
        with serve_metrics(("127.0.0.1", 0), server) as endpoint:
            waiting = await RawClient.connect(server.address)
            await until(lambda: len(server.connections) == 1)
            first = await RawClient.connect(server.address)  # evicts the one awaiting login
            assert (await first.login())[0] == b"A"
            assert await waiting.closed_by_server()
            waiting.close()
            for _ in range(3):  # no connection awaiting login is left to evict: refused
                extra = await RawClient.connect(server.address)
                assert await extra.closed_by_server()
                extra.close()
            await until(lambda: server.stats.refusals["max_connections"] == 3)
            samples = await scrape(endpoint)
            assert (
                value(samples, "soupbintcp_server_admission_refusals_total", cap="max_connections")
                == 3
            )
            assert value(samples, "soupbintcp_server_disconnects_total", reason="evicted") == 1
            assert value(samples, "soupbintcp_server_clients") == 1
            first.close()


async def test_flush_durations_are_a_histogram(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    store = soupbintcp.FileStore(tmp_path / "feed.soup", session_id=SESSION,
                                 durability=soupbintcp.Durability.TIMER)  # fmt: skip
    async with serve(("127.0.0.1", 0), store=store, credentials=CREDENTIALS) as server:
        with serve_metrics(("127.0.0.1", 0), server) as endpoint:
            for _ in range(5):
                server.publish_many([b"m"] * 100)
                server.flush()
            samples = await scrape(endpoint)
            flushes = server.stats.flush.count
            assert flushes == 5
            assert value(samples, "soupbintcp_journal_flush_seconds_count") == flushes
            assert value(samples, "soupbintcp_journal_flush_seconds_bucket", le="+Inf") == flushes
            assert value(samples, "soupbintcp_journal_flush_seconds_sum") == pytest.approx(
                server.stats.flush.sum
            )
    store.close()


async def test_a_clients_figures(server: Server) -> None:
    server.publish_many([b"m%d" % i for i in range(1, 101)])
    client = await soupbintcp.connect_async(server.address, USER, PASSWORD, sequence=1)
    with serve_metrics(("127.0.0.1", 0), client) as endpoint:
        got = 0
        while got < 100:
            got += await receive(client)
        samples = await scrape(endpoint)
        assert value(samples, "soupbintcp_client_messages_received_total", session=SESSION) == 100
        assert value(samples, "soupbintcp_client_next_sequence", session=SESSION) == 101
        assert value(samples, "soupbintcp_client_reconnects_total", session=SESSION) == 0
        assert value(samples, "soupbintcp_client_failovers_total", session=SESSION) == 0
        assert value(samples, "soupbintcp_client_gaps_refused_total", session=SESSION) == 0
        host, port = server.address
        assert value(samples, "soupbintcp_client_address", session=SESSION,
                     address=f"{host}:{port}") == 1  # fmt: skip
    assert client.messages_received == 100
    await client.close()


async def test_figures_added_by_other_parts_of_a_feed(server: Server) -> None:
    lag = {"value": 7.0}
    with serve_metrics(("127.0.0.1", 0), server) as endpoint:
        endpoint.add_gauge("soupbintcp_gateway_lag_messages", "Behind the log.",
                           lambda: {("G1",): lag["value"]}, labels=("gateway",))  # fmt: skip
        endpoint.add_counter("soupbintcp_gateway_applied", "Applied.", lambda: 3)
        samples = await scrape(endpoint)
        assert value(samples, "soupbintcp_gateway_lag_messages", gateway="G1") == 7
        assert value(samples, "soupbintcp_gateway_applied_total") == 3


async def test_moldudp64_requests_served_and_refused_and_what_was_sent() -> None:
    from soupbintcp._wire._moldudp64 import encode_request, session_field

    from .mold_support import FIELD, itch_like, random_group
    from .test_mold_e2e import LOOP, start_feed

    feed = await start_feed(random_group())
    try:
        feed.store.append_many(itch_like(100))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((LOOP, 0))
        rq = feed.rq
        for datagram in (
            encode_request(FIELD, 1, 10),  # served
            encode_request(FIELD, 50, 5),  # served
            b"x" * 19,  # malformed
            encode_request(session_field("OTHER"), 1, 10),  # another session
            encode_request(FIELD, 101, 10),  # not yet
        ):
            sock.sendto(datagram, rq.address)
        await until(lambda: rq.requests == 5)
        await until(lambda: feed.tx.messages_sent == 100)
        with serve_metrics(("127.0.0.1", 0), feed.tx, rq) as endpoint:
            samples = await scrape(endpoint)
        s = rq.session_id
        assert value(samples, "soupbintcp_moldudp64_requests_served_total", session=s) == 2
        assert value(samples, "soupbintcp_moldudp64_messages_resent_total", session=s) == 15
        for reason, count in (("malformed", 1), ("other_session", 1), ("not_yet", 1),
                              ("rate_limited", 0), ("send_failed", 0)):  # fmt: skip
            assert (
                value(
                    samples, "soupbintcp_moldudp64_requests_refused_total", session=s, reason=reason
                )
                == count
            )
        assert value(samples, "soupbintcp_moldudp64_messages_sent_total", session=s) == 100
        assert value(samples, "soupbintcp_moldudp64_next_sequence", session=s) == 101
        assert value(samples, "soupbintcp_moldudp64_packets_sent_total", session=s) == (
            feed.tx.packets_sent
        )
        sock.close()
    finally:
        await feed.close()
