"""Round-trip latency: request as Unsequenced Data, response as Sequenced Data.

The server runs in its own process: per-user streams (`user_store=lambda user:
MemoryStore()`), and an `on_unsequenced(connection, data)` handler that publishes each
request back into that user's stream with `connection.publish(data)`. The client (this
process) sends requests at a fixed rate (10,000/s by default) on a fixed timetable: request
i is due at start + i / rate. Latency is receive time minus the *scheduled* send time, so a
stall anywhere (client, server, kernel) shows up in every request it delays instead of
being hidden by the sender waiting for it (no coordinated omission).

The timetable is kept by the kernel: an interval timer (`setitimer`, SIGALRM every 1 / rate
s) wakes the client's event loop through `loop.add_signal_handler`, which then sends every
request that is due. The loops' own timers have 1 ms granularity; a sender thread would
contend for the GIL and spinning would keep a core busy. The loop sleeps in epoll between
requests like a real client's, and how late each request actually went out is recorded too
(*send lateness*, part of the latency).

Responses are read with `receive_msg()` (a `Message` per response); the receive time is
taken when it returns. As a yardstick, the same timetable, request sizes and process layout
run against a raw asyncio echo server with a raw client (no soupbintcp at either end): what
this machine's loop, kernel and scheduler cost by themselves.

Latencies go into an HdrHistogram (`hdrhistogram` package, 3 significant digits);
percentiles come from it. Server and client run on the same loop (stock asyncio, then
uvloop); each figure is the median of the runs, and the plot is drawn from all runs of a
loop added together.

    python bench/bench_latency.py [--rate 10000] [--seconds 3] [--runs 3] [--plot PNG]
    python bench/bench_latency.py --profile uvloop    # cProfile of server and client
    python bench/bench_latency.py --closed-loop [--before SRC]  # roundtrip.py's pairs

`--closed-loop` runs the pairs of `roundtrip.py` instead: a closed-loop ping-pong (one request
in flight) for the blocking client, the async client on asyncio and uvloop and a hand-written
client, each beside its raw yardstick, then the blocking client open-loop at 5,000/s from a
sender thread; with `--before SRC` another source tree's client and server too, in the same
rounds. Build (or copy) the compiled extension into that tree too (`git archive` leaves it
out): without it the tree runs the pure-Python path, and the run says so on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import multiprocessing as mp
import os
import signal
import socket
import statistics
import sys
import time
from array import array
from collections.abc import Callable, Coroutine, Sequence
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any, cast

from hdrh.histogram import HdrHistogram

import soupbintcp
from benchlib import LOOPS, profile_text, run_on, write_json
from soupbintcp.store import MemoryStore

SESSION = "LATENCY"
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
REQUEST_SIZE = 32  # bytes: an 8-byte request number, padded to an ITCH-like size
FRAME = 3 + REQUEST_SIZE  # as an Unsequenced Data packet on the wire
LOWEST_NS, HIGHEST_NS, DIGITS = 1, 60 * 10**9, 3
SOUP, ECHO = "soupbintcp", "raw echo (no soupbintcp)"

clock = time.perf_counter_ns  # CLOCK_MONOTONIC, as the interval timer


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_NS, HIGHEST_NS, DIGITS)


# --- the timetable -----------------------------------------------------------------------------


class Timetable:
    """Calls `send(i)` on the event loop for i in range(n), request i at
    start + i * interval, from SIGALRM ticks of an interval timer of the same period; records
    how late each measured request (i >= warm) went out."""

    def __init__(self, n: int, warm: int, rate: int, send: Callable[[int], None]) -> None:
        self.n = n
        self.warm = warm
        self.interval = 10**9 // rate
        self.send = send
        self.lateness = array("q", bytes(8 * (n - warm)))
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.next = 0
        self.start = 0

    def begin(self, delay: float = 0.02) -> None:
        self.loop.add_signal_handler(signal.SIGALRM, self._tick)
        self.start = clock() + int(delay * 1e9)
        # Ticks a few us after each due time: one a hair early would hold a request back a
        # whole period.
        first = (self.start - clock() + 5_000) / 1e9
        signal.setitimer(signal.ITIMER_REAL, first, self.interval / 1e9)

    def due(self, i: int) -> int:
        return self.start + i * self.interval

    def _tick(self) -> None:
        i, n, send = self.next, self.n, self.send
        now = clock()
        while i < n and self.start + i * self.interval <= now:
            send(i)
            if i >= self.warm:
                self.lateness[i - self.warm] = now - (self.start + i * self.interval)
            i += 1
            now = clock()
        self.next = i
        if i >= n:
            self.close()
            if not self.done.done():
                self.done.set_result(None)

    def close(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        self.loop.remove_signal_handler(signal.SIGALRM)


async def _drive(
    n: int,
    warm: int,
    rate: int,
    seconds: float,
    send: Callable[[int], None],
    receive: Callable[[Timetable, array[int]], Coroutine[Any, Any, int]],
) -> tuple[array[int], array[int]]:
    """Run the timetable with `send`, and `receive(timetable, latencies)` until it has
    every response; returns (latencies, send lateness) of the measured requests, in ns."""
    latencies = array("q", bytes(8 * (n - warm)))
    table = Timetable(n, warm, rate, send)
    receiver = asyncio.ensure_future(receive(table, latencies))
    table.begin()
    try:
        await asyncio.wait_for(table.done, seconds + 30)
        got = await asyncio.wait_for(receiver, 30)
    finally:
        table.close()
        receiver.cancel()
    assert got == n, f"{got} responses to {n} requests"
    return latencies, table.lateness


# --- soupbintcp: server process and client -----------------------------------------------------


def _server_main(kind: str, loop: str, profile: bool, pipe: Pipe) -> None:
    run_on(loop, lambda: _serve(kind, profile, pipe))


async def _serve(kind: str, profile: bool, pipe: Pipe) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(pipe.fileno(), stop.set)
    profiler = cProfile.Profile() if profile else None

    async def serve_until_stopped(address: tuple[str, int]) -> None:
        pipe.send(address)
        if profiler is not None:
            profiler.enable()
        await stop.wait()
        if profiler is not None:
            profiler.disable()

    if kind == SOUP:

        def on_unsequenced(connection: soupbintcp.Connection, data: bytes) -> None:
            connection.publish(data)

        async with soupbintcp.serve(
            ("127.0.0.1", 0),
            user_store=lambda user: MemoryStore(),
            session_id=SESSION,
            authenticate=lambda *_: True,
            on_unsequenced=on_unsequenced,
        ) as server:
            await serve_until_stopped(server.address)
    else:
        echo = await loop.create_server(_Echo, "127.0.0.1", 0)
        async with echo:
            await serve_until_stopped(echo.sockets[0].getsockname()[:2])
    loop.remove_reader(pipe.fileno())
    pipe.recv()
    pipe.send(profile_text(profiler) if profiler is not None else "")


class LatencyServer:
    """`with LatencyServer(kind, loop) as address:` the soupbintcp publish-back server or
    the raw echo server, in its own process."""

    def __init__(self, kind: str, loop: str, profile: bool = False) -> None:
        self.kind = kind
        self.loop = loop
        self.profile = profile
        self.profile_text = ""
        self._proc: mp.process.BaseProcess | None = None
        self._pipe: Pipe | None = None

    def __enter__(self) -> tuple[str, int]:
        ctx = mp.get_context("spawn")
        ours, theirs = ctx.Pipe()
        self._pipe = ours
        proc = ctx.Process(
            target=_server_main, args=(self.kind, self.loop, self.profile, theirs), daemon=True
        )
        self._proc = proc
        proc.start()
        deadline = time.monotonic() + 60
        while not ours.poll(0.1):
            if not proc.is_alive() or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the {self.kind} server did not start")
        host, port = ours.recv()
        return str(host), int(port)

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far (Linux: /proc; else None)."""
        if self._proc is None or self._proc.pid is None:
            return None
        try:
            with open(f"/proc/{self._proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # utime and stime: fields 14 and 15 of stat(5), counted after the ")" from field 3.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        proc, pipe = self._proc, self._pipe
        if proc is None or pipe is None:
            return
        try:
            pipe.send("stop")
            if pipe.poll(10):
                self.profile_text = pipe.recv()
        except (OSError, EOFError):
            pass
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


