"""The venue end to end: OUCH orders per second over loopback from one pipelining client.

The venue runs in its own process (`soupbintcp venue`, journals in a temporary directory:
every response and its ITCH are journaled). One client keeps up to ``--window`` orders in
flight and counts the answers; half the orders cross the book, so executions and ITCH
follow. The yardstick measured in the same run is the transport alone: a SoupBinTCP server
with per-user FileStore streams answering each Unsequenced Data message with one 64-byte
Sequenced one (no OUCH, no engine, no ITCH). Also: ITCH messages published per order, and
how long the ``venue`` fixture (`start_venue`) takes to start.

    python bench/bench_venue.py [-n 50000] [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import write_json
from soupbintcp import connect_async, ouch

TARGET = 50_000  # orders/s
ECHO_SERVER = """
import asyncio, sys
from soupbintcp import serve, FileStore
directory = sys.argv[1]
async def main():
    def answer(connection, data):
        connection.publish(b"A" + data[:1] * 63)
    server = await serve(("127.0.0.1", 0), user_store=lambda u: FileStore(f"{directory}/{u}.soup",
                         session_id="ECHO"), session_id="ECHO", authenticate=lambda *a: True,
                         on_unsequenced=answer)
    print(f"listening on 127.0.0.1:{server.address[1]}", file=sys.stderr, flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(argv: list[str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stderr is not None
    while line := proc.stderr.readline():
        if m := re.search(r"on 127\.0\.0\.1:(\d+)", line):
            return proc, int(m[1])
    raise RuntimeError("the server did not start")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _orders(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        buy = i % 2 == 0
        # buys rest at 100.00..100.04, sells at 99.98..100.02: about half of them trade
        price = (1_000_000 + (i % 5) * 100) if buy else (999_800 + (i % 5) * 100)
        side = ouch.Side.BUY if buy else ouch.Side.SELL
        out.append(ouch.EnterOrder(i + 1, side, 100, "AAPL", price, cl_ord_id=f"b{i}").encode())
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _pipeline(
    port: int, payloads: list[bytes], window: int, answers_each: int, pid: int
) -> tuple[float, float]:
    """(orders per second of wall time, orders per CPU second of the server process): send
    with ``window`` in flight until every order is answered (its Accepted or Rejected;
    ``answers_each`` counts every message instead)."""
    client = await connect_async(("127.0.0.1", port), "bench", "pw", sequence=0)
    n = len(payloads)
    sent = answered = 0
    cpu = _cpu_seconds(pid)
    start = time.perf_counter()
    while answered < n:
        while sent < n and sent - answered < window:
            client.send_unseq_data(payloads[sent])
            sent += 1
        for item in await client.receive_batch():
            for data in getattr(item, "messages", ()):
                if answers_each or data[:1] in (b"A", b"J"):
                    answered += 1
    elapsed = time.perf_counter() - start
    cpu = _cpu_seconds(pid) - cpu
    await client.close()
    return n / elapsed, n / max(cpu, 1e-3)


def measure(n: int, runs: int, window: int) -> dict[str, Any]:
    venue_rates: list[float] = []
    echo_rates: list[float] = []
    venue_cpu: list[float] = []
    echo_cpu: list[float] = []
    itch_per_order: list[float] = []
    payloads = _orders(n)
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="sbt-bench-venue-") as tmp:
            itch = _free_port()
            proc, port = _start([
                sys.executable, "-m", "soupbintcp", "--loop", "asyncio", "venue",
                "--listen", "127.0.0.1:0", "--itch-listen", f"127.0.0.1:{itch}",
                "--symbols", "AAPL", "--no-auth", "--data", tmp,
            ])  # fmt: skip
            try:
                wall, cpu = asyncio.run(_pipeline(port, payloads, window, 0, proc.pid))
                venue_rates.append(wall)
                venue_cpu.append(cpu)
            finally:
                _stop(proc)
            from soupbintcp import FileStore

            with FileStore(f"{tmp}/itch.soup", readonly=True) as store:
                itch_per_order.append((store.count - 4) / n)  # less the start-of-day ones
        with tempfile.TemporaryDirectory(prefix="sbt-bench-echo-") as tmp:
            proc, port = _start([sys.executable, "-c", ECHO_SERVER, tmp])
            try:
                wall, cpu = asyncio.run(_pipeline(port, payloads, window, 1, proc.pid))
                echo_rates.append(wall)
                echo_cpu.append(cpu)
            finally:
                _stop(proc)
    from soupbintcp.testing import start_venue

    starts = []
    for _ in range(5):
        t = time.perf_counter()
        running = start_venue()
        starts.append(time.perf_counter() - t)
        running.close()
    return {
        "n": n,
        "runs": runs,
        "window": window,
        "venue": statistics.median(venue_rates),
        "echo": statistics.median(echo_rates),
        "ratio": statistics.median(v / e for v, e in zip(venue_rates, echo_rates, strict=True)),
        "venue_cpu": statistics.median(venue_cpu),
        "echo_cpu": statistics.median(echo_cpu),
        "itch_per_order": statistics.median(itch_per_order),
        "fixture_start_ms": statistics.median(starts) * 1000,
        "load": os.getloadavg()[0],
    }


def section(res: dict[str, Any]) -> list[str]:
    """The report's venue section (bench/run.py)."""
    met = "met" if res["venue"] >= TARGET else "missed"
    return [
        "## Venue (OUCH in, ITCH out)",
        "",
        f"{res['n']:,} Enter Orders from one client, {res['window']:,} in flight, median of"
        f" {res['runs']} runs; every answer and its ITCH journaled. Load average at the end:"
        f" {res['load']:.1f}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| venue orders/s, end to end | {res['venue']:,.0f} (≥ {TARGET:,} {met}) |",
        f"| venue orders per CPU second of the venue process | {res['venue_cpu']:,.0f} |",
        f"| transport alone (echo server, FileStore streams), msg/s | {res['echo']:,.0f} |",
        f"| transport alone, messages per CPU second of the server | {res['echo_cpu']:,.0f} |",
        f"| venue vs transport alone | {res['ratio']:.2f}x |",
        f"| ITCH messages published per order | {res['itch_per_order']:.2f} |",
        f"| `venue` fixture start (start_venue), ms | {res['fixture_start_ms']:.1f} |",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--json")
    args = parser.parse_args()
    res = measure(args.n, args.runs, args.window)
    print("\n".join(section(res)))
    write_json(args.json, res)


if __name__ == "__main__":
    main()
