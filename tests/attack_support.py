"""Shared by the attack suite (tests/test_attack_*.py): an honest client that must receive
every message exactly once, in order, with its latency measured; the server's memory read
from /proc; attackers run as a separate process (tests/attacker.py) so that their own CPU
does not count against the server under test; figures printed for docs/reliability.md.

Every attack is black-box: loopback only, through `soupbintcp.serve(...)` or the
`soupbintcp serve` command, bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import soupbintcp
from soupbintcp import AsyncClient, Server
from soupbintcp.lowlevel import SequencedMessages

USER, PASSWORD, SESSION = "honest", "secret", "ATTACK1"
ATTACKER, ATTACKER_PASSWORD = "evil", "evil1"
CREDENTIALS = {USER: PASSWORD, ATTACKER: ATTACKER_PASSWORD}
ATTACKER_SCRIPT = Path(__file__).with_name("attacker.py")
LOOPBACK = "127.0.0.1"


# --- memory ------------------------------------------------------------------------------------


def rss(pid: int | None = None) -> int:
    """Resident set size of process `pid` (this one by default) in bytes, from /proc."""
    with open(f"/proc/{pid or 'self'}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/.../status")


class RssSampler:
    """Samples a process's RSS every few milliseconds from a thread: before, peak, after."""

    def __init__(self, pid: int | None = None, interval: float = 0.005) -> None:
        self.pid = pid
        self.interval = interval
        self.before = rss(pid)
        self.peak = self.before
        self.after = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss(self.pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.after = rss(self.pid)
        self.peak = max(self.peak, self.after)

    @property
    def growth(self) -> int:
        """Peak over before, in bytes."""
        return self.peak - self.before

    def figures(self) -> dict[str, float]:
        mib = 1024 * 1024
        return {
            "rss_before_mib": round(self.before / mib, 1),
            "rss_peak_mib": round(self.peak / mib, 1),
            "rss_after_mib": round(self.after / mib, 1),
        }


# --- the honest client -------------------------------------------------------------------------


def stamped(n: int, pad: int = 0) -> bytes:
    """Message `n`: names its number (checked on receipt) and when it was published."""
    return b"%d:%d:honest" % (n, time.perf_counter_ns()) + b"." * pad


@dataclass
class HonestFeed:
    """The server publishes message n every `interval` s; an honest client receives them.

    `measure(seconds)` publishes for that long and returns the latencies (publish to the
    client handing the message out) of what it published then. `finish()` checks the client
    got messages 1..N, each exactly once, in order, each the right one.
    """

    server: Server
    client: AsyncClient
    interval: float = 0.002
    published: int = 0
    received: list[bytes] = field(default_factory=list)
    latency: dict[int, float] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None
    error: BaseException | None = None

    def start(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                for item in await self.client.receive_batch():
                    now = time.perf_counter_ns()
                    assert type(item) is SequencedMessages, f"unexpected {item!r}"
                    assert item.first_sequence == len(self.received) + 1, (
                        f"gap or duplicate: got {item.first_sequence}, "
                        f"expected {len(self.received) + 1}"
                    )
                    for i, data in enumerate(item.messages):
                        n, stamp, _ = data.split(b":")
                        assert int(n) == item.first_sequence + i, (n, item.first_sequence + i)
                        self.latency[int(n)] = (now - int(stamp)) / 1e9
                    self.received.extend(item.messages)
        except soupbintcp.SessionEnded:
            return
        except BaseException as exc:
            self.error = exc
            raise

    def publish(self, pad: int = 0) -> None:
        self.published += 1
        self.server.publish(stamped(self.published, pad))

    async def measure(self, seconds: float) -> list[float]:
        """Publish for `seconds`; the latencies of those messages once all arrived."""
        first = self.published + 1
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            self.publish()
            await asyncio.sleep(self.interval)
        last = self.published
        await self.wait_received(last)
        return [self.latency[n] for n in range(first, last + 1)]

    async def wait_received(self, last: int, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.received) < last:
            if self.error is not None:
                raise AssertionError(f"the honest client failed: {self.error!r}")
            if loop.time() > deadline:
                raise AssertionError(
                    f"the honest client got {len(self.received)} of {last} messages "
                    f"within {timeout:g} s"
                )
            await asyncio.sleep(0.005)

    async def finish(self) -> None:
        """Everything published reached the honest client exactly once, in order."""
        self.publish()
        await self.wait_received(self.published)
        assert len(self.received) == self.published
        for n, data in enumerate(self.received, 1):
            assert data.split(b":")[0] == b"%d" % n
        assert self.error is None


@contextlib.asynccontextmanager
async def honest_feed(server: Server, interval: float = 0.002) -> AsyncIterator[HonestFeed]:
    client = await soupbintcp.connect_async(server.address, USER, PASSWORD, sequence=1)
    feed = HonestFeed(server, client, interval)
    feed.start()
    try:
        yield feed
    finally:
        if feed._reader is not None:
            feed._reader.cancel()
            with contextlib.suppress(BaseException):
                await feed._reader
        await client.close()


def median_ms(latencies: list[float]) -> float:
    return round(statistics.median(latencies) * 1000, 3) if latencies else 0.0


def latency_figures(quiet: list[float], attacked: list[float]) -> dict[str, float]:
    q, a = median_ms(quiet), median_ms(attacked)
    return {
        "honest_p50_quiet_ms": q,
        "honest_p50_attack_ms": a,
        "honest_latency_ratio": round(a / q, 2) if q else 0.0,
    }


# --- attackers in their own process ------------------------------------------------------------


class Attacker:
    """tests/attacker.py MODE ... in the background; `result()` is its JSON report."""

    def __init__(self, mode: str, address: tuple[str, int], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ATTACKER_SCRIPT), mode, address[0], str(address[1]), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self._lines: list[str] = []

    async def ready(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for its `ready` line (printed once its connections are up)."""
        line = await self._line(timeout)
        assert line.startswith("ready"), line
        return json.loads(line[5:] or "{}")  # type: ignore[no-any-return]

    async def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"attacker ended without a report: {err}")
        return line

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    async def result(self, timeout: float = 60.0) -> dict[str, Any]:
        """Tell it to stop (if it waits for that) and read its report."""
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
        return json.loads(await self._line(timeout))  # type: ignore[no-any-return]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):  # "stop" still buffered for a dead process
                    pipe.close()


@contextlib.asynccontextmanager
async def attacker(mode: str, address: tuple[str, int], *args: str) -> AsyncIterator[Attacker]:
    proc = Attacker(mode, address, *args)
    try:
        yield proc
    finally:
        proc.kill()


# --- figures -----------------------------------------------------------------------------------


def report(point: str, **figures: Any) -> None:
    """One line of figures per attack (`-s` shows them); with ATTACK_FIGURES set, also
    appended there as JSON, the source of the table in docs/reliability.md."""
    line = json.dumps({"attack": point, **figures})
    print(f"ATTACK {line}")
    path = os.environ.get("ATTACK_FIGURES")
    if path:
        with open(path, "a") as out:
            out.write(line + "\n")


async def serve_attacked(**options: Any) -> Server:
    """A server for an attack: the defaults of `serve()` unless a test says otherwise."""
    from soupbintcp.store import MemoryStore

    options.setdefault("credentials", CREDENTIALS)
    if "store" not in options and "user_store" not in options:
        options["store"] = MemoryStore(session_id=SESSION)
    return await soupbintcp.serve((LOOPBACK, 0), **options)
