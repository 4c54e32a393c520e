"""`soupbintcp serve --store nats://...` whose log never answers: it stops on a signal and says
what happened (issue 19, point 3; issue 26).

No NATS at all: the address names a port nothing listens on, as a typo would. The command
waits for the log, as a gateway with no cache or a writer must, and must still stop on the
first SIGINT/SIGTERM within its drain deadline, at once on a second, with honest log lines.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENV = {**os.environ, "SOUPBINTCP_PASSWORD": "secret", "PYTHONUNBUFFERED": "1"}
CLI = [sys.executable, "-m", "soupbintcp", "--loop", "asyncio"]

pytest.importorskip("nats")


def _dead_address() -> str:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"nats://127.0.0.1:{port}/FEED"


def _start(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "serve", "--store", _dead_address(), "--listen", "127.0.0.1:0", "--user", "u",
         "--cache", str(tmp_path / "cache.soup"), "--drain-timeout", "2", *extra],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=ENV,
    )  # fmt: skip


def _wait_for(proc: subprocess.Popen[str], text: str, lines: list[str]) -> None:
    assert proc.stderr is not None
    while not any(text in line for line in lines):
        line = proc.stderr.readline()
        assert line, f"ended before {text!r}: " + "".join(lines)
        lines.append(line)


def _finish(proc: subprocess.Popen[str], lines: list[str], within: float) -> float:
    """Seconds until `proc` exits (at most `within`); the rest of its stderr into `lines`."""
    started = time.monotonic()
    try:
        proc.wait(within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("still running: " + "".join(lines)) from None
    took = time.monotonic() - started
    assert proc.stderr is not None
    lines.extend(proc.stderr.readlines())
    return took


@pytest.mark.parametrize(
    ("role", "sig"),
    [
        pytest.param((), signal.SIGTERM, id="follower-SIGTERM"),
        pytest.param(("--generate", "100"), signal.SIGINT, id="writer-SIGINT"),
    ],
)
def test_a_gateway_whose_log_never_answers_stops_on_a_signal(
    tmp_path: Path, role: tuple[str, ...], sig: signal.Signals
) -> None:
    proc = _start(tmp_path, *role)
    lines: list[str] = []
    _wait_for(proc, "retrying", lines)
    time.sleep(0.5)  # into its reconnection attempts
    proc.send_signal(sig)
    took = _finish(proc, lines, 10)
    text = "".join(lines)
    assert proc.returncode == 0, text
    assert took < 2 + 2, text  # the drain deadline, and some
    assert "stopped before the log" in text
    # It never connected: nothing was lost, and every reason says something.
    assert "connection lost" not in text, text
    assert "()" not in text, text


def test_a_second_signal_stops_it_at_once(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--generate", "100")
    lines: list[str] = []
    _wait_for(proc, "retrying", lines)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    took = _finish(proc, lines, 5)
    assert took < 2, "".join(lines)