async def soup_round_trips(
    address: tuple[str, int], user: str, rate: int, seconds: float, warmup: float
) -> tuple[array[int], array[int]]:
    """Our client against our server: latencies and send lateness (ns)."""
    client = await soupbintcp.connect_async(address, user, "-", session_id=SESSION, sequence=1)
    warm = int(warmup * rate)
    n = warm + int(seconds * rate)
    pad = bytes(REQUEST_SIZE - 8)
    send_unseq = client.send_unseq_data

    def send(i: int) -> None:
        send_unseq(i.to_bytes(8, "big") + pad)

    async def receive(table: Timetable, latencies: array[int]) -> int:
        got = 0
        receive_msg = client.receive_msg
        while got < n:
            msg = await receive_msg()
            now = clock()
            if msg[0] is None:
                continue  # not a response
            i = int.from_bytes(msg[1][:8], "big")
            if i >= warm:
                latencies[i - warm] = now - table.due(i)
            got += 1
        return got

    try:
        return await _drive(n, warm, rate, seconds, send, receive)
    finally:
        await client.close()


# --- the yardstick: raw echo -------------------------------------------------------------------


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        _nodelay(transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _EchoClient(asyncio.Protocol):
    """Splits the echoed fixed-size frames and hands each request number over."""

    def __init__(self, on_response: Callable[[int, int], None]) -> None:
        self.on_response = on_response
        self.rest = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _nodelay(transport)

    def data_received(self, data: bytes) -> None:
        now = clock()
        buf = self.rest + data if self.rest else data
        end = len(buf) - len(buf) % FRAME
        for pos in range(0, end, FRAME):
            self.on_response(int.from_bytes(buf[pos + 3 : pos + 11], "big"), now)
        self.rest = buf[end:]


async def echo_round_trips(
    address: tuple[str, int], user: str, rate: int, seconds: float, warmup: float
) -> tuple[array[int], array[int]]:
    """The raw client against the raw echo server: latencies and send lateness (ns)."""
    loop = asyncio.get_running_loop()
    warm = int(warmup * rate)
    n = warm + int(seconds * rate)
    all_in: asyncio.Future[None] = loop.create_future()
    got = 0
    table: Timetable | None = None
    latencies: array[int] | None = None

    def on_response(i: int, now: int) -> None:
        nonlocal got
        assert table is not None
        assert latencies is not None
        if i >= warm:
            latencies[i - warm] = now - table.due(i)
        got += 1
        if got == n and not all_in.done():
            all_in.set_result(None)

    transport, _ = await loop.create_connection(
        lambda: _EchoClient(on_response), address[0], address[1]
    )
    header = (REQUEST_SIZE + 1).to_bytes(2, "big") + b"U"
    pad = bytes(REQUEST_SIZE - 8)

    def send(i: int) -> None:
        transport.write(header + i.to_bytes(8, "big") + pad)

    async def receive(t: Timetable, lat: array[int]) -> int:
        nonlocal table, latencies
        table, latencies = t, lat
        await all_in
        return got

    try:
        return await _drive(n, warm, rate, seconds, send, receive)
    finally:
        transport.close()


# --- measuring ---------------------------------------------------------------------------------

ROUND_TRIPS = {SOUP: soup_round_trips, ECHO: echo_round_trips}


def histogram_of(values: Sequence[int]) -> HdrHistogram:
    hist = new_histogram()
    record = hist.record_value
    for v in values:
        if not record(max(LOWEST_NS, v)):
            raise ValueError(f"latency {v} ns out of the histogram's range")
    return hist


def summary_us(hist: HdrHistogram) -> dict[str, float]:
    out = {f"p{p:g}": hist.get_value_at_percentile(p) / 1e3 for p in PERCENTILES}
    out["max"] = hist.get_max_value() / 1e3
    out["mean"] = hist.get_mean_value() / 1e3
    return out


def measure(
    loops: Sequence[str], rate: int, seconds: float, warmup: float, runs: int
) -> dict[str, dict[str, Any]]:
    """results[loop][kind]: per-run summaries (µs), their medians, the send lateness, CPU
    time per request of client and server (µs), and the histogram of all runs (encoded).
    Runs alternate soupbintcp and the yardstick."""
    results: dict[str, dict[str, Any]] = {}
    requests = int(warmup * rate) + int(seconds * rate)
    for loop in loops:
        merged = {kind: new_histogram() for kind in ROUND_TRIPS}
        per_run: dict[str, list[dict[str, float]]] = {kind: [] for kind in ROUND_TRIPS}
        late_runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in ROUND_TRIPS}
        cpu: dict[str, dict[str, list[float]]] = {
            kind: {"client": [], "server": []} for kind in ROUND_TRIPS
        }
        soup_server, echo_server = LatencyServer(SOUP, loop), LatencyServer(ECHO, loop)
        with soup_server as soup, echo_server as echo:
            servers = {SOUP: (soup_server, soup), ECHO: (echo_server, echo)}
            for run in range(runs):
                for kind, trips in ROUND_TRIPS.items():
                    server, address = servers[kind]
                    user = f"u{run}"  # a fresh stream each run
                    go = functools.partial(trips, address, user, rate, seconds, warmup)
                    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
                    lat, late = run_on(loop, go)
                    cpu[kind]["client"].append((time.process_time() - client_cpu) / requests * 1e6)
                    if server_cpu is not None:
                        used = (server.cpu_seconds() or server_cpu) - server_cpu
                        cpu[kind]["server"].append(used / requests * 1e6)
                    hist = histogram_of(lat)
                    merged[kind].add(hist)
                    per_run[kind].append(summary_us(hist))
                    late_runs[kind].append(summary_us(histogram_of(late)))
        results[loop] = {}
        for kind in ROUND_TRIPS:
            keys = per_run[kind][0].keys()
            results[loop][kind] = {
                "cpu_us_per_request": {
                    side: statistics.median(values) if values else None
                    for side, values in cpu[kind].items()
                },
                "runs": per_run[kind],
                "median": {k: statistics.median(r[k] for r in per_run[kind]) for k in keys},
                "send_lateness_median": {
                    k: statistics.median(r[k] for r in late_runs[kind]) for k in keys
                },
                "requests_per_run": int(seconds * rate),
                "histogram": merged[kind].encode().decode(),
            }
    return results


