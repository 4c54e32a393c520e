"""The order client's cost: round trip and pipelined orders/s through `OrderClient` against
the bare SoupBinTCP client in the same run, and what the durable UserRefNum costs.

The venue (`soupbintcp.venue.Venue`) runs in its own process. Each figure is a median over
`--runs` runs, the paths interleaved run by run, each on a fresh account:

- round trip (closed loop, one order in flight): Enter Order (IOC, not crossing) to its
  Order Accepted. *bare*: `connect_async` + `send_unseq_data(EnterOrder(...).encode())`,
  waiting for the Accepted in `receive_msg()`; *OrderClient*: `await client.enter(...)`
  without a state directory (the same work the bare client does plus the book), with a
  state directory without fsync (journals written to the kernel: survives kill -9), and
  with fsync (survives a power cut: one fdatasync per order, since one is in flight).
- pipelined: N orders entered at once, until every one is answered (Accepted, then the IOC's
  Canceled): orders/s. With state and fsync, the orders of one event-loop turn share one
  write and one fdatasync (group commit), so the fsync cost is spread over the batch.
- write-ahead cost: `StateDir.write_ahead` of batches of 1, 16 and 256 messages, with and
  without fsync: microseconds per message.

The round trip is also given as a ratio paired per run (each run's OrderClient over the same
run's bare client), and as the client process's CPU time per order (`time.process_time`:
what the order client adds, less blurred by other jobs on a shared machine than wall time).

`--before SRC` measures another source tree too (main's code, checked out elsewhere): each
run is a process per tree, the trees alternating run by run, the same measuring code (this
file) importing each tree's `soupbintcp`.

    python bench/bench_orders.py [--runs 5] [-n 2000] [--pipelined 20000] [--loop uvloop]
                                 [--before /tmp/main/src]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from benchlib import run_on, write_json
from soupbintcp import connect, connect_async, ouch
from soupbintcp.orders import BlockingOrderClient, OrderClient, StateDir
from soupbintcp.venue import Venue

PRICE = 10_000  # $1.00: far below anything resting, so an IOC buy never trades
PATHS = ("bare", "orders-memory", "orders-state", "orders-fsync")
#: CPU seconds per order of the last closed loop (`_bare` / `_orders` append).
CPU: list[float] = []
_N = [0]  # accounts of `_paired`, one pair per call


def _venue_process(pipe: Pipe) -> None:
    async def main() -> None:
        async with Venue(["AAPL"], heartbeat_interval=1.0) as venue:
            pipe.send(venue.address)
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    asyncio.run(main())


def _enter(num: int) -> bytes:
    return ouch.EnterOrder(
        num, ouch.Side.BUY, 100, "AAPL", PRICE, ouch.TimeInForce.IOC, cl_ord_id=f"B{num}"
    ).encode()


async def _bare(address: Any, account: str, n: int, pipelined: bool) -> list[float]:
    client = await connect_async(address, account, "x")
    await client.receive_msg()  # the day's System Event
    out: list[float] = []
    try:
        if pipelined:
            t = time.perf_counter()
            for num in range(1, n + 1):
                client.send_unseq_data(_enter(num))
            for _ in range(2 * n):  # Accepted and the IOC's Canceled for each
                await client.receive_msg()
            return [n / (time.perf_counter() - t)]
        cpu = time.process_time()
        for num in range(1, n + 1):
            t = time.perf_counter()
            client.send_unseq_data(_enter(num))
            while (await client.receive_msg()).data[:1] != b"A":
                pass
            out.append(time.perf_counter() - t)
        CPU.append((time.process_time() - cpu) / n)
    finally:
        await client.close()
    return out


async def _orders(
    address: Any, account: str, n: int, pipelined: bool, state: Path | None, fsync: bool
) -> list[float]:
    client = await OrderClient.connect(address, account, "x", state=state, fsync=fsync)
    out: list[float] = []
    try:
        if pipelined:
            t = time.perf_counter()
            for i in range(n):
                client.enter("AAPL", "B", 100, PRICE, time_in_force="3", cl_ord_id=f"B{i}")
            await client.drain()
            while client.core.received < 1 + 2 * n:  # the IOCs' Canceled come after
                await asyncio.sleep(0.001)
            return [n / (time.perf_counter() - t)]
        cpu = time.process_time()
        for i in range(n):
            t = time.perf_counter()
            await client.enter("AAPL", "B", 100, PRICE, time_in_force="3", cl_ord_id=f"B{i}")
            out.append(time.perf_counter() - t)
        CPU.append((time.process_time() - cpu) / n)
    finally:
        await client.close()
    return out


async def _paired(address: Any, blocks: int, per: int) -> dict[str, list[float]]:
    """Closed loops of the bare client and `OrderClient` (no state), both connected at once,
    alternating every `per` orders (which goes first alternates too): each block's ratio
    pairs the two paths within a fraction of a second, so a shared machine's changing load
    blurs it less than whole runs apart."""
    bare = await connect_async(address, f"pb{_N[0]}", "x")
    await bare.receive_msg()  # the day's System Event
    client = await OrderClient.connect(address, f"po{_N[0]}", "x")
    _N[0] += 1
    out: dict[str, list[float]] = {"ratio": [], "cpu_extra_us": [], "bare_us": [], "orders_us": []}
    num = 0
    try:
        for block in range(blocks):
            got: dict[str, tuple[float, float]] = {}
            for path in ("bare", "orders") if block % 2 == 0 else ("orders", "bare"):
                times: list[float] = []
                cpu = time.process_time()
                for _ in range(per):
                    num += 1
                    t = time.perf_counter()
                    if path == "bare":
                        bare.send_unseq_data(_enter(num))
                        while (await bare.receive_msg()).data[:1] != b"A":
                            pass
                    else:
                        await client.enter(
                            "AAPL", "B", 100, PRICE, time_in_force="3", cl_ord_id=f"P{num}"
                        )
                    times.append(time.perf_counter() - t)
                got[path] = (statistics.median(times), (time.process_time() - cpu) / per)
            out["ratio"].append(got["orders"][0] / got["bare"][0])
            out["cpu_extra_us"].append((got["orders"][1] - got["bare"][1]) * 1e6)
            out["bare_us"].append(got["bare"][0] * 1e6)
            out["orders_us"].append(got["orders"][0] * 1e6)
    finally:
        await bare.close()
        await client.close()
    return out


def _paired_blocking(address: Any, blocks: int, per: int) -> dict[str, list[float]]:
    """`_paired` for the blocking twins: `soupbintcp.connect` and `BlockingOrderClient`
    (`enter(...).wait()`), the same alternating blocks."""
    bare = connect(address, "bb", "x")
    bare.receive_msg(5.0)  # the day's System Event
    client = BlockingOrderClient.connect(address, "bo", "x")
    out: dict[str, list[float]] = {"ratio": [], "cpu_extra_us": [], "bare_us": [], "orders_us": []}
    num = 0
    try:
        for block in range(blocks):
            got: dict[str, tuple[float, float]] = {}
            for path in ("bare", "orders") if block % 2 == 0 else ("orders", "bare"):
                times: list[float] = []
                cpu = time.process_time()
                for _ in range(per):
                    num += 1
                    t = time.perf_counter()
                    if path == "bare":
                        bare.send_unseq_data(_enter(num))
                        while bare.receive_msg(5.0).data[:1] != b"A":
                            pass
                    else:
                        client.enter(
                            "AAPL", "B", 100, PRICE, time_in_force="3", cl_ord_id=f"Q{num}"
                        ).wait(5.0)
                    times.append(time.perf_counter() - t)
                got[path] = (statistics.median(times), (time.process_time() - cpu) / per)
            out["ratio"].append(got["orders"][0] / got["bare"][0])
            out["cpu_extra_us"].append((got["orders"][1] - got["bare"][1]) * 1e6)
            out["bare_us"].append(got["bare"][0] * 1e6)
            out["orders_us"].append(got["orders"][0] * 1e6)
    finally:
        bare.close()
        client.close()
    return out


async def _paired_only(address: Any, blocks: int, per: int) -> dict[str, Any]:
    """Only the paired blocks (`--paired-only`): what the round-trip target is judged on."""
    await _bare(address, "w0", 500, False)  # warm up, as `_measure`
    await _orders(address, "w1", 500, False, None, False)
    got = await _paired(address, blocks, per)
    return {
        "paired_blocks": got,
        "paired_ratio": statistics.median(got["ratio"]),
        "paired_cpu_extra_us": statistics.median(got["cpu_extra_us"]),
    }


async def _measure(address: Any, runs: int, n: int, m: int, tmp: Path) -> dict[str, Any]:
    rtt: dict[str, list[float]] = {p: [] for p in PATHS}
    cpu: dict[str, list[float]] = {p: [] for p in PATHS}
    rate: dict[str, list[float]] = {p: [] for p in PATHS}
    # Warm up (venue, client, both sides' code paths) before anything counts: otherwise the
    # first path measured, the bare client, pays for it (a run per process: every time).
    await _bare(address, "w0", 500, False)
    await _orders(address, "w1", 500, False, None, False)
    k = 0
    for run in range(runs):
        for path in PATHS:
            for pipelined, sink, count in ((False, rtt, n), (True, rate, m)):
                k += 1
                account = f"u{k}"
                if path == "fsync" and pipelined is False:
                    count = max(50, n // 10)
                if path == "bare":
                    got = await _bare(address, account, count, pipelined)
                else:
                    state = None if path == "orders-memory" else tmp / account
                    got = await _orders(
                        address, account, count, pipelined, state, path == "orders-fsync"
                    )
                sink[path].append(statistics.median(got))
                if not pipelined:
                    cpu[path].append(CPU[-1])
        print(f"run {run + 1}/{runs} done", file=sys.stderr)
    blocks = await _paired(address, 10 * runs, max(20, n // 20))
    paired = {p: [a / b for a, b in zip(v, rtt["bare"], strict=True)] for p, v in rtt.items()}
    return {
        "rtt_us": {p: statistics.median(v) * 1e6 for p, v in rtt.items()},
        "rtt_us_runs": {p: [x * 1e6 for x in v] for p, v in rtt.items()},
        "rtt_ratio_runs": paired,
        "cpu_us": {p: statistics.median(v) * 1e6 for p, v in cpu.items()},
        "cpu_us_runs": {p: [x * 1e6 for x in v] for p, v in cpu.items()},
        "orders_per_s_runs": rate,
        "paired_blocks": blocks,
        "paired_ratio": statistics.median(blocks["ratio"]),
        "paired_cpu_extra_us": statistics.median(blocks["cpu_extra_us"]),
        "orders_per_s": {p: statistics.median(v) for p, v in rate.items()},
        "rtt_ratio": {
            p: statistics.median(v) / statistics.median(rtt["bare"]) for p, v in rtt.items()
        },
    }


def _write_ahead(tmp: Path, runs: int) -> dict[str, float]:
    out: dict[str, float] = {}
    payloads = [_enter(i) for i in range(1, 257)]
    for fsync in (False, True):
        for batch in (1, 16, 256):
            per: list[float] = []
            for run in range(runs):
                state = StateDir(tmp / f"wa-{fsync}-{batch}-{run}", fsync=fsync)
                state.bind("BENCH")
                rounds = max(20, 2048 // batch) if fsync else max(200, 20480 // batch)
                t = time.perf_counter()
                for _ in range(rounds):
                    state.write_ahead(payloads[:batch])
                per.append((time.perf_counter() - t) / (rounds * batch))
                state.close()
            out[f"{'fsync' if fsync else 'no fsync'}, batch {batch}"] = statistics.median(per) * 1e6
    return out


def _compare(args: argparse.Namespace) -> None:
    """Each run a process per tree, the trees alternating, which goes first alternating too:
    before, after, after, before, ..."""
    after = Path(args.after).resolve() if args.after else Path(__file__).parents[1] / "src"
    trees = {"before": Path(args.before).resolve(), "after": after}
    runs: dict[str, list[dict[str, Any]]] = {tree: [] for tree in trees}
    with tempfile.TemporaryDirectory(prefix="bench-orders-cmp-") as d:
        for run in range(args.runs):
            for tree in ("before", "after") if run % 2 == 0 else ("after", "before"):
                src = trees[tree]
                out = Path(d) / f"{tree}-{run}.json"
                env = {**os.environ, "PYTHONPATH": str(src)}
                cmd = [sys.executable, __file__, "--runs", "1", "-n", str(args.n)]
                cmd += ["--pipelined", str(args.pipelined), "--loop", args.loop, "--json", str(out)]
                cmd.append("--no-write-ahead")
                if args.paired_only:
                    cmd.append("--paired-only")
                subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
                runs[tree].append(json.loads(out.read_text()))
            print(f"run {run + 1}/{args.runs} done (both trees)", file=sys.stderr)
    table: dict[str, dict[str, list[float]]] = {}
    for tree, results in runs.items():
        rows: dict[str, list[float]] = {}
        for res in results:
            for key in ("rtt_us", "cpu_us", "orders_per_s", "rtt_ratio"):
                for path, value in res.get(key, {}).items():
                    rows.setdefault(f"{key} {path}", []).append(value)
            if "cpu_us" in res:
                cpu = res["cpu_us"]
                rows.setdefault("cpu_extra_us orders-memory", []).append(
                    cpu["orders-memory"] - cpu["bare"]
                )
            rows.setdefault("paired blocks: ratio", []).extend(res["paired_blocks"]["ratio"])
            rows.setdefault("paired blocks: cpu extra us", []).extend(
                res["paired_blocks"]["cpu_extra_us"]
            )
            rows.setdefault("paired blocks: bare us", []).extend(res["paired_blocks"]["bare_us"])
            if "blocking_blocks" in res:
                blocking = res["blocking_blocks"]
                rows.setdefault("blocking pairs: ratio", []).extend(blocking["ratio"])
                rows.setdefault("blocking pairs: cpu extra us", []).extend(blocking["cpu_extra_us"])
                rows.setdefault("blocking pairs: bare us", []).extend(blocking["bare_us"])
        table[tree] = rows
    print(f"{'':30} {'before: median [quartiles]':>28} {'after: median [quartiles]':>28}")
    for key in table["after"]:
        cells = []
        for tree in trees:
            v = table[tree][key]
            q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0], v[0], v[0]]
            cells.append(f"{q[1]:,.2f} [{q[0]:,.2f}-{q[2]:,.2f}]")
        print(f"{key:30} {cells[0]:>28} {cells[1]:>28}")
    write_json(
        args.json, {"runs": runs, "table": table, "trees": {k: str(v) for k, v in trees.items()}}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-n", type=int, default=2000, help="round trips per path and run")
    parser.add_argument("--pipelined", type=int, default=20000, help="orders per pipelined run")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--before", help="another source tree (its src/) to measure too")
    parser.add_argument("--after", help="with --before: the tree to compare (default: this one)")
    parser.add_argument("--no-write-ahead", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--paired-only",
        action="store_true",
        help="only the paired blocks (10 per run of -n/20 orders each; with --before: quicker)",
    )
    args = parser.parse_args()
    if args.before:
        _compare(args)
        return
    ours, theirs = mp.Pipe()
    venue = mp.get_context("fork").Process(target=_venue_process, args=(theirs,), daemon=True)
    venue.start()
    address = ours.recv()
    if args.paired_only:
        results = run_on(
            args.loop, lambda: _paired_only(address, 10 * args.runs, max(20, args.n // 20))
        )
        blocking = _paired_blocking(address, 10 * args.runs, max(20, args.n // 20))
        results["blocking_blocks"] = blocking
        results["blocking_ratio"] = statistics.median(blocking["ratio"])
        ours.send("stop")
        venue.join(10)
        print(
            f"paired ratio {results['paired_ratio']:.3f}, CPU extra "
            f"{results['paired_cpu_extra_us']:.1f} us; blocking {results['blocking_ratio']:.3f}"
        )
        write_json(args.json, results)
        return
    with tempfile.TemporaryDirectory(prefix="bench-orders-") as d:
        tmp = Path(d)
        results = run_on(
            args.loop, lambda: _measure(address, args.runs, args.n, args.pipelined, tmp)
        )
        results["write_ahead_us_per_message"] = (
            {} if args.no_write_ahead else _write_ahead(tmp, args.runs)
        )
    ours.send("stop")
    venue.join(10)
    results.update(runs=args.runs, n=args.n, pipelined=args.pipelined, loop=args.loop)
    for key in ("rtt_us", "rtt_ratio", "orders_per_s", "write_ahead_us_per_message"):
        for name, value in results[key].items():
            print(f"{key:28} {name:22} {value:12,.2f}")
    write_json(args.json, results)


if __name__ == "__main__":
    main()


def section(res: dict[str, Any]) -> list[str]:
    """The report's section (bench/run.py)."""
    names = {
        "bare": "bare SoupBinTCP client (yardstick)",
        "orders-memory": "OrderClient, no state directory",
        "orders-state": "OrderClient, state directory, no fsync",
        "orders-fsync": "OrderClient, state directory, fsync",
    }
    out = [
        f"## Order client (round trip Enter -> Accepted, closed loop; pipelined "
        f"{res['pipelined']:,} orders; {res.get('loop', 'asyncio')}; "
        f"medians of {res['runs']} runs)",
        "",
        "| path | round trip | vs bare | CPU per order | orders/s pipelined |",
        "| --- | --- | --- | --- | --- |",
    ]
    for path, name in names.items():
        out.append(
            f"| {name} | {res['rtt_us'][path]:,.0f} µs | {res['rtt_ratio'][path]:.2f}x "
            f"| {res['cpu_us'][path]:,.1f} µs | {res['orders_per_s'][path]:,.0f} |"
        )
    ratio = res["paired_ratio"]
    blocks = res["paired_blocks"]["ratio"]
    out += [
        "",
        f"Paired (bare client and OrderClient connected at once, alternating every block of "
        f"orders, {len(blocks)} blocks): OrderClient round trip {ratio:.2f}x the bare "
        f"client's [{min(blocks):.2f}-{max(blocks):.2f}], "
        f"{res['paired_cpu_extra_us']:.1f} µs more CPU per order. Whole runs measured apart "
        "(the table) differ by the processes' luck too: the bare client's own round trip "
        "varies ~15% from process to process.",
        "",
        f"Target: OrderClient round trip <= 1.1x the bare client's (paired): "
        f"{'met' if ratio <= 1.1 else 'NOT met'} ({ratio:.2f}x).",
        "",
        "| write-ahead journal (`StateDir.write_ahead`) | µs per message |",
        "| --- | --- |",
    ]
    out += [f"| {k} | {v:,.2f} |" for k, v in res["write_ahead_us_per_message"].items()]
    return [*out, ""]
