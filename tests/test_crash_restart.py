"""The server process is killed with SIGKILL in the middle of publishing and restarted on the
same `FileStore` journal, several times per run, while clients with reconnect follow it.

What must hold ("one number, one message"):
- every message `publish` returned for is in the journal after the kill with
  `Durability.PUBLISH`; with `Durability.TIMER`, every message the store reported durable;
- every message any client received is in the journal, unchanged, under the same number
  (payloads name their number and the epoch of the server process that published them, so a
  message lost and numbered again by the next process cannot pass for the one a client has);
- in the end every client holds exactly the journal's messages from where it started to the
  last, contiguous, and the journal is messages 1..count with nothing torn in between.

The server process is `tests/crash_server.py`, started with `subprocess.Popen`.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

import soupbintcp
from soupbintcp import (
    AsyncClient,
    BlockingClient,
    CloseReason,
    Durability,
    FileStore,
    ReconnectPolicy,
    SessionEnded,
)

from .crash_server import PASSWORD, USER, payload
from .reliability_support import Receipt, Stopwatch, wait_until

SCRIPT = Path(__file__).with_name("crash_server.py")
# Quick to come back once the server listens again; keeps trying while it is down.
RECONNECT = ReconnectPolicy(initial_delay=0.005, max_delay=0.05)


class ServerProcess:
    """One run of crash_server.py, its stdout read by a thread as it comes."""

    def __init__(
        self, journal: Path, *, epoch: int, port: int, durability: Durability, log_dir: Path
    ) -> None:
        self.epoch = epoch
        self.port = 0
        self.start_count = -1
        self.published = 0  # the highest number publish has returned (reported)
        self.durable = 0  # the store's durable_count right after that
        self.ended: int | None = None
        self.errors: list[str] = []
        flush = "0.05" if durability is Durability.TIMER else "0.005"
        self._stderr = open(log_dir / f"server-{epoch}.err", "wb")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                str(journal),
                "--epoch",
                str(epoch),
                "--port",
                str(port),
                "--durability",
                durability.value,
                "--flush-interval",
                flush,
                "--seed",
                str(epoch),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stdout: IO[bytes]) -> None:
        for raw in stdout:
            word, *rest = raw.decode().split()
            if word == "published":
                self.published, self.durable = int(rest[0]), int(rest[1])
            elif word == "ready":
                self.port, self.start_count = int(rest[0]), int(rest[1])
            elif word == "ended":
                self.ended = int(rest[0])
            else:
                self.errors.append(raw.decode())

    async def ready(self) -> None:
        await wait_until(
            lambda: self.port != 0 or self.proc.poll() is not None, 20, "server process ready"
        )
        assert self.port, f"the server process exited: {self.stderr()}"

    def command(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait()
        assert self.proc.returncode == -signal.SIGKILL

    def wait(self) -> None:
        try:
            self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(timeout=20)
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
            self._stderr.close()
        assert not self.errors, self.errors

    def stderr(self) -> str:
        self._stderr.flush()
        return Path(self._stderr.name).read_text(errors="replace")[-3000:]


@dataclass
class Follower:
    """A client following the feed across the server's deaths, in a task or a thread."""

    name: str
    receipt: Receipt = field(default_factory=Receipt)
    client: AsyncClient | BlockingClient | None = None
    task: asyncio.Future[None] | None = None

    @property
    def reconnects(self) -> int:
        return 0 if self.client is None else self.client.reconnects


async def follow_async(address: tuple[str, int], follower: Follower, sequence: int) -> None:
    client = await asyncio.wait_for(
        soupbintcp.connect_async(address, USER, PASSWORD, sequence=sequence, reconnect=RECONNECT),
        10,
    )
    follower.client = client
    try:
        while True:
            try:
                follower.receipt.take(await asyncio.wait_for(client.receive_batch(), 30))
            except SessionEnded:
                break
        assert client.close_reason is CloseReason.END_OF_SESSION
    finally:
        await client.close()


def follow_blocking(address: tuple[str, int], follower: Follower, sequence: int) -> None:
    client: BlockingClient = soupbintcp.connect(
        address, USER, PASSWORD, sequence=sequence, reconnect=RECONNECT, connect_timeout=10
    )
    follower.client = client
    try:
        while True:
            try:
                follower.receipt.take(client.receive_batch(timeout=30))
            except SessionEnded:
                break
        assert client.close_reason is CloseReason.END_OF_SESSION
    finally:
        client.close()


def epoch_of(n: int, data: bytes) -> int:
    """Which epoch published `data`, checking that it is message `n` of that epoch."""
    number, tag, _ = data.split(b":", 2)
    assert int(number) == n, f"message {n} names itself {number!r}"
    epoch = int(tag[1:])
    assert data == payload(n, epoch), f"message {n} is damaged"
    return epoch


def check_journal(messages: list[bytes], epochs_started: int) -> None:
    """Messages 1..count, each intact, published by epochs in order."""
    last = 0
    for n, data in enumerate(messages, 1):
        epoch = epoch_of(n, data)
        assert last <= epoch < epochs_started, f"message {n} from epoch {epoch} after {last}"
        last = epoch


def check_received(follower: Follower, journal: list[bytes]) -> int:
    """Everything `follower` has received is in `journal` unchanged; returns how much."""
    receipt = follower.receipt
    have = len(receipt.messages)  # a snapshot: the blocking follower's thread appends
    if not have:
        return 0
    first = receipt.first
    assert first + have - 1 <= len(journal), (
        f"{follower.name} received up to {first + have - 1}, the journal holds {len(journal)}"
    )
    assert receipt.messages[:have] == journal[first - 1 : first - 1 + have], (
        f"{follower.name} received a message the journal does not hold under its number"
    )
    return have


