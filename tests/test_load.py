"""Load on loopback: hundreds of concurrent clients, each logging in at its own sequence and
receiving the whole stream while publishing goes on; and a flood of connections that never
log in, closed at the login timeout without starving the logged-in clients.

CI runs 500 clients; the `long` variant (`make test-long`) 1,000 over a longer stream.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import IO, Any

import pytest

import soupbintcp
from soupbintcp import FileStore, Server, SessionEnded, serve
from soupbintcp.lowlevel import LoginAcceptedPacket, SequencedMessages

from .reliability_support import (
    CREDENTIALS,
    PASSWORD,
    SESSION,
    USER,
    Stopwatch,
    numbered,
    numbered_range,
    raise_nofile,
    wait_until,
)

FLOOD = Path(__file__).with_name("idle_flood.py")


# --- many clients ------------------------------------------------------------------------------


async def many_clients(journal: Path, clients: int, history: int, seed: int) -> None:
    """`clients` clients log in one after another at their own sequence numbers while the
    server publishes on; each receives from there to End of Session, exactly once, in
    order. They stay connected until the end, so the server holds all of them at once."""
    raise_nofile(2 * clients + 256)  # both ends of every connection live in this process
    rng = random.Random(seed)
    everything = numbered_range(1, history + 500_000)
    clock = Stopwatch()
    with FileStore(journal, session_id=SESSION) as store:
        store.append_many(everything[:history])
        async with serve(
            ("127.0.0.1", 0),
            store=store,
            session_id=SESSION,
            credentials=CREDENTIALS,
            backlog=1024,
            max_pending_logins=clients + 10,
            heartbeat_interval=1.0,
            client_heartbeat_timeout=60,
        ) as server:
            logins = received = 0
            # A different starting sequence for each client: 0 (new only), 1, the head of the
            # history and just past it, far beyond the head, and the rest spread over the
            # history and the first live messages.
            special = [0, 1, history, history + 1, 10**9]
            pool = [n for n in range(2, history + 5_000) if n not in special]
            starts = special + rng.sample(pool, clients - len(special))

            async def follower(requested: int) -> None:
                nonlocal logins, received
                accepted: list[int] = []

                def status(event: object) -> None:
                    if isinstance(event, LoginAcceptedPacket):
                        accepted.append(event.sequence)

                await asyncio.sleep(rng.random())  # logins land all along the publishing
                client = await asyncio.wait_for(
                    soupbintcp.connect_async(
                        server.address,
                        USER,
                        PASSWORD,
                        sequence=requested,
                        on_status=status,
                        heartbeat_timeout=60,
                    ),
                    30,
                )
                logins += 1
                try:
                    expected = accepted[0]
                    if 1 <= requested <= history:
                        assert expected == requested
                    while True:
                        try:
                            items = await asyncio.wait_for(client.receive_batch(), 60)
                        except SessionEnded:
                            break
                        for item in items:
                            assert type(item) is SequencedMessages
                            assert item.first_sequence == expected  # no gap, no duplicate
                            end = item.next_sequence
                            assert item.messages == everything[expected - 1 : end - 1]
                            expected = end
                    assert expected == store.count + 1  # everything, to the last message
                    received += expected - accepted[0]
                finally:
                    await client.close()

            tasks = [asyncio.ensure_future(follower(s)) for s in starts]
            try:
                # Publish until every client has logged in, and a little more.
                n = history + 1
                extra = 20
                while logins < clients or extra:
                    extra -= logins == clients
                    assert n + 100 <= len(everything), "publishing outran the test's payloads"
                    assert server.publish_many(everything[n - 1 : n + 99]) == n
                    n += 100
                    await asyncio.sleep(0.005)
                    for task in tasks:
                        if task.done():
                            task.result()  # a follower failed: say why now
                held = sum(c.logged_in for c in server.connections)
                await server.end_session()
                await asyncio.wait_for(asyncio.gather(*tasks), 300)
            finally:
                for task in tasks:
                    task.cancel()
            assert held == clients  # all of them at once
    print(
        f"\n{clients} concurrent clients held, each from its own sequence while publishing: "
        f"{received} messages delivered ({n - 1 - history} published live), 0 lost, "
        f"0 duplicated, {clock.elapsed:.1f} s"
    )


async def test_concurrent_clients_each_from_its_own_sequence(tmp_path: Path) -> None:
    await many_clients(tmp_path / "feed.soup", clients=500, history=10_000, seed=31)


@pytest.mark.long
@pytest.mark.timeout(400)
async def test_concurrent_clients_each_from_its_own_sequence_long(tmp_path: Path) -> None:
    await many_clients(tmp_path / "feed.soup", clients=1000, history=20_000, seed=32)


# --- the idle flood ----------------------------------------------------------------------------


class Replayer:
    """A steady load to sample: one logged-in client after another replays the whole
    journal as fast as the server sends it (exactly once, in order, checked)."""

    def __init__(self, server: Server, count: int) -> None:
        self.server = server
        self.count = count
        self.received = 0
        self.stopping = False

    async def run(self) -> None:
        # asyncio.timeout, not wait_for: on 3.11, wait_for can swallow a cancellation that
        # arrives as the awaited call completes, and this loop would never stop.
        while not self.stopping:
            async with asyncio.timeout(10):
                client = await soupbintcp.connect_async(
                    self.server.address, USER, PASSWORD, sequence=1
                )
            try:
                expected = 1
                while expected <= self.count and not self.stopping:
                    async with asyncio.timeout(30):
                        items = await client.receive_batch()
                    for item in items:
                        assert type(item) is SequencedMessages
                        assert item.first_sequence == expected
                        assert item.messages[0] == numbered(expected)
                        expected = item.next_sequence
                        self.received += len(item.messages)
            finally:
                await client.close()

    async def rate(self, window: Awaitable[object]) -> tuple[float, float]:
        """Messages received while `window` is awaited: per second of wall time, and per
        second of this process's CPU time (server and client share its one event loop)."""
        n, start, cpu = self.received, time.perf_counter(), time.process_time()
        await window
        got = self.received - n
        return got / (time.perf_counter() - start), got / (time.process_time() - cpu)


