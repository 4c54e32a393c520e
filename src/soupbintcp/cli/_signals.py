"""Ctrl-C and SIGTERM, the same way in every long-running command.

The first SIGINT or SIGTERM asks the command to stop: it finishes what it must (a server
drains its clients, a transmitter sends End of Session) within its deadline and says what it
is waiting for. The second stops it at once. Commands that have no draining to do (`tail`,
`record`, ...) get the first as an interruption: `run_async` turns SIGTERM into SIGINT, so
their summary is printed either way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from ._common import stderr

__all__ = ["Stop"]


class Stop:
    """`event` is set by the first SIGINT or SIGTERM; the second exits at once (status 130).
    Make it on the command's event loop."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._waiting = ""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._signal, sig)

    def set(self) -> None:
        """Stop as if asked (the command's own reason: an error, an end reached)."""
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()

    def waiting(self, what: str) -> None:
        """Say what the command waits for now that it stops; a second signal skips it."""
        self._waiting = what
        stderr.print(f"waiting for {what} (Ctrl-C again to stop now)")

    def _signal(self, sig: int) -> None:
        if not self.event.is_set():
            self.event.set()
            return
        skipped = f", not waiting for {self._waiting}" if self._waiting else ""
        stderr.print(f"{signal.Signals(sig).name} again: stopping now{skipped}")
        sys.stderr.flush()
        os._exit(130)
