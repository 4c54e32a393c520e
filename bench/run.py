"""`make bench`: run every benchmark under bench/ and write `bench/results/latest.md`.

Each benchmark runs as its own process group (`bench_*.py --json ...`) under a time limit;
the group is killed when it ends, whatever happens, so no feed server or reader process
outlives its step. The figures are medians of `--runs` runs; ratios compare figures
measured in the same run of this script on this machine (client paths are interleaved
run by run). Targets that are missed get a cProfile of the path, in the report.

    python bench/run.py [--runs 5] [--quick] [--profile auto|all|none] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"

BYTES_ONLY = "bytes only (transport limit)"
NAIVE = "naive frame splitter"
NASDAQ = "nasdaq-protocols receive_msg()"
PER_MESSAGE = "receive_msg()"
BATCH = "receive_batch()"
SOUP, ECHO = "soupbintcp", "raw echo (no soupbintcp)"  # as bench_latency.py names them


@dataclass
class Step:
    name: str
    script: str
    args: list[str]
    timeout: float
    result: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)


def _wait_unreaped(pid: int, timeout: float) -> bool:
    """Wait for `pid` to exit without reaping it (its id, which is also its process group's,
    stays reserved until reaped); False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        time.sleep(0.05)
    return False


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run_step(step: Step, workdir: Path) -> Step:
    """Run one benchmark process (group) with a deadline; keep its JSON or its error."""
    out = workdir / f"{step.name}.json"
    log = workdir / f"{step.name}.log"
    cmd = [sys.executable, str(BENCH / step.script), *step.args, "--json", str(out)]
    print(f"-- {step.name}: {' '.join(cmd[1:-2])}", flush=True)
    t = time.monotonic()
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            exited = _wait_unreaped(proc.pid, step.timeout)
        finally:
            # Whatever happened: the step's feed servers, readers, ... all of them, while
            # the leader is not yet reaped (so the group id cannot have been reused).
            _kill_group(proc.pid)
            code: int | None = proc.wait()
        if not exited:
            code = None
    step.seconds = time.monotonic() - t
    step.log = log.read_text(errors="replace").splitlines()
    if code is None:
        step.error = f"timed out after {step.timeout:.0f} s"
    elif code != 0:
        step.error = f"exited with {code}"
    elif not out.exists():
        step.error = "wrote no results"
    else:
        step.result = json.loads(out.read_text())
    if step.error:
        print(f"   FAILED ({step.error}); last lines:", *step.log[-15:], sep="\n   ")
    else:
        print(f"   done in {step.seconds:.0f} s", flush=True)
    return step


# --- formatting --------------------------------------------------------------------------------


def rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e4:
        return f"{value / 1e3:.1f} k"
    return f"{value:,.0f}"


def times(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}x"
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return [*out, ""]


