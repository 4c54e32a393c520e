"""Promises at the end of a session (issue 15, points 5 and 6): End of Session survives a
restart of `soupbintcp serve` on the same journal, and a shutdown drains the clients still
replaying so that they, too, see End of Session (or are told why not)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import soupbintcp
import soupbintcp.lowlevel
from soupbintcp import CloseReason, FileStore, LocalProtocolError, SessionEnded, StoreError
from soupbintcp.store import MemoryStore

from .attack_support import PASSWORD, USER, report, serve_attacked
from .server_support import login_packet, stalled_socket

SESSION_ID = "EOSTEST"
ENV = {**os.environ, "SOUPBINTCP_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}
CLI = [sys.executable, "-m", "soupbintcp", "--loop", "asyncio"]


def message(n: int) -> bytes:
    return b"msg-%07d-" % n + b"x" * (n % 40)


def make_journal(path: Path, count: int) -> Path:
    with FileStore(path, session_id=SESSION_ID) as store:
        for first in range(1, count + 1, 50_000):
            store.append_many(message(n) for n in range(first, min(count, first + 49_999) + 1))
    return path


class ServeProcess:
    """`soupbintcp serve` on a journal, in the background, until `terminate()`."""

    def __init__(self, journal: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--listen", "127.0.0.1:0", "--store", str(journal), "--user", USER,
             *args],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=ENV,
        )  # fmt: skip
        self.lines: list[str] = []

    async def started(self) -> tuple[str, int]:
        assert self.proc.stderr is not None
        while True:
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stderr.readline), 30)
            if not line:
                raise AssertionError("serve did not start: " + "".join(self.lines))
            self.lines.append(line)
            if m := re.search(r" on (127\.0\.0\.1):(\d+)", line):
                return (m[1], int(m[2]))

    async def terminate(self, timeout: float = 60) -> str:
        """SIGTERM, then wait for the process to end; its stderr."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(self.proc.communicate, None, timeout)
        return "".join(self.lines) + err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


async def read_to_the_end(client: soupbintcp.AsyncClient, timeout: float = 30) -> list[bytes]:
    """Every message until End of Session (or another end of the session)."""
    got: list[bytes] = []
    first = 0
    try:
        while True:
            for item in await asyncio.wait_for(client.receive_batch(), timeout):
                assert isinstance(item, soupbintcp.lowlevel.SequencedMessages), item
                if not first:
                    first = item.first_sequence
                assert item.first_sequence == first + len(got)
                got.extend(item.messages)
    except SessionEnded:
        return got


# --- point 5: End of Session survives a restart -----------------------------------------------


async def test_end_of_session_is_remembered_across_a_restart(tmp_path: Path) -> None:
    count = 2_000
    journal = make_journal(tmp_path / "feed.soup", count)
    first = ServeProcess(journal)
    try:
        address = await first.started()
        client = await soupbintcp.connect_async(address, USER, PASSWORD, sequence=1)
        while client.queued < count:  # everything, before the shutdown
            await asyncio.sleep(0.01)
        await first.terminate()  # Ctrl-C / SIGTERM: End of Session
        assert await read_to_the_end(client) == [message(n) for n in range(1, count + 1)]
        assert client.close_reason is CloseReason.END_OF_SESSION
    finally:
        first.kill()
    # The same journal served again: the same session, still ended.
    second = ServeProcess(journal)
    try:
        address = await second.started()
        replaying = await soupbintcp.connect_async(address, USER, PASSWORD, sequence=1)
        rest = await read_to_the_end(replaying, timeout=10)
        late = await soupbintcp.connect_async(address, USER, PASSWORD, sequence=count + 1)
        after = await read_to_the_end(late, timeout=10)
        report(
            "5 restart after End of Session",
            size=f"{count} messages, SIGTERM, restart on the same journal",
            replayed_after_restart=len(rest),
            end_of_session_after_restart=replaying.close_reason is CloseReason.END_OF_SESSION,
            lost=count - len(rest),
        )
        assert rest == [message(n) for n in range(1, count + 1)]
        assert replaying.close_reason is CloseReason.END_OF_SESSION
        assert after == []
        assert late.close_reason is CloseReason.END_OF_SESSION
        await second.terminate()
    finally:
        second.kill()
    with FileStore(journal) as store:
        assert store.count == count  # nothing appended past the end
        assert store.session_ended
    # Publishing into it is refused, and says what to do instead.
    generating = subprocess.run(
        [*CLI, "serve", "--listen", "127.0.0.1:0", "--store", str(journal), "--user", USER,
         "--generate", "100"],
        capture_output=True, text=True, env=ENV, timeout=60, check=False,
    )  # fmt: skip
    assert generating.returncode != 0
    assert "has ended" in generating.stderr
    assert "new --store" in generating.stderr


