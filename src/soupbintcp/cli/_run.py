"""Running a command's coroutine: the one event loop choice of the command line."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from ._common import UserError

__all__ = ["run_async"]


def run_async(coro: Coroutine[Any, Any, int], loop: str = "auto") -> int:
    """Run `coro` on uvloop when it is installed (or asked for), else stock asyncio."""
    factory = None
    if loop in ("auto", "uvloop"):
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            if loop == "uvloop":
                raise UserError("uvloop is not installed: pip install 'soupbintcp[fast]'") from None
    # SIGTERM is Ctrl-C (`_app.run` makes it so): the runner cancels the command, whose
    # summary is printed. Commands that drain handle both themselves (`_signals.Stop`).
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)
