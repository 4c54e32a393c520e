"""Chaos trials of the order client (see tests/order_chaos_support.py for what each does
and checks): 50 in the default suite, 1,000 in the long one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from .order_chaos_support import KINDS, run_trials
from .order_chaos_venue import VenueRecords


async def _venue() -> VenueRecords:
    return await VenueRecords.start(mirrors=2)


async def _trials(count: int, tmp_path: Path) -> None:
    results = await run_trials(_venue, count, tmp_path)
    kinds = Counter(r.kind for r in results)
    assert set(kinds) == set(KINDS)
    kills = sum(r.kills for r in results)
    points: Counter[str] = Counter()
    for r in results:
        points.update(r.kill_points)
    print(
        f"{count} trials: {dict(kinds)}; {kills} kills at {dict(points)}; "
        f"{sum(r.cuts for r in results)} cuts; {sum(r.runs for r in results)} runs; "
        f"{sum(r.ignored for r in results)} requests the venue ignored (repeats, superfluous)"
    )
    assert kills > count // 2
    assert sum(r.cuts for r in results) > 0


async def test_chaos_trials(tmp_path: Path) -> None:
    await _trials(50, tmp_path)


@pytest.mark.long
@pytest.mark.timeout(1800)
async def test_chaos_trials_long(tmp_path: Path) -> None:
    await _trials(1000, tmp_path)
