"""MoldUDP64 throughput over loopback multicast, with the SoupBinTCP client of the same run as
the reference.

- transmitter: a store's messages (ITCH-sized) packed and sent to a group, msg/s;
- listener: `receive_msg()`, `async for` and `receive_batch()`, fed by a sender in another
  process that sends pre-encoded datagrams in rounds the socket buffer holds (it waits for
  the listener to finish each round: the listener is measured, not the kernel's drops);
- A/B: the same `receive_batch()` listener joined to two groups, every datagram sent to
  both (the lines of a redundant pair): twice the datagrams for the same messages;
- gap fill: a live feed paced at `--rate` msg/s from another process (transmitter and
  re-request server), 5 % of its datagrams dropped at random, to a listener that must
  deliver every message in order; the figure is messages / (first sent to last delivered),
  so at most the live rate; "unpaced": the same with the whole stream sent at once.
- flood: the transmitter with its re-request server on the same event loop, alone, while
  another process floods the server with requests from 32 source addresses, and (the
  control) while the same process floods a socket nobody reads;
- reference: the SoupBinTCP client's `receive_msg()` over TCP from bench/feed_server.py.

Figures are medians of the runs, ratios medians of per-run ratios.

    python bench/bench_mold.py [-n 1000000] [--runs 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import socket
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from bench_client import via_receive_msg
from benchlib import itch_payloads, run_on, write_json
from feed_server import FeedServer
from soupbintcp._wire._moldudp64 import end_of_session, pack_downstream, session_field
from soupbintcp.moldudp64 import listen_async, serve_requests, transmit
from soupbintcp.moldudp64._sockets import sender_socket
from soupbintcp.store import MemoryStore

Address = tuple[str, int]
LOOP = "127.0.0.1"
SESSION = "BENCH"
FIELD = session_field(SESSION)
ROUND = 1500  # datagrams per round: well inside the listener's receive buffer
# Gap fill is paced at --rate (500k msg/s by default), so it cannot measure above it: its
# target is met when every message arrives in order at (nearly) the live rate.
TARGETS = {"transmitter": 2_000_000, "receive_msg()": 1_000_000, "gap fill": 475_000}


def random_group() -> Address:
    rng = random.SystemRandom()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOP, 0))
        port = sock.getsockname()[1]
    return f"239.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}", port


def _datagrams(n: int) -> list[bytes]:
    payloads = itch_payloads(n)
    out = []
    i = 0
    while i < n:
        datagram, k = pack_downstream(FIELD, i + 1, payloads, i)
        out.append(datagram)
        i += k
    return out


def _sender(n: int, groups: list[Address], pipe: Connection) -> None:
    """Send the stream in rounds (each datagram to every group: A/B lines); wait for the
    listener's word after each."""
    datagrams = _datagrams(n)
    sock = sender_socket(LOOP, 0, True)
    sock.setblocking(True)
    pipe.send("ready")
    while pipe.recv() == "go":
        for start in range(0, len(datagrams), ROUND):
            for datagram in datagrams[start : start + ROUND]:
                for group in groups:
                    sock.sendto(datagram, group)
            pipe.recv()  # the listener has read this round
        for group in groups:
            sock.sendto(end_of_session(FIELD, n + 1), group)


async def _listen_rounds(groups: list[Address], pipe: Connection, n: int, path: str) -> float:
    marks = _round_marks(n)
    listener = await listen_async(
        groups if len(groups) > 1 else groups[0], None, sequence=1, interface=LOOP,
        max_queue=10**7,
    )  # fmt: skip
    pipe.send("go")
    count = 0
    started = time.perf_counter()
    if path == "receive_batch()":
        while count < n:
            for run in await listener.receive_batch():
                count += len(run.messages)
            while marks and count >= marks[0]:
                marks.pop(0)
                pipe.send("next")
    elif path == "async for":
        left = iter(marks)
        mark = next(left)
        async for _msg in listener:
            count += 1
            if count == mark:
                pipe.send("next")
                mark = next(left, 0)
                if not mark:
                    break
    else:
        receive = listener.receive_msg
        for mark in marks:  # per message only the loop step, as in the client's benchmark
            for _ in range(mark - count):
                await receive()
            count = mark
            pipe.send("next")
    elapsed = time.perf_counter() - started
    drops = listener.stats["kernel_drops"]
    await listener.close()
    if drops:
        raise RuntimeError(f"the kernel dropped {drops} datagrams: the figure would be unfair")
    return n / elapsed


