"""A feed on a replicated log (NATS JetStream) against the same feed on one `FileStore`.

- throughput: ITCH-sized messages from a writer process through the log to a gateway process
  and on to a client process (writer -> log -> gateway -> client), with one log node and with
  three (streams at three replicas); the reference is a writer process serving the same
  messages from a `FileStore` journal to a client process. msg/s = messages / (first
  published to last received), on the machine-wide monotonic clock.
- latency: at a fixed rate, each message carries the time it was published; the client
  records now - then (p50 / p99 / p99.9, HdrHistogram), log (three nodes) vs `FileStore`.
- failover gap: a client on two gateways of a three-node log at a fixed rate; SIGKILL the
  gateway it is on (then start it again on its cache), ten times: from the kill to the
  client's next message, median and max, and every message checked once and in order.

    python bench/bench_jetstream.py [-n 1000000] [--rate 50000] [--kills 10] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchlib import itch_payloads, run_on, write_json

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.jetstream_support import NatsCluster, free_port  # noqa: E402

import soupbintcp  # noqa: E402
from soupbintcp.jetstream import open_gateway  # noqa: E402

AUTH: dict[str, Any] = {"credentials": {"user": "secret"}}
LISTEN = ("127.0.0.1", 0)
STAMP = struct.Struct(">cq")  # b"T", monotonic nanoseconds; then padding to ITCH size
#: Targets on this 2-core machine (issue 11).
TARGETS = {"log, 1 node": 1_000_000, "log, 3 nodes (R3)": 300_000}
GAP_TARGET = 2.0


# --- processes ---------------------------------------------------------------------------------


async def _recv(pipe: Connection) -> Any:
    """`pipe.recv()` without stopping the event loop (the server must go on serving)."""
    return await asyncio.get_running_loop().run_in_executor(None, pipe.recv)


def _client(address: tuple[str, int], n: int, pipe: Connection, stamped: bool) -> None:
    async def main() -> None:
        client = await soupbintcp.connect_async(address, "user", "secret", sequence=1)
        pipe.send("ready")
        got = 0
        lat: list[int] = []
        while got < n:
            for item in await client.receive_batch():
                if isinstance(item, soupbintcp.lowlevel.SequencedMessages):
                    if stamped:
                        now = time.monotonic_ns()
                        lat.extend(now - STAMP.unpack_from(m)[1] for m in item.messages)
                    got += len(item.messages)
        pipe.send((time.monotonic(), lat))
        await client.close()

    run_on("uvloop", main)


def _log_writer(url: str, n: int, rate: float | None, pipe: Connection, cache: str) -> None:
    async def main() -> None:
        gateway = await open_gateway(url, LISTEN, cache=cache, writer=True, **AUTH)
        pipe.send("ready")
        await _recv(pipe)  # go
        started = time.monotonic()
        await _publish(gateway, n, rate, lambda: gateway.writer.backlog if gateway.writer else 0)
        await gateway.flush(120)
        pipe.send(started)
        await _recv(pipe)  # done
        await gateway.close()

    run_on("uvloop", main)


def _log_gateway(url: str, pipe: Connection, cache: str) -> None:
    async def main() -> None:
        gateway = await open_gateway(url, LISTEN, cache=cache, **AUTH)
        pipe.send(gateway.address)
        await _recv(pipe)
        await gateway.close()

    run_on("uvloop", main)


def _file_writer(n: int, rate: float | None, pipe: Connection, path: str) -> None:
    async def main() -> None:
        store = soupbintcp.FileStore(path, session_id="BENCH")
        server = await soupbintcp.serve(LISTEN, store=store, **AUTH)
        pipe.send(server.address)
        await _recv(pipe)  # go
        started = time.monotonic()
        await _publish(server, n, rate, lambda: 0)
        pipe.send(started)
        await _recv(pipe)  # done
        await server.close()
        store.close()

    run_on("uvloop", main)


async def _publish(target: Any, n: int, rate: float | None, backlog: Any) -> None:
    """`n` messages: as fast as the target takes them (at most 200,000 ahead of the log), or
    at `rate` per second in 1 ms steps, each stamped with the time it is published."""
    payloads = itch_payloads(min(n, 100_000))
    sent = 0
    loop = asyncio.get_running_loop()
    started = loop.time()
    while sent < n:
        if rate is None:
            if backlog() > 200_000:
                await asyncio.sleep(0.001)
                continue
            take = min(10_000, n - sent)
            chunk = [payloads[(sent + i) % len(payloads)] for i in range(take)]
        else:
            take = min(int((loop.time() - started) * rate) - sent, n - sent)
            if take <= 0:
                await asyncio.sleep(0.001)
                continue
            stamp = STAMP.pack(b"T", time.monotonic_ns())
            chunk = [stamp + payloads[(sent + i) % len(payloads)][:20] for i in range(take)]
        target.publish_many(chunk)
        sent += take
        await asyncio.sleep(0)


def _run_pipeline(kind: str, nodes: int, n: int, rate: float | None, tmp: Path) -> dict[str, Any]:
    """One run: writer (and gateway) and client processes; the client's figures."""
    ctx = mp.get_context("fork")
    procs = []
    cluster = None
    try:
        if kind == "log":
            cluster = NatsCluster(nodes)
            cluster.start()
            url = f"{cluster.store_url}/BENCH{os.getpid()}{int(time.time() * 1000) % 100000}"
            wp, wc = ctx.Pipe()
            writer = ctx.Process(target=_log_writer, args=(url, n, rate, wc, str(tmp / "w.soup")))
            writer.start()
            procs.append(writer)
            assert wp.recv() == "ready"
            gp, gc = ctx.Pipe()
            gateway = ctx.Process(target=_log_gateway, args=(url, gc, str(tmp / "g.soup")))
            gateway.start()
            procs.append(gateway)
            address = gp.recv()
        else:
            wp, wc = ctx.Pipe()
            writer = ctx.Process(target=_file_writer, args=(n, rate, wc, str(tmp / "f.soup")))
            writer.start()
            procs.append(writer)
            address = wp.recv()
            gp = None
        cp, cc = ctx.Pipe()
        client = ctx.Process(target=_client, args=(address, n, cc, rate is not None))
        client.start()
        procs.append(client)
        assert cp.recv() == "ready"
        wp.send("go")
        started = wp.recv()
        ended, lat = cp.recv()
        wp.send("done")
        if gp is not None:
            gp.send("done")
        return {"msgs_per_s": n / (ended - started), "latency_ns": lat}
    finally:
        for proc in procs:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
        if cluster is not None:
            cluster.stop()
        for leftover in tmp.iterdir():
            leftover.unlink()


