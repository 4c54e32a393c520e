"""Server benchmark: our server in this process, raw readers in other processes.

Each reader logs in with a hand-built Login Request and then only counts bytes into one
reused buffer (`recv_into`), so the figures are the server's, not a client's. Messages are
ITCH-sized (11 to 50 bytes, about 30 on average). Scenarios, each on stock asyncio and on
uvloop (the server's loop):

- replay: a FileStore of 5,000,000 messages replayed from sequence 1 to one reader;
- live: `publish_many` in batches of 1,000 (FileStore, durable at once) to one reader;
- fan-out: the same to 10 readers (10 processes) and to 100 (10 processes of 10 sockets),
  aggregate msg/s; 2 cores are shared by the server and all the readers;
- fan-out with metrics: the 10-reader fan-out with a metrics endpoint serving the server
  and a scraper reading it every 100 ms (150 times more often than Prometheus's default),
  run by run alternately with the plain one, so that the two share the machine's state;
- checksums: a FileStore of 1,000,000 messages (format 2, with checksums) replayed from
  sequence 1 to one reader by a server on a fresh open (the store checks every block in a
  thread from the open on, and the replay checks whatever that has not reached yet), round
  by round alternately with the same journal opened with the checksums off (format 1's
  yardstick): the median of each, their ratio, and in how many runs the check ahead was
  done before the reader logged in;
- stalled: 1,000,000 messages published while one logged-in client never reads: the
  server's RSS and its queued bytes (transport buffers + frames awaiting fan-out).

    python bench/bench_server.py [--quick] [--loops asyncio uvloop] [--runs N] [--json PATH]
    python bench/bench_server.py --profile replay    # cProfile of the server during replay
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import multiprocessing as mp
import os
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection as Pipe
from typing import Any

from bench_store import without_checksums
from benchlib import LOOPS, itch_payloads, profile_text, run_on, write_json
from soupbintcp import Server, serve
from soupbintcp.store import FileStore

SESSION = "BENCH"
USER, PASSWORD = "bench", "bench"
LOGIN_ACCEPTED = 33  # bytes of the Login Accepted packet
BATCH = 1000
#: Reader processes at most; more clients share them (sockets per process).
MAX_READER_PROCESSES = 10


def wire_size(messages: list[bytes]) -> int:
    return sum(map(len, messages)) + 3 * len(messages)


def login_packet(sequence: int) -> bytes:
    """A 4.00 Login Request built by hand from the spec's layout."""
    payload = (
        USER.encode().ljust(6)
        + PASSWORD.encode().ljust(10)
        + b" " * 10
        + str(sequence).encode().rjust(20)
    )
    return (len(payload) + 1).to_bytes(2, "big") + b"L" + payload


# --- reader processes (no soupbintcp in them) --------------------------------------------------


def reader(address: tuple[str, int], sequence: int, expect: int, sockets: int, pipe: Pipe) -> None:
    """Log `sockets` connections in, count `expect` bytes on each; report per connection
    (login time, end time, bytes)."""
    socks = [socket.create_connection(address) for _ in range(sockets)]
    buf = memoryview(bytearray(1 << 20))
    selector = selectors.DefaultSelector()
    t_login: dict[socket.socket, float] = {}
    t_end: dict[socket.socket, float] = {}
    totals = dict.fromkeys(socks, 0)
    for sock in socks:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t_login[sock] = time.monotonic()
        sock.sendall(login_packet(sequence))
        selector.register(sock, selectors.EVENT_READ)
    reading = len(socks)
    while reading:
        events = selector.select(timeout=60)
        if not events:
            break  # the parent reports the shortfall
        for key, _ in events:
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            n = ready.recv_into(buf)
            totals[ready] += n
            if not n or totals[ready] >= expect:
                t_end[ready] = time.monotonic()
                selector.unregister(ready)
                reading -= 1
    now = time.monotonic()
    pipe.send([(t_login[s], t_end.get(s, now), totals[s]) for s in socks])
    for sock in socks:
        sock.close()