def _round_marks(n: int) -> list[int]:
    """The message counts at which each round of datagrams has been read."""
    i = 0
    payloads = itch_payloads(n)
    marks = []
    datagrams = 0
    while i < n:
        _, k = pack_downstream(FIELD, i + 1, payloads, i)
        i += k
        datagrams += 1
        if datagrams % ROUND == 0 or i == n:
            marks.append(i)
    return marks


def listener_rate(n: int, path: str, lines: int = 1) -> float:
    groups = [random_group() for _ in range(lines)]
    ours, theirs = mp.Pipe()
    proc = mp.Process(target=_sender, args=(n, groups, theirs), daemon=True)
    proc.start()
    try:
        assert ours.recv() == "ready"
        return run_on("asyncio", lambda: _listen_rounds(groups, ours, n, path))
    finally:
        ours.send("stop")
        proc.join(5)
        proc.kill()


async def _transmit(n: int) -> float:
    store = MemoryStore(session_id=SESSION)
    store.append_many(itch_payloads(n))
    started = time.perf_counter()
    tx = await transmit(store, random_group(), interface=LOOP, ttl=0, first=1, burst=1024)
    while tx.next_sequence <= n:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    await tx.close()
    return n / elapsed


def _flooder(target: Address, sources: int, stop: Any) -> None:
    """Requests for the biggest answer, from `sources` addresses, as fast as they go."""
    socks = []
    for i in range(sources):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((f"127.0.0.{2 + i}", 0))
        sock.setblocking(False)
        socks.append(sock)
    request = FIELD + (1).to_bytes(8, "big") + b"\xff\xff"
    while not stop.is_set():
        for sock in socks:
            for _ in range(50):
                try:
                    sock.sendto(request, target)
                except BlockingIOError:
                    break
            try:
                while sock.recv(65536):
                    pass
            except BlockingIOError:
                pass


async def _transmit_flooded(n: int, flood: str | None) -> tuple[float, int]:
    """The transmitter's rate with its re-request server on the same loop, and how many
    requests the server read. `flood`: None, "server" (the flood goes to the re-request
    server) or "sink" (the same flood to a socket nobody reads: what the flooding process
    and the kernel cost this machine by themselves, the control)."""
    store = MemoryStore(session_id=SESSION)
    store.append_many(itch_payloads(n))
    rq = await serve_requests(store, (LOOP, 0))
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((LOOP, 0))
    stop = mp.Event()
    proc = None
    if flood:
        target = rq.address if flood == "server" else sink.getsockname()
        proc = mp.Process(target=_flooder, args=(target, 32, stop), daemon=True)
        proc.start()
        await asyncio.sleep(0.5)  # the flood is on
    started = time.perf_counter()
    tx = await transmit(store, random_group(), interface=LOOP, ttl=0, first=1, burst=1024)
    while tx.next_sequence <= n:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    stop.set()
    if proc is not None:
        proc.join(5)
        proc.kill()
    await tx.close()
    await rq.close()
    sink.close()
    return n / elapsed, rq.requests


class _LossySocket:
    """The transmitter's socket, dropping a share of its datagrams (the network's loss)."""

    def __init__(self, sock: socket.socket, loss: float) -> None:
        self._sock = sock
        self._loss = loss
        self._rng = random.Random(7)
        self.lost = 0

    def sendto(self, data: bytes, dest: Address) -> int:
        if self._rng.random() < self._loss:
            self.lost += 1
            return len(data)
        return self._sock.sendto(data, dest)

    def getsockname(self) -> Any:
        return self._sock.getsockname()

    def close(self) -> None:
        self._sock.close()


def _live_feed(n: int, rate: float, loss: float, group: Address, pipe: Connection) -> None:
    async def main() -> None:
        store = MemoryStore(session_id=SESSION)
        payloads = itch_payloads(n)
        rq = await serve_requests(store, (LOOP, 0))
        tx = await transmit(store, group, interface=LOOP, ttl=0, first=1)
        tx._sock = _LossySocket(tx._sock, loss)  # type: ignore[assignment,arg-type]
        pipe.send(rq.address)
        assert pipe.recv() == "go"
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent = 0
        if rate <= 0:  # unpaced: the whole stream at once, as fast as it goes out
            store.append_many(payloads)
            sent = n
        while sent < n:
            due = min(n, int((loop.time() - started) * rate)) - sent
            if due > 0:
                store.append_many(payloads[sent : sent + due])
                sent += due
            await asyncio.sleep(0.001)
        await tx.end_session(linger=30)

    asyncio.run(main())


