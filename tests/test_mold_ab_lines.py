"""A/B arbitration: one MoldUDP64 session on two redundant lines feeds one listener; the
first copy of each number wins, and only what both lines lost is re-requested.

The sans-IO `LineArbiter` with an injected clock, then the asyncio and blocking listeners
behind two relays that lose 5 % each, independently, beside a single-line listener on the
same relays (same losses) whose re-requests are the yardstick."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from soupbintcp._session import LineArbiter, MoldListener
from soupbintcp._wire._moldudp64 import decode_request, unpack_header
from soupbintcp.moldudp64 import listen, listen_async

from .mold_relay import Faults, MulticastRelay, UnicastRelay, _Faulty
from .mold_support import FIELD, itch_like, packets, random_group
from .test_cli import run as run_cli
from .test_mold_cli import Background, tail_args
from .test_mold_e2e import LOOP, collect, start_feed


def test_the_first_copy_wins_and_each_line_is_accounted() -> None:
    messages = itch_like(100)
    stream = packets(messages, max_payload=200)  # about 7 messages a packet
    assert len(stream) > 12
    line_a = [p for i, p in enumerate(stream) if i not in (3, 7)]  # A loses packets 3 and 7
    line_b = [p for i, p in enumerate(stream) if i not in (5, 7)]  # B loses 5 and 7
    size = {i: unpack_header(p)[2] for i, p in enumerate(stream)}
    arbiter = LineArbiter(MoldListener(request_delay=0.02), ["A", "B"])
    got: list[bytes] = []
    for i, (a, b) in enumerate(zip(line_a, line_b, strict=True)):  # B just behind A
        now = 0.001 * i
        for run in arbiter.receive_datagram(a, now, 0) + arbiter.receive_datagram(b, now, 1):
            got += run.messages
    listener = arbiter.listener
    # Nothing asked yet: only packet 7 (lost on both) is missing, and it is young.
    assert listener.take_requests() == []
    assert listener.missing == size[7]
    # Found when packet 8 came (the 7th of each line, at 0.006): asked 0.02 s later.
    timer = listener.next_timer()
    assert timer is not None
    assert abs(timer - 0.026) < 1e-5
    listener.handle_timer(timer)
    first7 = unpack_header(stream[7])[1]
    assert [decode_request(r) for r in listener.take_requests()] == [(FIELD, first7, size[7])]
    for run in arbiter.receive_datagram(stream[7], timer + 0.001, -1):  # the server's answer
        got += run.messages
    assert got == messages
    la, lb = arbiter.lines
    assert (la.missed, lb.missed) == (size[3] + size[7], size[5] + size[7])
    assert (la.covered, lb.covered) == (size[3], size[5])  # the other line's copy
    assert la.first + lb.first + size[7] == 100  # the answer delivered packet 7
    assert lb.first == size[3]
    assert la.duplicates + lb.duplicates == 100 - size[3] - size[5] - size[7]


def test_without_a_delay_a_gap_on_one_line_is_asked_for_at_once() -> None:
    stream = packets(itch_like(40), max_payload=200)
    arbiter = LineArbiter(MoldListener(), ["A", "B"])
    arbiter.receive_datagram(stream[0], 0.0, 0)
    arbiter.receive_datagram(stream[2], 0.0, 0)  # A skipped packet 1
    assert len(arbiter.listener.take_requests()) == 1  # single-line behaviour


class _Recording:
    """A relay's faults, noting which message numbers each lost datagram carried."""

    def __init__(self, inner: _Faulty) -> None:
        self.inner = inner
        self.lost: set[int] = set()

    def __call__(self, data: bytes, dest: tuple[str, int]) -> None:
        before = self.inner.lost
        self.inner(data, dest)
        if self.inner.lost != before:
            _, sequence, count = unpack_header(data)
            if count not in (0, 0xFFFF):
                self.lost.update(range(sequence, sequence + count))


class _Asked:
    """A re-request relay's requests, as the message numbers they asked for."""

    def __init__(self, inner: _Faulty) -> None:
        self.inner = inner
        self.numbers: set[int] = set()

    def __call__(self, data: bytes, client: tuple[str, int]) -> None:
        with contextlib.suppress(Exception):
            _, sequence, count = decode_request(data)
            self.numbers.update(range(sequence, sequence + count))
        self.inner(data, client)


def _numbers(runs: Iterator[list[int]]) -> list[int]:
    return [n for run in runs for n in run]