def median_ratio(a: list[float], b: list[float]) -> float:
    """The median over runs of a[i] / b[i] (both measured in run i)."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


# --- targets -----------------------------------------------------------------------------------


@dataclass
class Target:
    what: str
    required: str
    measured: str
    met: bool | None  # None: not measured
    shortfall: str = ""
    profile: tuple[str, list[str]] | None = None  # (step name, argv) to profile it


def ratio_target(
    what: str, value: float | None, need: float, detail: str, profile: tuple[str, list[str]]
) -> Target:
    if value is None:
        return Target(what, f"≥ {times(need)}", "not measured", None)
    met = value >= need
    short = "" if met else f"{times(value)} is {1 - value / need:.0%} below {times(need)}"
    return Target(what, f"≥ {times(need)}", f"{times(value)} ({detail})", met, short, profile)


def evaluate(
    client: dict[str, Any] | None,
    server: dict[str, Any] | None,
    latency: dict[str, Any] | None,
    loops: list[str],
) -> list[Target]:
    targets: list[Target] = []
    rates = client["rates"] if client else {}
    for loop, need in (("uvloop", 15.0), ("asyncio", 1000.0)):
        by_path = rates.get(loop, {})
        value = detail = None
        if PER_MESSAGE in by_path and NASDAQ in by_path:
            value = median_ratio(by_path[PER_MESSAGE], by_path[NASDAQ])
            detail = (
                f"{rate(statistics.median(by_path[PER_MESSAGE]))} vs "
                f"{rate(statistics.median(by_path[NASDAQ]))} msg/s"
            )
        targets.append(
            ratio_target(
                f"client receive per message (`receive_msg`) vs nasdaq-protocols, {loop}",
                value,
                need,
                detail or "",
                ("client", ["--profile", "receive_msg", "--loops", loop]),
            )
        )
    for loop in loops:
        by_path = rates.get(loop, {})
        value = detail = None
        if BATCH in by_path and NAIVE in by_path:
            value = median_ratio(by_path[BATCH], by_path[NAIVE])
            detail = (
                f"{rate(statistics.median(by_path[BATCH]))} vs "
                f"{rate(statistics.median(by_path[NAIVE]))} msg/s"
            )
            cpu = (client or {}).get("cpu_ns", {}).get(loop, {})
            if BATCH in cpu and NAIVE in cpu:
                # CPU ns per message: the naive reader's over ours is our speed ratio.
                detail += f"; by client CPU time {times(median_ratio(cpu[NAIVE], cpu[BATCH]))}"
        targets.append(
            ratio_target(
                f"client batch path (`receive_batch`) vs naive reader, {loop}",
                value,
                1.0,
                detail or "",
                ("client", ["--profile", "batch", "--loops", loop]),
            )
        )
    for loop in loops:
        replay = (server or {}).get(loop, {}).get("replay")
        what = f"server replay from FileStore, 1 client, {loop}"
        if not replay:
            targets.append(Target(what, "≥ 5.00 M msg/s", "not measured", None))
            continue
        value = statistics.median(replay)
        met = value >= 5e6
        targets.append(
            Target(
                what,
                "≥ 5.00 M msg/s",
                f"{rate(value)} msg/s",
                met,
                "" if met else f"{value / 5e6:.0%} of the target",
                ("server", ["--profile", "replay", "--loops", loop]),
            )
        )
    kinds = (latency or {}).get("latency", {}).get("uvloop", {})
    lat, echo = kinds.get(SOUP), kinds.get(ECHO)
    what = f"round-trip p99 at {(latency or {}).get('rate', 10_000):,} requests/s, uvloop"
    if lat is None:
        targets.append(Target(what, "≤ 200 µs", "not measured", None))
    else:
        p99 = lat["median"]["p99"]
        met = p99 <= 200
        yardstick = f" (raw echo, no soupbintcp: {echo['median']['p99']:,.0f} µs)" if echo else ""
        targets.append(
            Target(
                what,
                "≤ 200 µs",
                f"{p99:,.0f} µs{yardstick}",
                met,
                "" if met else f"{p99 - 200:,.0f} µs over ({p99 / 200:.1f}x the target)",
                ("latency", ["--profile", "uvloop"]),
            )
        )
    return targets


def roundtrip_targets(res: dict[str, Any] | None) -> list[Target]:
    """The round-trip ratios (`roundtrip.py`): each pair against its yardstick, same run."""
    from roundtrip import targets

    out = []
    for what, most, ratio in targets(res or {}):
        if ratio is None:
            out.append(Target(what, f"≤ {most}x", "not measured", None))
            continue
        met = ratio <= most
        out.append(Target(what, f"≤ {most}x", f"{ratio:.2f}x", met, "" if met else f"{ratio:.2f}x"))
    return out


def headline(targets: list[Target]) -> list[str]:
    rows = []
    for t in targets:
        verdict = "—" if t.met is None else ("**met**" if t.met else f"**missed**: {t.shortfall}")
        rows.append([t.what, t.required, t.measured, verdict])
    return table(["target", "required", "measured (median)", "result"], rows)


# --- sections ----------------------------------------------------------------------------------


def client_section(res: dict[str, Any], n: int) -> list[str]:
    counts = res["counts"]
    out = [
        f"## Client receive throughput ({n:,} ITCH-sized messages, loopback)",
        "",
        "The feed server (`feed_server.py`, its own process) writes a pre-encoded stream; each"
        " row is the median msg/s of the runs, each ratio the median of the per-run ratios"
        " (every path and loop measured in turn in each run).",
        "",
    ]
    shown = {
        PER_MESSAGE: "`receive_msg()`",
        "async for": "`async for msg in client`",
        BATCH: "`receive_batch()`",
        NASDAQ: "nasdaq-protocols `receive_msg()`",
    }
    rows = []
    for loop, by_path in res["rates"].items():
        cpu = res.get("cpu_ns", {}).get(loop, {})
        for name, values in by_path.items():
            count = counts.get(f"{name} {loop}", counts.get(name, n))
            vs_nasdaq = times(median_ratio(values, by_path[NASDAQ])) if NASDAQ in by_path else "—"
            rows.append(
                [
                    shown.get(name, name),
                    loop,
                    f"{count:,}",
                    rate(statistics.median(values)),
                    f"{rate(min(values))} to {rate(max(values))}",
                    f"{median_ratio(values, by_path[BYTES_ONLY]):.3f}",
                    f"{median_ratio(values, by_path[NAIVE]):.2f}",
                    vs_nasdaq,
                    f"{statistics.median(cpu[name]):,.0f}" if name in cpu else "—",
                ]
            )
    out += table(
        [
            "path",
            "loop",
            "messages",
            "msg/s",
            "range",
            "vs bytes-only",
            "vs naive",
            "vs nasdaq-protocols",
            "client CPU ns/msg",
        ],
        rows,
    )
    out += [
        "- *bytes only*: reads the socket and counts bytes (the transport's limit);"
        " *naive frame splitter*: `struct.unpack_from` over a memoryview, counting frames (the"
        " yardstick for the batch path).",
        "- *client CPU ns/msg*: the client process's CPU time (`time.process_time()`) per"
        " message, median of the runs; unlike msg/s it does not count time spent waiting for a"
        " core, so it is the steadier figure on a busy machine (for nasdaq-protocols on stock"
        " asyncio, most of its time is the sleep, not CPU).",
        "- *nasdaq-protocols* (`nasdaq-protocols` "
        f"{_version('nasdaq-protocols')}): its reader awaits `asyncio.sleep(0.0001)` after"
        " every message, which stock asyncio rounds up to ~1 ms, so it is measured on"
        f" {counts.get(f'{NASDAQ} asyncio', 3000):,} messages on asyncio and"
        f" {counts.get(f'{NASDAQ} uvloop', 100_000):,} on uvloop (its rate does not depend on"
        " the count), from the same feed server program.",
        "",
    ]
    return out


def _pair_ratios(on: list[float], off: list[float]) -> tuple[float, float, float]:
    """Median, lowest and highest of on[i] / off[i] (runs i ran one after the other)."""
    each = sorted(a / b for a, b in zip(on, off, strict=True))
    return statistics.median(each), each[0], each[-1]


def server_section(res: dict[str, Any], stalled: dict[str, Any]) -> list[str]:
    names = {
        "replay": "replay from FileStore, 1 client",
        "live1": "live `publish_many` (x1,000), 1 client",
        "fanout10": "live `publish_many`, 10 clients (aggregate)",
        "fanout100": "live `publish_many`, 100 clients (aggregate)",
        "fanout10_off": "live `publish_many`, 10 clients, metrics off (alternating)",
        "fanout10_metrics": "live `publish_many`, 10 clients, metrics on (scraped every 0.1 s)",
        "replay_format1": "replay, fresh FileStore, checksums off (format 1; alternating)",
        "replay_checksums": "replay, fresh FileStore, checksums (checked ahead or in line)",
    }
    loops = list(res)
    counts = next(iter(res.values()))["counts"] if res else {}
    out = [
        "## Server throughput (our server in one process, raw byte-counting readers in others)",
        "",
    ]
    rows = []
    for key, name in names.items():
        n = counts.get("checksums", 0) if key.startswith("replay_") else counts.get(key, 0)
        row = [name, f"{n:,}"]
        for loop in loops:
            values = res[loop].get(key)
            row += (
                [
                    f"{rate(statistics.median(values))}",
                    f"{rate(min(values))} to {rate(max(values))}",
                ]
                if values
                else ["—", "—"]
            )
        rows.append(row)
    header = ["scenario", "messages"]
    for loop in loops:
        header += [f"msg/s, {loop}", "range"]
    out += table(header, rows)
    out += [
        "Readers log in with a hand-built Login Request and count bytes with `recv_into`;"
        " 100 clients are 10 reader processes of 10 sockets each. Live messages go to a"
        " FileStore (durable at once) before they are sent.",
        "",
    ]
    ratios = [
        f"{loop} {statistics.median(on) / statistics.median(off):.3f}"
        for loop in loops
        if (on := res[loop].get("fanout10_metrics")) and (off := res[loop].get("fanout10_off"))
    ]
    sums = [
        f"{loop} {mid:.3f} ({low:.3f} to {high:.3f})"
        for loop in loops
        if (on := res[loop].get("replay_checksums")) and (off := res[loop].get("replay_format1"))
        for mid, low, high in [_pair_ratios(on, off)]
    ]
    if sums:
        out += [
            "Journal checksums, replay end to end: median msg/s of a client logging in at"
            " sequence 1 to a server on a freshly opened format 2 journal (its blocks checked"
            " by the store's check ahead from the open on, or by the replay where it gets"
            " there first) over the same journal opened with the checksums off, runs"
            " alternating in the same step; the median of the ratios of adjacent runs, and"
            " their range: "
            + ", ".join(sums)
            + "."
            + "".join(
                f" {loop}: the check ahead was done before the login in"
                f" {sum(a):.0f} of {len(a)} runs."
                for loop in loops
                if (a := res[loop].get("ahead"))
            ),
            "",
        ]
    if ratios:
        out += [
            "Metrics on / off, median msg/s of the 10-client fan-out with a metrics endpoint"
            " scraped every 0.1 s over the same without, runs alternating in the same step: "
            + ", ".join(ratios)
            + ".",
            "",
        ]
    if stalled:
        first = next(iter(stalled.values()))[0]
        runs = min(len(v) for v in stalled.values())
        out += [
            "## Server memory with one stalled client",
            "",
            f"{first['counts']['stalled']:,} messages published (`publish_many`, FileStore) while"
            " one logged-in client never reads; each run in a fresh server process, RSS from"
            f" /proc/self/statm sampled every 10 batches; median of {runs} runs:",
            "",
        ]
        rows = []
        for key in first["stalled"]:
            row = [key]
            for results in stalled.values():
                value = statistics.median(r["stalled"][key] for r in results)
                row.append(f"{value:,.1f}" if key.endswith(("MB", "KB")) else f"{value:,.0f}")
            rows.append(row)
        out += table(["figure", *stalled], rows)
    return out


def latency_section(res: dict[str, Any]) -> list[str]:
    lat = res["latency"]
    runs = res["runs"]
    n = next(iter(next(iter(lat.values())).values()))["requests_per_run"]
    out = [
        f"## Round-trip latency at {res['rate']:,} requests/s",
        "",
        "A client sends Unsequenced Data; the server's `on_unsequenced` handler publishes it"
        " into that user's stream (`user_store=lambda user: MemoryStore()`,"
        " `connection.publish(data)`); the client receives it with `receive_msg()`. Server and"
        " client in separate processes, both on the loop named. Requests follow a fixed"
        " timetable (an interval timer wakes the client's loop) and latency is receive time -"
        " *scheduled* send time (no coordinated omission). The *raw echo* rows are the"
        " yardstick: the same timetable, sizes and processes with a bare asyncio echo server"
        f" and client, no soupbintcp. {n:,} requests per run after a warm-up; percentiles from"
        f" HdrHistogram; each figure the median of {runs} runs. In µs:",
        "",
    ]
    rows = []
    for loop, kinds in lat.items():
        for kind, r in kinds.items():
            m = r["median"]
            late = r["send_lateness_median"]
            cpu = r.get("cpu_us_per_request", {})
            rows.append(
                [kind, loop]
                + [f"{m[k]:,.0f}" for k in ("p50", "p90", "p99", "p99.9", "max")]
                + [f"{late['p99']:,.0f}"]
                + [
                    f"{v:.1f}" if v is not None else "—"
                    for v in (cpu.get("client"), cpu.get("server"))
                ]
            )
    out += table(
        [
            "server and client",
            "loop",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "send lateness p99",
            "client CPU/request",
            "server CPU/request",
        ],
        rows,
    )
    out += [
        "*Send lateness*: how late the client actually sent each request (the loop's wake-up"
        " and whatever it was doing); it is part of the latency. *CPU/request*: CPU time of"
        " the client process (`time.process_time()`) and of the server process (/proc) per"
        " request, medians; what soupbintcp adds per round trip is the difference from the raw"
        " echo rows, whatever else the machine is doing.",
        "",
        "![round-trip latency percentiles](latency.png)",
        "",
    ]
    return out


def rss_section(rss: dict[str, list[dict[str, float]]]) -> list[str]:
    if not rss:
        return []
    n = int(next(iter(rss.values()))[0]["messages"])
    out = [
        f"## Client memory receiving {n:,} messages (batch path)",
        "",
        "Peak RSS of the client process (`getrusage(RUSAGE_SELF).ru_maxrss`), a fresh process"
        " per run; the feed server sends the same 1,000,000-message stream over and over.",
        "",
    ]
    rows = []
    for loop, runs in rss.items():
        peak = statistics.median(r["peak_rss_mb"] for r in runs)
        login = statistics.median(r["peak_rss_at_login_mb"] for r in runs)
        rows.append(
            [
                loop,
                str(len(runs)),
                f"{peak:.1f}",
                f"{login:.1f}",
                f"{peak - login:.1f}",
                rate(statistics.median(r["msg_per_s"] for r in runs)),
            ]
        )
    out += table(
        ["loop", "runs", "peak RSS MB", "peak RSS at login MB", "growth MB", "msg/s"], rows
    )
    return out


def wire_section(res: dict[str, Any]) -> list[str]:
    ns = res["ns_per_msg"]
    ref = ns["naive reader (reference)"]
    out = [
        f"## Receive path in process (no sockets, {res['n']:,} messages, CPU time, median of"
        f" {res['runs']} runs, paths interleaved)",
        "",
    ]
    speed = res.get("vs_naive", {name: ref / v for name, v in ns.items()})
    rows = [[name, f"{v:.0f}", f"{1e3 / v:.2f} M", f"{speed[name]:.2f}x"] for name, v in ns.items()]
    out += table(["path", "ns/msg", "msg/s", "vs naive"], rows)
    return out


def store_section(res: dict[str, Any]) -> list[str]:
    out = [
        f"## Stores ({res['appends']:,}-message appends, {res['messages']:,}-message journal;"
        " one run)",
        "",
    ]
    rows = []
    for what, value, unit in res["figures"]:
        shown = rate(value) if unit == "msg/s" else f"{value:,.3f}".rstrip("0").rstrip(".")
        rows.append([what.strip(), shown, unit])
    out += table(["figure", "value", "unit"], rows)
    return out


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _git() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}{' + uncommitted changes in src/' if dirty else ''}"


def _busy(seconds: float = 1.0) -> float | None:
    """The fraction of all CPUs busy over the next `seconds` (Linux /proc/stat), or None."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return sum(values[:8]), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return 1.0 - (idle1 - idle0) / total if total > 0 else None