async def _gap_fill(n: int, group: Address, request: Address, pipe: Connection) -> dict[str, Any]:
    listener = await listen_async(group, request, interface=LOOP)
    pipe.send("go")
    started = time.perf_counter()
    count = 0
    while count < n:
        for run in await listener.receive_batch():
            assert run.first_sequence == count + 1
            count += len(run.messages)
    elapsed = time.perf_counter() - started
    stats = listener.stats
    await listener.close()
    return {"rate": n / elapsed, "gaps": stats["gaps"], "requests": stats["requests_sent"],
            "retries": stats["request_retries"], "kernel_drops": stats["kernel_drops"]}  # fmt: skip


def gap_fill(n: int, rate: float, loss: float) -> dict[str, Any]:
    group = random_group()
    ours, theirs = mp.Pipe()
    proc = mp.Process(target=_live_feed, args=(n, rate, loss, group, theirs), daemon=True)
    proc.start()
    try:
        request = ours.recv()
        return run_on("asyncio", lambda: _gap_fill(n, group, request, ours))
    finally:
        proc.kill()
        proc.join(5)


def client_rate(n: int) -> float:
    with FeedServer(n) as address:
        started = time.perf_counter()
        got = run_on("asyncio", lambda: via_receive_msg(address, n))
        elapsed = time.perf_counter() - started
    assert got == n
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500_000, help="gap-fill live rate")
    parser.add_argument("--loss", type=float, default=0.05)
    parser.add_argument("--json")
    args = parser.parse_args()
    n = args.n
    figures: dict[str, list[float]] = {}
    gaps: list[dict[str, Any]] = []
    floods: list[int] = []
    for run in range(args.runs):
        figures.setdefault("SoupBinTCP client receive_msg()", []).append(client_rate(n))
        figures.setdefault("transmitter", []).append(run_on("asyncio", lambda: _transmit(n)))
        for path in ("receive_msg()", "async for", "receive_batch()"):
            figures.setdefault(path, []).append(listener_rate(n, path))
        # A/B (issue 25): every datagram on two groups, one listener keeping the first copy.
        figures.setdefault("receive_batch(), A/B lines", []).append(
            listener_rate(n, "receive_batch()", lines=2)
        )
        quiet, _ = run_on("asyncio", lambda: _transmit_flooded(n, None))
        control, _ = run_on("asyncio", lambda: _transmit_flooded(n, "sink"))
        flooded, reads = run_on("asyncio", lambda: _transmit_flooded(n, "server"))
        figures.setdefault("transmitter + re-request server", []).append(quiet)
        figures.setdefault("the same, a flood to an unread socket", []).append(control)
        figures.setdefault("the same, the flood to the server", []).append(flooded)
        floods.append(reads)
        gaps.append(gap_fill(n, args.rate, args.loss))
        figures.setdefault("gap fill", []).append(gaps[-1]["rate"])
        gaps.append(gap_fill(n, 0, args.loss))
        figures.setdefault("gap fill, unpaced", []).append(gaps[-1]["rate"])
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in figures.items()))
    reference = figures["SoupBinTCP client receive_msg()"]
    results = {
        "n": n,
        "runs": args.runs,
        "rate": args.rate,
        "loss": args.loss,
        "figures": {k: statistics.median(v) for k, v in figures.items()},
        "ratios": {
            k: statistics.median(a / b for a, b in zip(v, reference, strict=True))
            for k, v in figures.items()
        },
        "gap_fill": gaps,
        "flood_requests_read": floods,
    }
    for k, v in results["figures"].items():
        print(f"{k:34} {v:>12,.0f} msg/s  {results['ratios'][k]:.2f}x the SoupBinTCP client")
    write_json(args.json, results)


def section(res: dict[str, Any]) -> list[str]:
    """The report's MoldUDP64 section (bench/run.py)."""
    rows = []
    for name, value in res["figures"].items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("met" if value >= target else "missed")
        rows.append(
            f"| {name} | {value:,.0f} | {res['ratios'][name]:.2f}x | "
            f"{'' if target is None else f'{target:,}'} {verdict} |"
        )
    return [
        "## MoldUDP64",
        "",
        f"{res['n']:,} ITCH-sized messages over loopback multicast; gap fill at"
        f" {res['rate']:,.0f} msg/s live with {res['loss']:.0%} loss. Ratios: to the SoupBinTCP"
        " client's receive_msg() in the same run.",
        "",
        "| path | msg/s | vs client | target |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


if __name__ == "__main__":
    main()
