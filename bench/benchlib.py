"""Helpers shared by the benchmark scripts: workloads, event loops, results, profiles.

Each `bench_*.py` script runs alone and prints its own table; given `--json PATH` it also
writes its figures there for `run.py`, which puts them together in `results/latest.md`.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import pstats
import random
import resource
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: Event loops to measure on: stock asyncio always, uvloop where it is installed.
LOOPS: tuple[str, ...]
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the bench extra
    uvloop = None  # type: ignore[assignment]
    LOOPS = ("asyncio",)
else:
    LOOPS = ("asyncio", "uvloop")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        if uvloop is None:
            raise RuntimeError("uvloop is not installed (pip install -e '.[bench]')")
        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    if name == "asyncio":
        return asyncio.new_event_loop
    raise ValueError(f"unknown event loop {name!r}")


def run_on(loop: str, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine `make()` on a fresh event loop of the kind `loop`."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(make())


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


def peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def write_json(path: str | None, results: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(results, indent=1))


def profile_text(profile: cProfile.Profile, top: int = 12) -> str:
    """The `top` entries of a profile by own time, as pstats prints them."""
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)
    lines = out.getvalue().splitlines()
    # Drop pstats' preamble up to the column header; keep the header and the rows.
    for i, line in enumerate(lines):
        if line.lstrip().startswith("ncalls"):
            lines = lines[i:]
            break
    cwd = str(Path.cwd()) + "/"
    prefix = sys.prefix + "/"
    return "\n".join(
        line.replace(cwd, "").replace(prefix, "").rstrip() for line in lines if line.strip()
    )
