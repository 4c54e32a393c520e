"""The journal checksums' cost, before and after a change, interleaved in one run.

    python bench/checksums_before_after.py --before /tmp/old/src [--rounds 2]

Runs `bench_store.py --only checksums` and `bench_server.py --scenarios checksums` (asyncio)
alternately with the code under `--before` (a checkout's ``src``, put first on PYTHONPATH)
and this tree's, `--rounds` times each. Every figure is already a ratio against format 1
(the same code with the checksums off) taken in the same process, so the machine's state
at the time cancels out; this prints each ratio's median over the rounds and its range,
and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, args: list[str], src: str | None) -> dict[str, float]:
    """The ratios one run of `script` prints in its JSON, by name."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, str(HERE / script), *args, "--json", out.name],
            cwd=HERE,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        res = json.loads(Path(out.name).read_text())
    if "figures" in res:
        return {
            what: value
            for what, value, unit in res["figures"]
            if unit == "x" and not what.endswith(("lowest round", "highest round"))
        }
    loop = res["loops"]["asyncio"]
    each = [a / b for a, b in zip(loop["replay_checksums"], loop["replay_format1"], strict=True)]
    return {"server replay end to end, checksums vs format 1": statistics.median(each)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--before", required=True, help="the old code's src directory")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--messages", type=int, default=2_000_000, help="store journal size")
    parser.add_argument("--appends", type=int, default=500_000)
    args = parser.parse_args()
    store = ["--only", "checksums", "--messages", str(args.messages)]
    store += ["--appends", str(args.appends), "--rounds", "5"]
    server = ["--scenarios", "checksums", "--loops", "asyncio", "--runs", "11"]
    got: dict[tuple[str, str], list[float]] = {}
    loads = [os.getloadavg()]
    for _ in range(args.rounds):
        for tag, src in (("before", args.before), ("after", None)):
            for script, script_args in (("bench_server.py", server), ("bench_store.py", store)):
                for what, value in run(script, script_args, src).items():
                    got.setdefault((what, tag), []).append(value)
    loads.append(os.getloadavg())
    print("| ratio vs format 1 (same run) | before: median (range) | after: median (range) |")
    print("| --- | --- | --- |")
    names = dict.fromkeys(what for what, _ in got)
    for what in names:
        cells = []
        for tag in ("before", "after"):
            values = got.get((what, tag))
            cells.append(
                f"{statistics.median(values):.3f} ({min(values):.3f} to {max(values):.3f})"
                if values
                else "—"
            )
        print(f"| {what} | {cells[0]} | {cells[1]} |")
    print(
        f"\n{args.rounds} rounds of each, before and after alternating; load average "
        f"(1, 5, 15 min) at the start {loads[0][0]:.2f} {loads[0][1]:.2f} {loads[0][2]:.2f}, "
        f"at the end {loads[1][0]:.2f} {loads[1][1]:.2f} {loads[1][2]:.2f}"
    )


if __name__ == "__main__":
    main()
