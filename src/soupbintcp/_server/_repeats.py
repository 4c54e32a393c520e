"""Repeated warning lines, said once and then counted.

Layer 3 (server driver). A storm of hostile connections used to write one WARNING line each
(10,000 lines for 10,000 wrong passwords, issue 15). Lines of one kind (the same text once
its numbers are masked) are written as they come up to `burst` per `window` seconds; the
rest are counted and summed up in one line at the end of the window: "... and 9,999 more
like it in the last 10 s, the last: <line>".
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Final

__all__ = ["RepeatedLines", "kind_of"]

_WINDOW: Final = 10.0
_BURST: Final = 20
_MAX_KINDS: Final = 1000  # past that, kinds whose window is over are forgotten
_NUMBERS = re.compile(r"\d+")


def kind_of(text: str) -> str:
    """What makes lines alike: their text with every number masked."""
    return _NUMBERS.sub("#", text)


class _Kind:
    __slots__ = ("last", "level", "logged", "start", "suppressed", "timer")

    def __init__(self, start: float) -> None:
        self.start = start
        self.logged = 0
        self.suppressed = 0
        self.level = logging.WARNING
        self.last = ""
        self.timer: asyncio.TimerHandle | None = None


class RepeatedLines:
    """Writes lines to `logger`, aggregating those of a kind past `burst` per `window`."""

    __slots__ = ("_burst", "_kinds", "_logger", "_loop", "_window")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        logger: logging.Logger,
        *,
        window: float = _WINDOW,
        burst: int = _BURST,
    ) -> None:
        self._loop = loop
        self._logger = logger
        self._window = window
        self._burst = burst
        self._kinds: dict[str, _Kind] = {}

    def log(self, level: int, line: str, kind: str) -> None:
        if not self._logger.isEnabledFor(level):
            return
        now = self._loop.time()
        entry = self._kinds.get(kind)
        if entry is None or now >= entry.start + self._window:
            if entry is not None:
                self._summarize(kind)
            if len(self._kinds) >= _MAX_KINDS:
                self._forget_old(now)
            entry = self._kinds[kind] = _Kind(now)
        if entry.logged < self._burst:
            entry.logged += 1
            self._logger.log(level, "%s", line)
            return
        entry.suppressed += 1
        entry.level = max(entry.level, level)
        entry.last = line
        if entry.timer is None:
            entry.timer = self._loop.call_at(entry.start + self._window, self._summarize, kind)

    def _summarize(self, kind: str) -> None:
        entry = self._kinds.pop(kind, None)
        if entry is None:
            return
        if entry.timer is not None:
            entry.timer.cancel()
        if entry.suppressed:
            self._logger.log(
                entry.level,
                "... and %s more like it in the last %g s, the last: %s",
                f"{entry.suppressed:,}",
                self._window,
                entry.last,
            )

    def _forget_old(self, now: float) -> None:
        for kind, entry in list(self._kinds.items()):
            if now >= entry.start + self._window:
                self._summarize(kind)

    def flush(self) -> None:
        """Write every pending summary now (the server is closing)."""
        for kind in list(self._kinds):
            self._summarize(kind)
