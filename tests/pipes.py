"""Finish a child process whose pipes the test has already read with readline().

`Popen.communicate(timeout=...)` reads the raw file descriptors, so whatever readline()
had pulled into the file object's buffer beyond the line it returned is silently lost:
under load, lines a server logged right after the one a test waited for went missing
(`test_paced_replay_ends_the_session_by_itself` lost "replay done"). This reads through
the file objects instead.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import IO, Any


def finish(proc: subprocess.Popen[Any], timeout: float = 30) -> tuple[str, str]:
    """Wait for `proc` to end (killing it after `timeout` s) and return the rest of its
    stdout and stderr, "" for a stream that is not a pipe."""
    rest: dict[int, str] = {}

    def drain(index: int, stream: IO[Any] | None) -> None:
        if stream is None or stream.closed:  # not a pipe, or finished already
            rest[index] = ""
            return
        data = stream.read()
        rest[index] = data.decode() if isinstance(data, bytes) else data

    readers = [
        threading.Thread(target=drain, args=(i, s), daemon=True)
        for i, s in enumerate((proc.stdout, proc.stderr))
    ]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for reader in readers:
        reader.join(timeout)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return rest.get(0, ""), rest.get(1, "")


def read_until(proc: subprocess.Popen[str], text: str, timeout: float = 30) -> str:
    """stderr lines up to the one holding `text` (AssertionError if the process ends first,
    or after `timeout`, with everything it said)."""
    assert proc.stderr is not None
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return "".join(lines)
    proc.kill()
    raise AssertionError(f"never saw {text!r}: " + "".join(lines) + finish(proc)[1])