async def read_line(stream: IO[bytes], timeout: float) -> str:
    line = await asyncio.wait_for(asyncio.to_thread(stream.readline), timeout)
    assert line, "the flood process ended early"
    return line.decode().strip()


async def idle_flood(journal: Path, *, idle: int, churn: float, min_ratio: float) -> None:
    """`idle` connections that never log in, against a server with a 0.5 s login timeout,
    while a logged-in client replays the journal: a single wave (`churn` 0), or for `churn`
    seconds each closed connection replaced at once. Compares the client's rate with the
    rate just before and just after (their mean), and checks every idle connection was
    closed by the server, at the login timeout, not earlier, none left open."""
    # Long enough that even a loaded machine accepts the whole wave before the first of it
    # times out (at 0.5 s, the peak of pending logins was sometimes never reached).
    login_timeout = 2.0
    raise_nofile(2 * idle + 256)
    history = 500_000
    with FileStore(journal, session_id=SESSION) as store:
        for first in range(1, history + 1, 50_000):
            store.append_many(numbered_range(first, first + 49_999))
        async with serve(
            ("127.0.0.1", 0),
            store=store,
            session_id=SESSION,
            credentials=CREDENTIALS,
            login_timeout=login_timeout,
            max_pending_logins=3 * idle,
            backlog=2048,
        ) as server:
            replayer = Replayer(server, history)
            load = asyncio.ensure_future(replayer.run())
            host, port = server.address
            command = [sys.executable, str(FLOOD), host, str(port), str(idle), "--go"]
            command += ["--churn"] if churn else []
            flood = subprocess.Popen(
                [*command, "--login-timeout", str(login_timeout)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert flood.stdin is not None
            assert flood.stdout is not None
            stdin, stdout = flood.stdin, flood.stdout
            pending = 0
            result: dict[str, Any] = {}

            def pending_logins() -> int:
                return sum(not c.logged_in for c in server.connections)

            async def flooded_window() -> None:
                nonlocal pending
                stdin.write(b"go\n")
                stdin.flush()
                assert await read_line(stdout, 30) == "ready"
                await wait_until(lambda: pending_logins() >= idle * 0.9, 10, "flood accepted")
                pending = pending_logins()
                if churn:
                    await asyncio.sleep(churn)
                    stdin.write(b"stop\n")
                    stdin.flush()
                # The flood is over once the server has closed every idle connection.
                result.update(json.loads(await read_line(stdout, 60)))

            try:
                await asyncio.sleep(0.3)  # warm up
                window = 1.0 + churn
                before, before_cpu = await replayer.rate(asyncio.sleep(window))
                flooded, flooded_cpu = await replayer.rate(flooded_window())
                after, after_cpu = await replayer.rate(asyncio.sleep(window))
            finally:
                replayer.stopping = True
                done, _ = await asyncio.wait([load], timeout=10)
                if not done:
                    load.cancel()
                    await asyncio.gather(load, return_exceptions=True)
                if done:
                    load.result()  # the replays were all exactly once, in order
                if flood.poll() is None:
                    flood.kill()
                flood.wait(10)
                stdin.close()
                stdout.close()
            await wait_until(lambda: not server.connections, 10, "every connection closed")
    quiet = (before + after) / 2
    ratio = flooded / quiet
    # Starvation is the loop spending its time on the idle connections (accepts, timers,
    # closes) instead of the client: messages per CPU-second of this process fall. Wall time
    # also counts the CPU the flood process and anything else on the machine take from us
    # (on 2 shared cores that alone gave 0.15x), so the bound is on CPU time.
    ratio_cpu = flooded_cpu / ((before_cpu + after_cpu) / 2)
    kind = f"churn for {churn:g} s" if churn else "one wave"
    print(
        f"\nidle flood ({kind}): "
        f"{result['closed']} never-logged-in connections closed by the server at the login "
        f"timeout ({login_timeout} s; lifetime min {result['min']:.2f} / median "
        f"{result['median']:.2f} / max {result['max']:.2f} s; {pending} pending at once), "
        f"{result['refused']} refused, {result['left_open']} left open; a logged-in client "
        f"received {quiet:,.0f} msg/s without ({before:,.0f} before, {after:,.0f} after) and "
        f"{flooded:,.0f} msg/s during the flood: {ratio:.2f}x wall, {ratio_cpu:.2f}x per CPU-second"
    )
    assert result["left_open"] == 0
    assert result["refused"] == 0
    assert result["unexpected_data"] == 0
    assert result["closed"] == result["opened"] >= idle
    # The server cannot close before the login timeout (its clock starts after our connect).
    assert result["min"] >= login_timeout * 0.9
    assert pending >= idle * 0.9
    assert ratio_cpu >= min_ratio


async def test_idle_flood_closed_at_login_timeout_without_starving_clients(
    tmp_path: Path,
) -> None:
    # Per CPU-second measured 0.83-0.84x with two busy loops on the 2 cores (the wall ratio
    # then ranged 0.70-1.09x, and 0.15x was once seen); half of it catches starvation.
    await idle_flood(tmp_path / "feed.soup", idle=1000, churn=0, min_ratio=0.4)


@pytest.mark.long
@pytest.mark.timeout(300)
async def test_sustained_idle_flood_closed_at_login_timeout_without_starving_clients(
    tmp_path: Path,
) -> None:
    """1,000 idle connections kept up for 5 s: each one closed is replaced at once, about
    2,000 new connections a second, each accepted, timed and closed by the same event loop
    as the logged-in client's: a harsher load than one wave, hence the lower bound."""
    await idle_flood(tmp_path / "feed.soup", idle=1000, churn=5.0, min_ratio=0.2)
