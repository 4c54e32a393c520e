"""Server benchmark: our asyncio server in this process, raw readers in other processes.

Each reader logs in with a hand-built Login Request and then only counts bytes into one
reused buffer (`sock.recv_into`), so the figures are the server's, not a client's. Messages
are ITCH-sized (11 to 50 bytes, about 30 on average). Scenarios:

- replay: a FileStore of 5,000,000 messages replayed from sequence 1 to one reader;
- live: `publish_many` in batches of 1,000 (FileStore, durable at once) to one reader;
- fan-out: the same to 10 readers (aggregate msg/s; 2 cores are shared by 11 processes);
- stalled: 1,000,000 messages published while one logged-in client never reads: the
  server's RSS and its queued bytes (transport buffers + frames awaiting fan-out).

Usage: python bench/bench_server.py [--quick] [--uvloop] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection as Pipe
from typing import Any

from soupbintcp._server import Server, serve
from soupbintcp.store import FileStore

SESSION = "BENCH"
USER, PASSWORD = "bench", "bench"
LOGIN_ACCEPTED = 33  # bytes of the Login Accepted packet
BATCH = 1000


def itch_payloads(n: int, seed: int = 1) -> list[bytes]:
    """ITCH-sized messages: 11 to 50 bytes, about 30 on average."""
    rng = random.Random(seed)
    sizes = [rng.randint(11, 50) for _ in range(n)]
    blob = rng.randbytes(sum(sizes))
    out = []
    pos = 0
    for size in sizes:
        out.append(blob[pos : pos + size])
        pos += size
    return out


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


def reader(address: tuple[str, int], sequence: int, expect: int, pipe: Pipe) -> None:
    """Log in, count `expect` bytes, report (login time, first byte time, end time)."""
    sock = socket.create_connection(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = memoryview(bytearray(1 << 20))
    recv_into = sock.recv_into
    t_login = time.monotonic()
    sock.sendall(login_packet(sequence))
    total = 0
    t_first = 0.0
    while total < expect:
        n = recv_into(buf)
        if not n:
            break
        if total < LOGIN_ACCEPTED <= total + n:
            t_first = time.monotonic()
        total += n
    t_end = time.monotonic()
    pipe.send((t_login, t_first, t_end, total))
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
    def __init__(self, ctx: Any, target: Callable[..., None], *args: Any, count: int = 1) -> None:
        self.pipes: list[Pipe] = []
        self.procs = []
        for _ in range(count):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=target, args=(*args, theirs), daemon=True)
            proc.start()
            self.pipes.append(ours)
            self.procs.append(proc)

    async def results(self, timeout: float = 120.0) -> list[Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        out = []
        for pipe in self.pipes:
            while not pipe.poll():
                if loop.time() > deadline:
                    raise TimeoutError("reader did not finish")
                await asyncio.sleep(0.005)
            out.append(pipe.recv())
        for proc in self.procs:
            proc.join(5)
        return out


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


async def replay(ctx: Any, directory: str, n: int, runs: int) -> list[float]:
    path = os.path.join(directory, "replay.soup")
    total_bytes = 0
    with FileStore(path, session_id=SESSION) as store:
        for start in range(0, n, 100_000):
            batch = itch_payloads(min(100_000, n - start), seed=start)
            store.append_many(batch)
            total_bytes += wire_size(batch)
    rates = []
    with FileStore(path) as store:
        async with serve(("127.0.0.1", 0), store=store, **server_options()) as server:
            for _ in range(runs):
                readers = Readers(ctx, reader, server.address, 1, LOGIN_ACCEPTED + total_bytes)
                ((t_login, _, t_end, got),) = await readers.results()
                assert got == LOGIN_ACCEPTED + total_bytes, got
                rates.append(n / (t_end - t_login))
    return rates


async def live(ctx: Any, directory: str, n: int, runs: int, clients: int) -> list[float]:
    pool = itch_payloads(100_000, seed=99)
    batches = [pool[i : i + BATCH] for i in range(0, len(pool), BATCH)]
    per_run = [batches[i % len(batches)] for i in range(n // BATCH)]
    expect = LOGIN_ACCEPTED + sum(wire_size(b) for b in per_run)
    rates = []
    for run in range(runs):
        with FileStore(os.path.join(directory, f"live{clients}-{run}.soup")) as store:
            async with serve(("127.0.0.1", 0), store=store, **server_options()) as server:
                readers = Readers(ctx, reader, server.address, 0, expect, count=clients)
                await logged_in(server, clients)
                t0 = time.monotonic()
                for batch in per_run:
                    server.publish_many(batch)
                    await asyncio.sleep(0)
                results = await readers.results()
                assert all(r[3] == expect for r in results), [r[3] for r in results]
                t_end = max(r[2] for r in results)
                rates.append(clients * len(per_run) * BATCH / (t_end - t0))
    return rates


async def stalled(ctx: Any, directory: str, n: int) -> dict[str, float]:
    pool = itch_payloads(100_000, seed=7)
    batches = [pool[i : i + BATCH] for i in range(0, len(pool), BATCH)]
    with FileStore(os.path.join(directory, "stalled.soup")) as store:
        async with serve(("127.0.0.1", 0), store=store, **server_options()) as server:
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=stalled_reader, args=(server.address, theirs), daemon=True)
            proc.start()
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


def row(name: str, rates: list[float], target: str) -> str:
    med = statistics.median(rates)
    return (
        f"| {name} | {len(rates)} | {med / 1e6:.2f} M | {min(rates) / 1e6:.2f} M | "
        f"{max(rates) / 1e6:.2f} M | {target} |"
    )


async def main(args: argparse.Namespace) -> None:
    ctx = mp.get_context("spawn")
    scale = 0.2 if args.quick else 1.0
    runs = args.runs
    with tempfile.TemporaryDirectory() as directory:
        t = time.monotonic()
        replay_rates = await replay(ctx, directory, int(5_000_000 * scale), runs)
        live_rates = await live(ctx, directory, int(2_000_000 * scale), runs, 1)
        fan_rates = await live(ctx, directory, int(500_000 * scale), runs, 10)
        stall = await stalled(ctx, directory, int(1_000_000 * scale))
        elapsed = time.monotonic() - t
    loop_name = "uvloop" if args.uvloop else "asyncio"
    print(
        f"\nserver benchmark ({loop_name}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs,"
        f" {elapsed:.0f} s)\n"
    )
    print("| scenario | runs | median msg/s | min | max | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(row("replay from FileStore, 1 client", replay_rates, ">= 5 M"))
    print(row("live publish_many, 1 client", live_rates, ">= 1 M"))
    print(row("live publish_many, 10 clients (aggregate)", fan_rates, "-"))
    print("\none stalled client while publishing:\n")
    print("| figure | value |")
    print("| --- | --- |")
    for key, value in stall.items():
        print(f"| {key} | {value:.1f} |")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a fifth of the messages")
    parser.add_argument("--uvloop", action="store_true", help="run the server on uvloop")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    coro: Coroutine[Any, Any, None] = main(args)
    if args.uvloop:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)
    else:
        asyncio.run(coro)


if __name__ == "__main__":
    run()