def _percentiles(values: list[int]) -> dict[str, float]:
    from hdrh.histogram import HdrHistogram

    hist = HdrHistogram(1, 60_000_000_000, 3)
    for v in values:
        hist.record_value(max(1, v))
    return {
        f"p{q}": hist.get_value_at_percentile(q) / 1e6  # ms
        for q in (50, 99, 99.9)
    }


# --- failover gap ------------------------------------------------------------------------------


def _spawn_gateway(url: str, port: int, cache: Path, log: Path, generate: float | None) -> Any:
    argv = [sys.executable, "-m", "soupbintcp", "serve", "--listen", f"127.0.0.1:{port}",
            "--store", url, "--cache", str(cache), "--user", "user"]  # fmt: skip
    if generate is not None:
        argv += ["--generate", str(generate)]
    env = dict(os.environ, SOUPBINTCP_PASSWORD="secret")  # noqa: S106 - a bench fixture
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=out, env=env)


def _wait_listening(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"no gateway on port {port}")


async def _failover(kills: int, rate: float, tmp: Path) -> dict[str, Any]:
    from soupbintcp.cli._synthetic import synthetic_message

    cluster = NatsCluster(3)
    cluster.start()
    url = f"{cluster.store_url}/GAPS"
    writer = _spawn_gateway(url, free_port(), tmp / "w.soup", tmp / "w.log", rate)
    ports = [free_port(), free_port()]
    gateways = [_spawn_gateway(url, p, tmp / f"g{i}.soup", tmp / f"g{i}.log", None)
                for i, p in enumerate(ports)]  # fmt: skip
    gaps: list[float] = []
    problems = 0
    try:
        for port in ports:
            _wait_listening(port)
        policy = soupbintcp.ReconnectPolicy(initial_delay=0.02, max_delay=0.25)
        client = await soupbintcp.connect_async(
            [f"127.0.0.1:{p}" for p in ports], "user", "secret", reconnect=policy
        )
        expected = 1

        async def receive(until: float | None = None) -> float:
            nonlocal expected, problems
            items = await asyncio.wait_for(client.receive_batch(), 30)
            at = time.monotonic()
            for item in items:
                if isinstance(item, soupbintcp.lowlevel.SequencedMessages):
                    if item.first_sequence != expected:
                        problems += 1
                    for payload in item.messages:
                        problems += payload != synthetic_message(expected)
                        expected += 1
            return at

        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            await receive()
        for _ in range(kills):
            index = ports.index(client.address[1])
            killed_at = time.monotonic()
            gateways[index].send_signal(signal.SIGKILL)
            gateways[index].wait()
            failovers = client.failovers
            while client.failovers == failovers:
                got_at = await receive()
            gaps.append(got_at - killed_at)
            gateways[index] = _spawn_gateway(
                url, ports[index], tmp / f"g{index}.soup", tmp / f"g{index}.log", None
            )
            _wait_listening(ports[index])
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline:
                await receive()
        await client.close()
    finally:
        for proc in [writer, *gateways]:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        cluster.stop()
    return {
        "gaps": gaps,
        "median": statistics.median(gaps),
        "max": max(gaps),
        "problems": problems,
        "messages": expected - 1,
    }


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=50_000.0, help="latency run, msg/s")
    parser.add_argument("--seconds", type=float, default=3.0, help="latency run length")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {}
    latency: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sbt-js-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for _ in range(args.runs):
            for name, kind, nodes in (
                ("FileStore", "file", 0),
                ("log, 1 node", "log", 1),
                ("log, 3 nodes (R3)", "log", 3),
            ):
                res = _run_pipeline(kind, nodes, args.n, None, tmp)
                figures.setdefault(name, []).append(res["msgs_per_s"])
                print(f"{name}: {res['msgs_per_s']:,.0f} msg/s", flush=True)
        count = int(args.rate * args.seconds)
        for name, kind, nodes in (("FileStore", "file", 0), ("log, 3 nodes (R3)", "log", 3)):
            res = _run_pipeline(kind, nodes, count, args.rate, tmp)
            latency[name] = _percentiles(res["latency_ns"])
            print(f"latency {name}: {latency[name]}", flush=True)
        gap = asyncio.run(_failover(args.kills, 20_000.0, tmp))
        print(f"failover gaps: {gap}", flush=True)
    throughput = {k: statistics.median(v) for k, v in figures.items()}
    result = {
        "n": args.n,
        "rate": args.rate,
        "throughput": throughput,
        "ratios": {k: v / throughput["FileStore"] for k, v in throughput.items()},
        "latency_ms": latency,
        "failover": gap,
    }
    if args.json:
        write_json(args.json, result)