def stalled_reader(address: tuple[str, int], pipe: Pipe) -> None:
    """Log in and never read again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(address)
    sock.sendall(login_packet(0))
    pipe.send("in")
    pipe.recv()  # until told to go
    sock.close()


class Readers:
    """`clients` reader connections spread over at most MAX_READER_PROCESSES processes."""

    def __init__(self, ctx: Any, target: Callable[..., None], *args: Any, clients: int = 1) -> None:
        self.pipes: list[Pipe] = []
        self.procs: list[Any] = []
        procs = min(clients, MAX_READER_PROCESSES)
        for i in range(procs):
            sockets = clients // procs + (i < clients % procs)
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=target, args=(*args, sockets, theirs), daemon=True)
            proc.start()
            self.pipes.append(ours)
            self.procs.append(proc)

    async def results(self, timeout: float = 120.0) -> list[Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        out = []
        try:
            for pipe in self.pipes:
                while not pipe.poll():
                    if loop.time() > deadline:
                        raise TimeoutError("reader did not finish")
                    await asyncio.sleep(0.005)
                out.extend(pipe.recv())
        finally:
            self.stop()
        return out

    def stop(self) -> None:
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


async def logged_in(server: Server, n: int, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while sum(c.logged_in for c in server.connections) < n:
        if loop.time() > deadline:
            raise TimeoutError("readers did not log in")
        await asyncio.sleep(0.005)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --- scenarios ---------------------------------------------------------------------------------


def server_options() -> dict[str, Any]:
    # No heartbeats: the readers count bytes and should count only what they asked for.
    return {
        "credentials": {USER: PASSWORD},
        "session_id": SESSION,
        "heartbeat_interval": 3600.0,
        "client_heartbeat_timeout": 3600.0,
    }


def build_journal(path: str, n: int) -> int:
    """A FileStore of `n` ITCH-sized messages; returns the bytes of their frames."""
    total_bytes = 0
    with FileStore(path, session_id=SESSION) as store:
        for start in range(0, n, 100_000):
            batch = itch_payloads(min(100_000, n - start), seed=start)
            store.append_many(batch)
            total_bytes += wire_size(batch)
    return total_bytes


async def replay(
    ctx: Any, path: str, total_bytes: int, n: int, runs: int, profile: cProfile.Profile | None
) -> list[float]:
    rates = []
    with FileStore(path) as store:
        async with serve(("127.0.0.1", 0), store=store, **server_options()) as server:
            for _ in range(runs):
                readers = Readers(ctx, reader, server.address, 1, LOGIN_ACCEPTED + total_bytes)
                if profile is not None:
                    profile.enable()
                try:
                    ((t_login, t_end, got),) = await readers.results()
                finally:
                    if profile is not None:
                        profile.disable()
                assert got == LOGIN_ACCEPTED + total_bytes, got
                rates.append(n / (t_end - t_login))
    return rates


async def replay_checksums(
    ctx: Any, path: str, total_bytes: int, n: int, runs: int
) -> dict[str, list[float]]:
    """Replay end to end from a fresh open, checksums on and off alternately, run by run."""
    out: dict[str, list[float]] = {"replay_format1": [], "replay_checksums": [], "ahead": []}
    for _ in range(runs):
        for key, checked in (("replay_format1", False), ("replay_checksums", True)):
            store = FileStore(path) if checked else without_checksums(FileStore(path))
            with store:
                async with serve(("127.0.0.1", 0), store=store, **server_options()) as server:
                    readers = Readers(ctx, reader, server.address, 1, LOGIN_ACCEPTED + total_bytes)
                    ((t_login, t_end, got),) = await readers.results()
                ahead = getattr(store, "_ahead", None) if checked else None
            assert got == LOGIN_ACCEPTED + total_bytes, got
            out[key].append(n / (t_end - t_login))
            if ahead is not None:  # time.monotonic() is the machine's: the reader's too
                out["ahead"].append(float(ahead.finished is not None and ahead.finished < t_login))
    return out


@asynccontextmanager
async def scraped(server: Server, interval: float = 0.1) -> AsyncIterator[list[int]]:
    """A metrics endpoint for `server`, scraped every `interval` from a thread while inside;
    the list counts the scrapes."""
    from soupbintcp.metrics import serve_metrics

    scrapes: list[int] = [0]
    stop = threading.Event()
    with serve_metrics(("127.0.0.1", 0), server) as endpoint:

        def scrape() -> None:
            while True:
                with urllib.request.urlopen(endpoint.url, timeout=10) as response:  # noqa: S310
                    response.read()
                scrapes[0] += 1
                if stop.wait(interval):
                    return

        thread = threading.Thread(target=scrape, daemon=True)
        thread.start()
        try:
            yield scrapes
        finally:
            stop.set()
            # Not on the loop: a scrape under way waits for the loop to take its snapshot.
            await asyncio.to_thread(thread.join, 10)


async def live_once(
    ctx: Any, path: str, per_run: list[list[bytes]], clients: int, metrics: bool
) -> float:
    expect = LOGIN_ACCEPTED + sum(wire_size(b) for b in per_run)
    with FileStore(path) as store:
        async with serve(("127.0.0.1", 0), store=store, **server_options()) as server:
            readers = Readers(ctx, reader, server.address, 0, expect, clients=clients)
            try:
                await logged_in(server, clients)
                async with contextlib.AsyncExitStack() as stack:
                    scrapes = await stack.enter_async_context(scraped(server)) if metrics else None
                    t0 = time.monotonic()
                    for batch in per_run:
                        server.publish_many(batch)
                        await asyncio.sleep(0)
                    results = await readers.results()
                    t_end: float = max(r[1] for r in results)
                    assert scrapes is None or scrapes[0] > 0, "no scrape during the run"
            finally:
                readers.stop()
            assert all(r[2] == expect for r in results), [r[2] for r in results]
    os.unlink(path)
    return clients * len(per_run) * BATCH / (t_end - t0)


def live_batches(n: int) -> list[list[bytes]]:
    pool = itch_payloads(100_000, seed=99)
    batches = [pool[i : i + BATCH] for i in range(0, len(pool), BATCH)]
    return [batches[i % len(batches)] for i in range(n // BATCH)]


async def live(ctx: Any, directory: str, n: int, runs: int, clients: int) -> list[float]:
    per_run = live_batches(n)
    return [
        await live_once(ctx, os.path.join(directory, f"live{clients}-{run}.soup"), per_run,
                        clients, False)
        for run in range(runs)
    ]  # fmt: skip


async def metrics_on_off(ctx: Any, directory: str, n: int, runs: int) -> dict[str, list[float]]:
    """The 10-client fan-out without and with metrics, alternately, run by run."""
    per_run = live_batches(n)
    out: dict[str, list[float]] = {"fanout10_off": [], "fanout10_metrics": []}
    for run in range(runs):
        for key, metrics in (("fanout10_off", False), ("fanout10_metrics", True)):
            path = os.path.join(directory, f"{key}-{run}.soup")
            out[key].append(await live_once(ctx, path, per_run, 10, metrics))
    return out


async def stalled(ctx: Any, directory: str, n: int) -> dict[str, float]:
    pool = itch_payloads(100_000, seed=7)
    batches = [pool[i : i + BATCH] for i in range(0, len(pool), BATCH)]
    with FileStore(os.path.join(directory, "stalled.soup")) as store:
        async with serve(("127.0.0.1", 0), store=store, **server_options()) as server:
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=stalled_reader, args=(server.address, theirs), daemon=True)
            proc.start()
            try:
                await logged_in(server, 1)
                before = rss_bytes()
                peak_rss = before
                peak_queued = 0
                sent = 0
                for i in range(n // BATCH):
                    batch = batches[i % len(batches)]
                    server.publish_many(batch)
                    sent += wire_size(batch)
                    await asyncio.sleep(0)
                    if i % 10 == 0:
                        peak_rss = max(peak_rss, rss_bytes())
                        peak_queued = max(peak_queued, server.queued_bytes)
                after = rss_bytes()
                still_connected = sum(c.logged_in for c in server.connections)
                lag = server.connections[0].lag if server.connections else -1
                ours.send("go")
            finally:
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)
    return {
        "published MB": sent / 1e6,
        "RSS before MB": before / 1e6,
        "RSS peak growth MB": (peak_rss - before) / 1e6,
        "RSS after growth MB": (after - before) / 1e6,
        "queued bytes peak KB": peak_queued / 1e3,
        "stalled client still connected": float(still_connected),
        "its lag (messages)": float(lag),
    }


SCENARIOS = {
    "replay": "replay from FileStore, 1 client",
    "live1": "live publish_many, 1 client",
    "fanout10": "live publish_many, 10 clients (aggregate)",
    "fanout100": "live publish_many, 100 clients (aggregate)",
    "fanout10_off": "live publish_many, 10 clients, metrics off (alternating)",
    "fanout10_metrics": "live publish_many, 10 clients, metrics on, scraped every 100 ms",
    "replay_format1": "replay from a fresh FileStore, checksums off (format 1), alternating",
    "replay_checksums": "replay from a fresh FileStore, checksums (checked ahead or in line)",
}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    scale = 0.2 if args.quick else 1.0
    runs = args.runs
    counts = {
        "replay": int(5_000_000 * scale),
        "live1": int(2_000_000 * scale),
        "fanout10": int(500_000 * scale),
        "fanout100": int(500_000 * scale),
        "stalled": int(1_000_000 * scale),
        "checksums": int(1_000_000 * scale),
    }
    only = set(args.scenarios)
    out: dict[str, Any] = {"counts": counts}
    with tempfile.TemporaryDirectory() as directory:
        t = time.monotonic()
        if "replay" in only:
            path = os.path.join(directory, "replay.soup")
            total_bytes = build_journal(path, counts["replay"])
            out["replay"] = await replay(ctx, path, total_bytes, counts["replay"], runs, None)
        for key, clients in (("live1", 1), ("fanout10", 10), ("fanout100", 100)):
            if key in only:
                out[key] = await live(ctx, directory, counts[key], runs, clients)
        if "metrics" in only:
            out.update(await metrics_on_off(ctx, directory, counts["fanout10"], runs))
        if "checksums" in only:
            path = os.path.join(directory, "checksums.soup")
            n = counts["checksums"]
            total_bytes = build_journal(path, n)
            # Nine pairs at least: single runs of 1M messages take 15 to 120 ms here.
            out.update(await replay_checksums(ctx, path, total_bytes, n, max(runs, 9)))
        if "stalled" in only:
            # Run it first in its process (--scenarios stalled): RSS growth is measured
            # against a baseline that earlier scenarios would have inflated.
            out["stalled"] = await stalled(ctx, directory, counts["stalled"])
        out["seconds"] = time.monotonic() - t
    return out


async def profile_replay(n: int) -> str:
    ctx = mp.get_context("spawn")
    profile = cProfile.Profile()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "replay.soup")
        total_bytes = build_journal(path, n)
        await replay(ctx, path, total_bytes, n, 1, profile)
    return profile_text(profile)


def pair_ratios(on: list[float], off: list[float]) -> tuple[float, float, float]:
    """The median, lowest and highest of on[i] / off[i]: runs i of the two ran one after the
    other, so each ratio is taken under about the same load (single runs vary by 2 to 7
    times on a shared machine)."""
    each = sorted(a / b for a, b in zip(on, off, strict=True))
    return statistics.median(each), each[0], each[-1]


def row(name: str, rates: list[float], target: str) -> str:
    med = statistics.median(rates)
    return (
        f"| {name} | {len(rates)} | {med / 1e6:.2f} M | {min(rates) / 1e6:.2f} M | "
        f"{max(rates) / 1e6:.2f} M | {target} |"
    )


def print_results(loop: str, res: dict[str, Any]) -> None:
    print(
        f"\nserver benchmark ({loop}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs,"
        f" {res['seconds']:.0f} s)\n"
    )
    print("| scenario | runs | median msg/s | min | max | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    targets = {"replay": ">= 5 M", "live1": ">= 1 M"}
    for key, name in SCENARIOS.items():
        if key in res:
            print(row(name, res[key], targets.get(key, "-")))
    if "fanout10_metrics" in res:
        ratio = statistics.median(res["fanout10_metrics"]) / statistics.median(res["fanout10_off"])
        print(f"\nmetrics on / off (10-client fan-out, same run, alternating): {ratio:.3f}")
    if "replay_checksums" in res:
        mid, low, high = pair_ratios(res["replay_checksums"], res["replay_format1"])
        print(
            "\njournal checksums, replay end to end (1 client from sequence 1, fresh open,"
            f" same run, alternating): checksums / format 1 = {mid:.3f} (median of"
            f" {len(res['replay_checksums'])} pairs of adjacent runs; {low:.3f} to {high:.3f})"
        )
        if res.get("ahead"):
            print(
                f"the check ahead was done before the client logged in in"
                f" {sum(res['ahead']):.0f} of {len(res['ahead'])} runs"
            )
    if "stalled" in res:
        print("\none stalled client while publishing:\n")
        print("| figure | value |")
        print("| --- | --- |")
        for key, value in res["stalled"].items():
            print(f"| {key} | {value:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a fifth of the messages")
    parser.add_argument("--loops", nargs="+", default=list(LOOPS), choices=LOOPS)
    parser.add_argument("--runs", type=int, default=3)
    # metrics: fanout10_off and fanout10_metrics; checksums: replay_format1 and _checksums
    extra = ["metrics", "checksums", "stalled"]
    plain = [key for key in SCENARIOS if not key.startswith(("fanout10_", "replay_"))]
    parser.add_argument(
        "--scenarios", nargs="+", default=[*plain, *extra], choices=[*plain, *extra]
    )
    parser.add_argument("--profile", choices=("replay",), help="only profile one replay")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    if args.profile:
        text = run_on(args.loops[0], lambda: profile_replay(5_000_000))
        print(text)
        write_json(args.json, {"profile": text, "loop": args.loops[0]})
        return
    results = {}
    for loop in args.loops:
        results[loop] = run_on(loop, lambda: measure(args))
        print_results(loop, results[loop])
    write_json(args.json, {"loops": results, "runs": args.runs})


if __name__ == "__main__":
    main()
