"""The command line's log: levels from -q / -v / -vv, time to the millisecond, text or JSON."""

from __future__ import annotations

import json
import logging
import time

from ._common import stderr

__all__ = ["setup_logging"]


class _ConsoleHandler(logging.Handler):
    """Log lines through the rich console, so that they print above a live progress
    display instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if stderr.json_lines:  # a JSON line already: as it is
                stderr.file.write(self.format(record) + "\n")
                stderr.file.flush()
                return
            stderr.print(self.format(record), markup=False, highlight=False)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class _JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ms), level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = {
            "time": f"{moment}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


class _TextFormatter(logging.Formatter):
    """Time to the millisecond, then the message; warnings and errors say so first."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(message)s", "%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        if record.levelno >= logging.WARNING:
            stamp, _, message = line.partition(" ")
            line = f"{stamp} {record.levelname} {message}"
        return line


def setup_logging(verbose: int, quiet: bool = False, fmt: str = "text") -> None:
    """``-q``: warnings and errors only; default: what happens (INFO); ``-v``: the library's
    debug detail; ``-vv``: also asyncio's and every other library's debug lines."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = _ConsoleHandler()
    stderr.json_lines = fmt == "json"
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter())
    ours = logging.getLogger("soupbintcp")
    ours.handlers[:] = [handler]
    ours.setLevel(level)
    ours.propagate = False
    if verbose >= 2 and not quiet:
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(logging.DEBUG)