def _busy_text(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "other load unknown"
    text = (
        f"CPUs busy with other work: {before:.0%} in the second before the run,"
        f" {after:.0%} in the second after"
    )
    if max(before, after) > 0.15:
        text += " — the machine was shared, figures are noisier"
    return text


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke test")
    parser.add_argument(
        "--profile",
        choices=("auto", "all", "none"),
        default="auto",
        help="profile missed targets (auto), every target, or none",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.md goes")
    args = parser.parse_args()
    runs = args.runs
    quick = args.quick
    sys.path.insert(0, str(BENCH))
    from benchlib import LOOPS

    loops = list(LOOPS)
    args.out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    busy_before = _busy()
    n_client = 200_000 if quick else 1_000_000
    n_rss = 1_000_000 if quick else 10_000_000
    n_store = 400_000 if quick else 2_000_000
    r = str(runs)
    small = ["--quick"] if quick else []
    few = min(runs, 3)  # memory figures: steadier, and each run is a fresh process
    plot = args.out / "latency.png"
    with contextlib.suppress(ValueError):
        plot = plot.relative_to(ROOT)  # the steps run in ROOT
    steps: list[Step] = [
        Step("client", "bench_client.py", ["-n", str(n_client), "--runs", r], 60 + 40 * runs),
        *[
            Step(f"rss-{loop}-{i}", "bench_client.py", ["--rss", str(n_rss), "--loops", loop], 120)
            for i in range(few)
            for loop in loops
        ],
        Step(
            "server",
            "bench_server.py",
            [
                "--runs",
                r,
                "--scenarios",
                "replay",
                "live1",
                "fanout10",
                "fanout100",
                "metrics",
                "checksums",
                *small,
            ],
            60 + 80 * runs,
        ),
        *[
            Step(
                f"stalled-{loop}-{i}",
                "bench_server.py",
                ["--scenarios", "stalled", "--loops", loop, *small],
                120,
            )
            for i in range(few)
            for loop in loops
        ],
        Step(
            "latency",
            "bench_latency.py",
            ["--runs", r, "--seconds", "1" if quick else "3", "--plot", str(plot)],
            60 + 40 * runs,
        ),
        Step(
            "roundtrip",
            "bench_latency.py",
            ["--closed-loop", "--runs", r, "--requests", "1000" if quick else "3000"],
            120 + 60 * runs,
        ),
        Step("wire", "bench_wire.py", ["--runs", r], 60 + 10 * runs),
        # Compiled vs pure (and the pure code before the fast path), modes interleaved.
        Step(
            "speedups",
            "bench_speedups.py",
            # --no-before: the tree before the fast path predates soupbintcp.lowlevel, which
            # the child benches import now, so its "before" runs could only fail.
            ["--runs", str(few), "-n", str(n_client), "--no-before"],
            300 + 400 * few,
        ),
        Step(
            "mold",
            "bench_mold.py",
            ["--runs", r, *(["-n", "200000"] if quick else [])],
            120 + 90 * runs,
        ),
        Step(
            "jetstream",
            "bench_jetstream.py",
            ["-n", "200000" if quick else "1000000", "--kills", "3" if quick else "10"],
            600,
        ),
        Step("ouch", "bench_ouch.py", ["--runs", r, "-n", "50000" if quick else "200000"], 300),
        Step(
            "venue",
            "bench_venue.py",
            ["--runs", str(few), "-n", "10000" if quick else "50000"],
            120 + 120 * few,
        ),
        # pcap import (issue 25): before and after its second round, compiled and pure,
        # interleaved; our reader against dpkt's and scapy's.
        Step(
            "pcap",
            "bench_pcap.py",
            ["--runs", str(few), "--packets", "50000" if quick else "200000"],
            900,
        ),
        Step(
            "store",
            "bench_store.py",
            ["--messages", str(n_store), "--appends", str(n_store // 4)],
            120,
        ),
        # The order client against the bare client, both against the venue (issue 21).
        Step(
            "orders",
            "bench_orders.py",
            ["--runs", r, *(["-n", "300", "--pipelined", "3000"] if quick else [])],
            120 + 60 * runs,
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="soupbintcp-bench-") as tmp:
        workdir = Path(tmp)
        for step in steps:
            run_step(step, workdir)
        by_name = {s.name: s for s in steps}

        def result(name: str) -> dict[str, Any] | None:
            step = by_name.get(name)
            return step.result if step else None

        client = result("client")
        server_loops = (result("server") or {}).get("loops", {})
        latency = result("latency")
        targets = evaluate(client, server_loops, latency, loops)
        targets += roundtrip_targets((result("roundtrip") or {}).get("roundtrip"))

        profiles: list[tuple[Target, Step]] = []
        if args.profile != "none":
            for target in targets:
                if target.profile and (args.profile == "all" or target.met is False):
                    name, argv = target.profile
                    script = {
                        "client": "bench_client.py",
                        "server": "bench_server.py",
                        "latency": "bench_latency.py",
                    }[name]
                    if name == "client":
                        argv = [*argv, "-n", str(n_client)]
                    step = Step(f"profile-{len(profiles)}", script, argv, 180)
                    profiles.append((target, run_step(step, workdir)))

    elapsed = time.monotonic() - t0
    md = render(
        args,
        runs,
        loops,
        started,
        elapsed,
        busy_before,
        steps,
        targets,
        profiles,
        client,
        server_loops,
        latency,
    )
    path = args.out / "latest.md"
    path.write_text("\n".join(md))
    print()
    print("\n".join(headline(targets)))
    print(f"wrote {path} ({elapsed:.0f} s)")
    failed = [s.name for s in steps if s.error]
    if failed:
        print(f"failed steps: {', '.join(failed)}")
        sys.exit(1)


def render(
    args: argparse.Namespace,
    runs: int,
    loops: list[str],
    started: dt.datetime,
    elapsed: float,
    busy_before: float | None,
    steps: list[Step],
    targets: list[Target],
    profiles: list[tuple[Target, Step]],
    client: dict[str, Any] | None,
    server_loops: dict[str, Any],
    latency: dict[str, Any] | None,
) -> list[str]:
    by_name = {s.name: s for s in steps}
    busy_after = _busy()
    cores = os.cpu_count()
    md = [
        "# soupbintcp benchmarks",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; whole run {elapsed / 60:.1f} min"
        f"{' (--quick: small counts, not comparable)' if args.quick else ''}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}),"
        f" {platform.system()} {platform.release()}",
        f"- machine: {cores} cores ({_cpu_model()}); {_busy_text(busy_before, busy_after)}",
        f"- runs: each figure is the median of {runs} runs; ratios are medians of per-run"
        " ratios measured in this same run",
        f"- soupbintcp {_version('soupbintcp')} at {_git()}; uvloop {_version('uvloop')},"
        f" nasdaq-protocols {_version('nasdaq-protocols')}, hdrhistogram"
        f" {_version('hdrhistogram')}",
        "- regenerate: `make bench` (`bench/run.py`)",
        "",
        "## Targets",
        "",
        *headline(targets),
        "Each target missed has a profile at the end of this report.",
        "",
    ]
    failed = [s for s in steps if s.error]
    if failed:
        md += ["**Failed steps** (their figures are missing):", ""]
        md += [f"- `{s.name}` ({s.script} {' '.join(s.args)}): {s.error}" for s in failed]
        md += [""]
    if client:
        md += client_section(client, client["n"])
    rss = {
        loop: [s.result["rss"] for s in steps if s.name.startswith(f"rss-{loop}-") and s.result]
        for loop in loops
    }
    if server_loops:
        stalled = {
            loop: [
                s.result["loops"][loop]
                for s in steps
                if s.name.startswith(f"stalled-{loop}-") and s.result
            ]
            for loop in loops
        }
        stalled = {loop: results for loop, results in stalled.items() if results}
        md += server_section(server_loops, stalled)
    if latency:
        md += latency_section(latency)
    roundtrip = (by_name["roundtrip"].result or {}).get("roundtrip")
    if roundtrip:
        from roundtrip import section as roundtrip_section

        md += roundtrip_section(roundtrip)
    md += rss_section({k: v for k, v in rss.items() if v})
    speedups = by_name["speedups"].result
    if speedups:
        md += speedups["markdown"]
    from bench_jetstream import section as jetstream_section
    from bench_mold import section as mold_section
    from bench_orders import section as orders_section
    from bench_ouch import section as ouch_section
    from bench_pcap import section as pcap_section
    from bench_venue import section as venue_section

    for name, section in (
        ("wire", wire_section),
        ("store", store_section),
        ("mold", mold_section),
        ("ouch", ouch_section),
        ("venue", venue_section),
        ("pcap", pcap_section),
        ("jetstream", jetstream_section),
        ("orders", orders_section),
    ):
        res = by_name[name].result
        if res:
            md += section(res)
    if profiles:
        md += [
            "## Profiles",
            "",
            "cProfile of the path behind each target profiled (top entries by own time;"
            " cProfile's own overhead inflates call-heavy code, so read shares, not times).",
            "",
        ]
        for target, step in profiles:
            verdict = "met" if target.met else "missed"
            md += [f"### {target.what} ({verdict})", ""]
            if step.result is None:
                md += [f"profile failed: {step.error}", ""]
                continue
            prof = step.result["profile"]
            parts = prof.items() if isinstance(prof, dict) else [("", prof)]
            for side, text in parts:
                if side:
                    md += [f"{side} process:", ""]
                md += ["```text", *text.splitlines(), "```", ""]
    md += ["## Steps", ""]
    md += table(
        ["step", "command", "seconds", "status"],
        [
            [s.name, f"`{s.script} {' '.join(s.args)}`", f"{s.seconds:.0f}", s.error or "ok"]
            for s in steps + [p[1] for p in profiles]
        ],
    )
    return md


if __name__ == "__main__":
    main()