def profile_run(loop: str, rate: int, seconds: float, warmup: float) -> dict[str, str]:
    """One soupbintcp run with cProfile in the server process and in this client process."""
    server = LatencyServer(SOUP, loop, profile=True)
    client = cProfile.Profile()
    with server as address:
        client.enable()
        run_on(loop, lambda: soup_round_trips(address, "prof", rate, seconds, warmup))
        client.disable()
    return {"server": server.profile_text, "client": profile_text(client)}


def plot(results: dict[str, dict[str, Any]], path: Path, rate: int) -> None:
    """Percentile plot: latency against 1 / (1 - percentile), both log scales."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    colors = {"asyncio": "tab:blue", "uvloop": "tab:orange"}
    top = 10.0
    for loop, kinds in results.items():
        for kind, res in kinds.items():
            hist = new_histogram()
            hist.decode_and_add(res["histogram"])
            xs: list[float] = []
            ys: list[float] = []
            for item in hist.get_percentile_iterator(5):
                pct = item.percentile_level_iterated_to
                if pct >= 100.0:
                    break
                xs.append(1.0 / (1.0 - pct / 100.0))
                ys.append(item.value_iterated_to / 1e3)
            xs.append(float(hist.get_total_count()))  # the max at 1 - 1/count
            ys.append(hist.get_max_value() / 1e3)
            top = max(top, xs[-1])
            soup = kind == SOUP
            ax.plot(
                xs,
                ys,
                drawstyle="steps-post",
                color=colors.get(loop),
                linestyle="-" if soup else "--",
                linewidth=1.8 if soup else 1.0,
                label=f"{'soupbintcp' if soup else 'raw echo'}, {loop}"
                f" (p99 {res['median']['p99']:,.0f} µs)",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    decades = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
    ticks = [10.0**k for k in range(len(decades)) if 10.0**k <= top * 1.01]
    ax.set_xticks(ticks, decades[: len(ticks)])
    ax.set_xlim(1, ticks[-1])
    ax.set_xlabel("percentile")
    ax.set_ylabel("round-trip latency (µs)")
    ax.axhline(200, color="grey", linestyle=":", linewidth=1)
    ax.text(
        ticks[-1] / 1.2,
        200 * 0.9,
        "target: p99 ≤ 200 µs on uvloop",
        color="grey",
        fontsize=8,
        ha="right",
        va="top",
    )
    ax.set_title(
        f"Round trip at {rate:,} requests/s: Unsequenced Data -> on_unsequenced -> publish\n"
        "latency from the scheduled send time; all runs of each loop; dashed: raw echo",
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def closed_loop(args: argparse.Namespace) -> None:
    import roundtrip

    trees = {"this tree": roundtrip.SRC}
    if args.before is not None:
        trees = {"before": args.before, "after": roundtrip.SRC}
    rate = 5000
    res: dict[str, Any] = {"rate": rate}
    res["closed"] = roundtrip.measure(trees, args.requests, args.runs)
    res["open"] = roundtrip.measure(trees, args.requests, args.runs, rate)
    print("\n".join(roundtrip.section(res)))
    for what, most, ratio in roundtrip.targets(res):
        shown = "not measured" if ratio is None else f"{ratio:.2f}x"
        print(f"{what}: {shown} (target <= {most}x)")
    write_json(args.json, {"roundtrip": res})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=int, default=10_000, help="requests per second")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured, per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="not measured, per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loops", nargs="+", default=list(LOOPS), choices=LOOPS)
    parser.add_argument("--plot", type=Path, help="write the percentile plot (PNG) here")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--profile", choices=LOOPS, help="only profile one run on this loop")
    parser.add_argument("--closed-loop", action="store_true", help="roundtrip.py's pairs")
    parser.add_argument("--before", type=Path, help="with --closed-loop: another tree too")
    parser.add_argument("--requests", type=int, default=3000, help="with --closed-loop")
    args = parser.parse_args()
    if args.closed_loop:
        closed_loop(args)
        return
    if args.profile:
        profiles = profile_run(args.profile, args.rate, args.seconds, args.warmup)
        write_json(args.json, {"profile": profiles})
        for side, text in profiles.items():
            print(f"--- {side} ({args.profile})\n{text}\n")
        return
    results = measure(args.loops, args.rate, args.seconds, args.warmup, args.runs)
    print(
        f"round trip at {args.rate:,} req/s, {int(args.seconds * args.rate):,} requests per run,"
        f" median of {args.runs} runs (µs; Python {sys.version.split()[0]})"
    )
    names = ("p50", "p90", "p99", "p99.9", "max")
    print(f"{'':34} " + " ".join(f"{k:>8}" for k in names) + "  late p99  CPU/req client server")
    for loop, kinds in results.items():
        for kind, res in kinds.items():
            med = res["median"]
            late = res["send_lateness_median"]["p99"]
            row = " ".join(f"{med[k]:8.0f}" for k in names)
            cpu = res["cpu_us_per_request"]
            server = f"{cpu['server']:6.1f}" if cpu["server"] is not None else "     -"
            print(f"{kind + ', ' + loop:34} {row}  {late:8.0f}  {cpu['client']:13.1f} {server}")
    if args.plot:
        plot(results, args.plot, args.rate)
        print(f"plot: {args.plot}")
    write_json(args.json, {"latency": results, "rate": args.rate, "runs": args.runs})


if __name__ == "__main__":
    main()