def section(res: dict[str, Any]) -> list[str]:
    """The report's section on the log-backed feed (bench/run.py)."""
    rows = []
    for name, value in res["throughput"].items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("met" if value >= target else "missed")
        rows.append(
            f"| {name} | {value:,.0f} | {res['ratios'][name]:.2f}x | "
            f"{'' if target is None else f'{target:,}'} {verdict} |"
        )
    lat = [
        f"| {name} | {p['p50']:.2f} | {p['p99']:.2f} | {p['p99.9']:.2f} |"
        for name, p in res["latency_ms"].items()
    ]
    gap = res["failover"]
    verdict = "met" if gap["median"] < GAP_TARGET and gap["problems"] == 0 else "missed"
    return [
        "## Feed on a replicated log (NATS JetStream)",
        "",
        f"{res['n']:,} ITCH-sized messages writer -> log -> gateway -> client, each a process;"
        " ratios to the same workload served from one FileStore in the same run.",
        "",
        "| path | msg/s | vs FileStore | target |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Latency from publish to receipt at {res['rate']:,.0f} msg/s (ms):",
        "",
        "| store | p50 | p99 | p99.9 |",
        "|---|---|---|---|",
        *lat,
        "",
        f"Failover gap over {len(gap['gaps'])} SIGKILLs of the client's gateway: median"
        f" {gap['median']:.2f} s, max {gap['max']:.2f} s (target: median < {GAP_TARGET} s,"
        f" {verdict}); {gap['messages']:,} messages, {gap['problems']} lost, duplicated or"
        " out of order.",
        "",
    ]


if __name__ == "__main__":
    main()