async def test_publishing_into_an_ended_session_is_refused(tmp_path: Path) -> None:
    journal = make_journal(tmp_path / "feed.soup", 10)
    with FileStore(journal) as store:
        server = await soupbintcp.serve(("127.0.0.1", 0), store=store, credentials={USER: "x"})
        await server.end_session()
        await server.close()
    with FileStore(journal) as store:
        server = await soupbintcp.serve(("127.0.0.1", 0), store=store, credentials={USER: "x"})
        try:
            assert server.session_ended
            with pytest.raises(LocalProtocolError, match=r"ended.*start"):
                server.publish(b"one more")
            assert store.count == 10
        finally:
            await server.close()


# --- point 6: shutdown drains the clients still replaying -----------------------------------


async def test_shutdown_lets_replaying_clients_finish_and_see_end_of_session(
    tmp_path: Path,
) -> None:
    count = 300_000
    journal = make_journal(tmp_path / "feed.soup", count)
    serving = ServeProcess(journal)
    try:
        address = await serving.started()
        # A client replaying the journal, slower than the server: its queue fills and it
        # stops reading for a while, as a busy consumer does.
        client = await soupbintcp.connect_async(address, USER, PASSWORD, sequence=1, max_queue=2000)
        await asyncio.sleep(0.3)
        stopping = asyncio.get_running_loop().create_task(serving.terminate())
        await asyncio.sleep(1.5)  # past the second the server gave such clients before
        got = await read_to_the_end(client)
        log = await stopping
        report(
            "6 shutdown while a client replays",
            size=f"{count:,} messages to replay, SIGTERM 0.3 s in, the client reading 1.8 s in",
            received=len(got),
            end_of_session=client.close_reason is CloseReason.END_OF_SESSION,
            lost=count - len(got),
        )
        assert len(got) == count
        assert got[-1] == message(count)
        assert client.close_reason is CloseReason.END_OF_SESSION
        assert serving.proc.returncode == 0, log
    finally:
        serving.kill()


async def test_drain_timeout_closes_a_client_that_does_not_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "soupbintcp.server")
    store = MemoryStore(session_id="DRAIN")
    store.append_many(message(n) for n in range(1, 200_001))
    server = await serve_attacked(store=store, drain_timeout=0.5)
    try:
        stalled = await asyncio.to_thread(
            stalled_socket, server.address, login_packet(USER, PASSWORD)
        )
        reader = await soupbintcp.connect_async(server.address, USER, PASSWORD, sequence=1)
        while len(server.connections) < 2:
            await asyncio.sleep(0.01)
        conns = server.connections
        await server.end_session()
        closing = asyncio.get_running_loop().create_task(server.close())
        got = await read_to_the_end(reader)
        await asyncio.wait_for(closing, 30)
        reasons = sorted(str(c.close_reason) for c in conns)
        assert len(got) == 200_000
        assert reader.close_reason is CloseReason.END_OF_SESSION
        assert any("drain timeout" in r for r in reasons), reasons
        assert any("end of session" in r for r in reasons), reasons
        stalled.close()
    finally:
        await server.close()


async def test_serve_drain_timeout_option(tmp_path: Path) -> None:
    journal = make_journal(tmp_path / "feed.soup", 200_000)
    serving = ServeProcess(journal, "--drain-timeout", "0.5")
    try:
        address = await serving.started()
        stalled = await asyncio.to_thread(stalled_socket, address, login_packet(USER, PASSWORD))
        await asyncio.sleep(0.3)
        log = await serving.terminate(timeout=30)
        stalled.close()
        assert serving.proc.returncode == 0, log
        assert "drain timeout" in log, log
    finally:
        serving.kill()


def test_a_journal_remembers_that_its_session_ended(tmp_path: Path) -> None:
    journal = make_journal(tmp_path / "feed.soup", 3)
    with FileStore(journal) as store:
        assert not store.session_ended
        store.append(b"four")
        store.end_session()
        store.end_session()  # once is enough; twice is harmless
        with pytest.raises(StoreError, match="has ended"):
            store.append(b"five")
    with FileStore(journal) as store:
        assert store.session_ended
        assert store.count == 4
        assert store.read(1, 4) == [message(1), message(2), message(3), b"four"]
        with pytest.raises(StoreError, match="has ended"):
            store.append_many([b"x"])
        with pytest.raises(StoreError, match="has ended"):
            store.append_frames(b"\x00\x02Sx", 1)
        assert store.count == 4
    with FileStore(journal, readonly=True) as store:
        assert store.session_ended
    fresh = make_journal(tmp_path / "other.soup", 1)
    with FileStore(fresh) as store:
        assert not store.session_ended