async def test_two_lines_at_5_percent_loss_re_request_only_what_both_lost() -> None:
    n = 30_000
    source, group_a, group_b = random_group(), random_group(), random_group()
    feed = await start_feed(source)
    relay_a = await MulticastRelay(source, group_a, Faults(loss=0.05, seed=251)).start()
    relay_b = await MulticastRelay(
        source, group_b, Faults(loss=0.05, delay=0.005, seed=252)
    ).start()
    lost_a, lost_b = _Recording(relay_a.faults), _Recording(relay_b.faults)
    relay_a.faults, relay_b.faults = lost_a, lost_b  # type: ignore[assignment]
    asks: list[UnicastRelay] = []
    asked: list[_Asked] = []
    for _ in range(3):
        relay = await UnicastRelay(feed.rq.address, Faults(seed=253)).start()
        asked.append(_Asked(relay.requests))
        relay.requests = asked[-1]  # type: ignore[assignment]
        asks.append(relay)
    both = await listen_async(
        [group_a, group_b], asks[0].address, interface=LOOP, request_delay=0.25
    )
    single = await listen_async(group_a, asks[1].address, interface=LOOP)
    blocking = await asyncio.to_thread(
        listen, [group_a, group_b], asks[2].address, interface=LOOP, request_delay=0.25
    )

    def read_blocking() -> list[int]:
        got: list[int] = []
        while len(got) < n:
            for run in blocking.receive_batch(timeout=30):
                for i, data in enumerate(run.messages):
                    assert int.from_bytes(data[:8], "big") == run.first_sequence + i
                got += range(run.first_sequence, run.next_sequence)
        return got

    try:
        messages = itch_like(n)
        reading = asyncio.gather(
            collect(both, n), collect(single, n), asyncio.to_thread(read_blocking)
        )
        for i in range(0, n, 2000):  # a live feed
            feed.store.append_many(messages[i : i + 2000])
            await asyncio.sleep(0.01)
        got_both, got_single, got_blocking = await asyncio.wait_for(reading, 120)
        assert got_both == got_single == got_blocking == list(range(1, n + 1))
    finally:
        await both.close()
        await single.close()
        await asyncio.to_thread(blocking.close)
        for relay in asks:
            await relay.close()
        await relay_a.close()
        await relay_b.close()
        await feed.close()
    a_only, both_lost = lost_a.lost, lost_a.lost & lost_b.lost
    asked_both, asked_single, asked_blocking = (r.numbers for r in asked)
    assert len(a_only) > 500  # 5 % of the packets, about 40 messages each
    # One line: everything it lost had to be asked for. Two: only what both lost.
    assert a_only <= asked_single
    assert asked_both <= both_lost
    assert asked_blocking <= both_lost
    assert len(asked_both) < len(asked_single) / 5
    line_a, line_b = both.lines
    assert line_a.missed == len(a_only)
    assert line_a.covered == len(a_only - lost_b.lost)
    assert line_b.covered == len(lost_b.lost - a_only)
    assert line_a.first + line_b.first + len(both_lost) == n
    assert [line.name for line in both.lines] == [f"{h}:{p}" for h, p in (group_a, group_b)]

    # The same account as metrics, per line.
    from soupbintcp.metrics import MoldUDP64Collector

    samples = {
        (s.name, s.labels.get("line")): s.value
        for m in MoldUDP64Collector(listener=both).collect()
        for s in m.samples
    }
    assert samples["soupbintcp_moldudp64_line_missed_total", line_a.name] == line_a.missed
    assert samples["soupbintcp_moldudp64_line_covered_total", line_b.name] == line_b.covered
    assert samples["soupbintcp_moldudp64_line_first_total", line_a.name] == line_a.first
    assert (
        samples["soupbintcp_moldudp64_listener_requests_total", None] == both.stats["requests_sent"]
    )


def test_mold_serve_and_tail_on_two_lines(tmp_path: Path) -> None:
    a, b = (f"{h}:{p}" for h, p in (random_group(), random_group()))
    args = ["mold", "serve", "--group", a, "--group", b, "--request-listen", f"{LOOP}:0"]
    args += ["--store", str(tmp_path / "ab.soup"), "--interface", LOOP, "--ttl", "0"]
    serve = Background([*args, "--end-linger", "0.3", "--generate", "20000"],
                       r"re-requests on (127\.0\.0\.1:\d+)")  # fmt: skip
    try:
        assert f"on {a} + {b};" in "".join(serve.lines)
        tail = run_cli(*tail_args(a, serve.match[1], "--group", b, "--count", "3000"))
    finally:
        serve.stop()
    assert tail.returncode == 0, tail.stderr
    assert [int(line.split("\t")[0]) for line in tail.stdout.splitlines()] == list(range(1, 3001))
    assert f"listening to {a} + {b} from sequence 1" in tail.stderr
    firsts = [int(m.replace(",", "")) for m in re.findall(r"line \S+: ([\d,]+) first", tail.stderr)]
    assert len(firsts) == 2
    assert sum(firsts) > 0  # live on the lines (what came before the tail was re-requested)
