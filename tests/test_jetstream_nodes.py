"""Which NATS node a connection moved off a silent node tries next (issue 26, point 5).

Seen under load in `test_jetstream_partition`: the writer left the cut-off node n1 for n2,
n2 was still electing the stream's new leader, so the writer left n2 after the bound and
went straight back to n1, the one node sure not to answer; the feed stalled for most of
the partition. A node left lately is not chosen again while another one is fresh.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

pytest.importorskip("nats")

from soupbintcp.jetstream._nats import _AVOID_FOR, _Nodes


@dataclass(frozen=True)
class Uri:
    netloc: str


@dataclass(frozen=True)
class Server:
    uri: Uri


N1, N2, N3 = (Server(Uri(f"10.0.0.{i}:4222")) for i in (1, 2, 3))
POOL = [N1, N2, N3]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_node_left_lately_is_not_chosen_while_another_is_fresh() -> None:
    clock = Clock()
    nodes = _Nodes(0.5, clock)
    nodes.leave(N1.uri.netloc)  # cut off: we move away
    first, wait = nodes.choose(POOL, {})
    assert first in (N2, N3)
    assert wait == 0.0
    nodes.connected()
    clock.now += 4.3  # the majority still elects its leader: we move on again
    nodes.leave(first.uri.netloc)
    second, _ = nodes.choose(POOL, {})
    assert second not in (N1, first)  # never back to the cut-off node
    # Retries while the one fresh node does not take the connection stay on it.
    assert {nodes.choose(POOL, {})[0] for _ in range(5)} == {second}


def test_every_node_left_lately_rounds_them_all_oldest_first() -> None:
    clock = Clock()
    nodes = _Nodes(0.5, clock)
    for server in (N2, N3, N1):
        nodes.leave(server.uri.netloc)
        clock.now += 1.0
    chosen = [nodes.choose(POOL, {})[0] for _ in range(6)]
    assert chosen == [N2, N3, N1, N2, N3, N1]
    assert [nodes.choose(POOL, {})[1]] == [0.5]  # later tries are paced


def test_a_node_left_long_ago_is_fresh_again() -> None:
    clock = Clock()
    nodes = _Nodes(0.5, clock)
    nodes.leave(N1.uri.netloc)
    clock.now += _AVOID_FOR
    assert {nodes.choose(POOL, {})[0] for _ in range(6)} == set(POOL)
