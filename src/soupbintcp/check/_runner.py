"""Choosing cases and running them one after the other, each bounded in time.

Layer 4. A case that raises anything but `Failed`/`NotApplicable` (a reset connection, a
refused one) fails with that error as its reason: the suite itself never stops early.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ._case import Case, Failed, NotApplicable, Outcome, Result, Target

__all__ = ["CASE_TIMEOUT", "run_cases", "select"]

#: No case may take longer than this (a hung implementation fails the case, not the run).
CASE_TIMEOUT = 20.0


def _matches(case: Case, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(case.id, p) or p in case.id for p in patterns)


def select(
    catalogue: Iterable[Case],
    target: Target,
    dialect: str | None = None,
    cases: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[Case]:
    """The cases for `target` (and `dialect`), those matching any of `cases` (shell-style
    patterns or substrings of the id; none: all) and none of `exclude`."""
    return [
        c
        for c in catalogue
        if c.target is target
        and (dialect is None or c.dialect == dialect)
        and (not cases or _matches(c, cases))
        and not (exclude and _matches(c, exclude))
    ]


async def run_one(case: Case, implementation: Any, timeout: float = CASE_TIMEOUT) -> Result:
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            await case.run(implementation)
    except Failed as exc:
        outcome, reason = Outcome.FAIL, str(exc)
    except NotApplicable as exc:
        outcome, reason = Outcome.NOT_APPLICABLE, str(exc)
    except TimeoutError:
        outcome, reason = Outcome.FAIL, f"no verdict within {timeout:g} s (a wait that hung)"
    except (OSError, EOFError) as exc:
        outcome, reason = Outcome.FAIL, f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        outcome, reason = Outcome.FAIL, f"{type(exc).__name__}: {exc}"
    else:
        outcome, reason = Outcome.PASS, ""
    return Result(case, outcome, reason, time.monotonic() - start)


async def run_cases(
    cases: Sequence[Case],
    implementation: Any,
    on_result: Callable[[Result], None] | None = None,
    timeout: float = CASE_TIMEOUT,
    jobs: int = 1,
) -> list[Result]:
    """Run `cases` against `implementation`, `jobs` at a time (each case uses connections of
    its own); `on_result` hears each as it ends. The results come back in `cases`' order."""
    gate = asyncio.Semaphore(max(1, jobs))

    async def one(case: Case) -> Result:
        async with gate:
            result = await run_one(case, implementation, timeout)
        if on_result is not None:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(c) for c in cases)))