async def all_have(followers: list[Follower], n: int) -> None:
    await wait_until(
        lambda: all(f.receipt.next > n for f in followers), 30, f"every client has message {n}"
    )


async def published_beyond(server: ServerProcess, target: int) -> None:
    await wait_until(lambda: server.published >= target, 30, f"publishing reaches {target}")


@dataclass
class CrashFigures:
    kills: int = 0
    messages: int = 0
    returned_not_durable_lost: int = 0  # TIMER: published, returned, lost at the kill
    torn_tails: int = 0
    reconnects: int = 0
    received: int = 0
    seconds: float = 0.0


async def crash_scenario(tmp_path: Path, durability: Durability, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    journal = tmp_path / "feed.soup"
    figures = CrashFigures()
    clock = Stopwatch()
    server = ServerProcess(journal, epoch=0, port=0, durability=durability, log_dir=tmp_path)
    followers: list[Follower] = []
    try:
        await server.ready()
        port = server.port
        address = ("127.0.0.1", port)
        # From the start: one asyncio client and one blocking client; a third joins later
        # asking only for new messages.
        first = Follower("async from 1")
        first.task = asyncio.ensure_future(follow_async(address, first, 1))
        second = Follower("blocking from 1")
        second.task = asyncio.ensure_future(asyncio.to_thread(follow_blocking, address, second, 1))
        followers += [first, second]
        for epoch in range(kills):
            await published_beyond(server, server.start_count + rng.randint(2_000, 12_000))
            # Every client is back and has messages of this very process: the kill hits a
            # live, followed stream.
            await all_have(followers, server.start_count + 1)
            server.kill()  # in the middle of publishing: it never pauses
            returned, durable = server.published, server.durable
            with FileStore(journal, readonly=True) as snapshot:
                count = snapshot.count
                figures.torn_tails += snapshot.recovered_bytes > 0
                messages = snapshot.read(1, count)
            if durability is Durability.PUBLISH:
                assert count >= returned, f"publish returned {returned}, journal has {count}"
            assert count >= durable, f"durable {durable} reported, journal has {count}"
            figures.returned_not_durable_lost += max(0, returned - count)
            check_journal(messages, epoch + 1)
            for follower in followers:
                check_received(follower, messages)
            figures.kills += 1
            server = ServerProcess(
                journal, epoch=epoch + 1, port=port, durability=durability, log_dir=tmp_path
            )
            await server.ready()
            assert server.start_count == count  # what the dead process left, as we read it
            if epoch == 0:
                late = Follower("async from new")
                late.task = asyncio.ensure_future(follow_async(address, late, 0))
                followers.append(late)
        await published_beyond(server, server.start_count + rng.randint(2_000, 5_000))
        server.command("end")
        await wait_until(lambda: server.ended is not None, 20, "end of session")
        await asyncio.wait_for(asyncio.gather(*(f.task for f in followers if f.task)), 60)
        server.command("quit")
        server.wait()
        assert server.proc.returncode == 0, server.stderr()
    finally:
        for follower in followers:
            if follower.task is not None:
                follower.task.cancel()
        if server.proc.poll() is None:
            server.kill()
    with FileStore(journal) as final:
        count = final.count
        assert count == server.ended
        messages = final.read(1, count)
    check_journal(messages, kills + 1)
    for follower in followers:
        receipt = follower.receipt
        # Exactly the journal, contiguous, from where the client started to the end.
        assert receipt.next == count + 1, f"{follower.name} ended at {receipt.next - 1}"
        assert check_received(follower, messages) == count - receipt.first + 1
        figures.received += len(receipt.messages)
        figures.reconnects += follower.reconnects
    assert followers[0].receipt.first == followers[1].receipt.first == 1
    assert all(f.reconnects >= kills for f in followers[:2])
    assert followers[2].reconnects >= kills - 1
    figures.messages = count
    figures.seconds = clock.elapsed
    print(
        f"\ncrash-restart ({durability.name}): {figures.kills} SIGKILLs survived, "
        f"{figures.messages} messages in the journal, {figures.received} received by "
        f"{len(followers)} clients over {figures.reconnects} reconnects, 0 lost or changed; "
        f"{figures.returned_not_durable_lost} returned-but-unflushed messages lost at kills "
        f"(none ever sent), {figures.torn_tails} torn tails cut, {figures.seconds:.1f} s"
    )


@pytest.mark.parametrize(
    "durability", [Durability.PUBLISH, Durability.TIMER], ids=lambda d: d.name.lower()
)
async def test_sigkill_and_restart_lose_nothing_sent_or_returned(
    tmp_path: Path, durability: Durability
) -> None:
    await asyncio.wait_for(crash_scenario(tmp_path, durability, kills=3, seed=21), 100)


@pytest.mark.long
@pytest.mark.timeout(400)
@pytest.mark.parametrize(
    "durability", [Durability.PUBLISH, Durability.TIMER], ids=lambda d: d.name.lower()
)
async def test_sigkill_and_restart_lose_nothing_sent_or_returned_long(
    tmp_path: Path, durability: Durability
) -> None:
    await asyncio.wait_for(crash_scenario(tmp_path, durability, kills=20, seed=22), 380)
