"""`soupbintcp top` in a real terminal: a pseudo-terminal, as over SSH, against a live server
with two clients (one stalled on purpose, so it sorts first), the screen read back and
checked, then `q` quits it."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable

import pytest

import soupbintcp
from soupbintcp import MemoryStore, serve
from soupbintcp.metrics import serve_metrics

from .server_support import CREDENTIALS, PASSWORD, SESSION, USER, stalled_socket
from .server_support import login_packet as login

SLOW = "slow"
# CSI sequences, OSC sequences, and the two-byte escapes rich uses (cursor, screen, colours).
_ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def screen_text(raw: bytes) -> str:
    """The last frame `top` drew, as plain text."""
    text = _ANSI.sub(b"", raw).decode("utf-8", errors="replace").replace("\r", "")
    return text[text.rfind("soupbintcp top ") :]


def read_until(fd: int, done: Callable[[bytes], bool], timeout: float) -> bytes:
    raw = b""
    deadline = time.monotonic() + timeout
    while not done(raw) and time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.02)
            continue
        except OSError:  # the child closed the terminal
            break
        raw += chunk
    return raw


@pytest.mark.parametrize("columns", [120, 46])
async def test_top_shows_the_clients_by_lag_and_quits_on_q(columns: int) -> None:
    """At 46 columns the text columns give way and the last ones go, but the numbers shown
    keep every digit (today's table cut them)."""
    store = MemoryStore(session_id=SESSION)
    credentials = {**CREDENTIALS, SLOW: PASSWORD}
    async with serve(("127.0.0.1", 0), store=store, credentials=credentials,
                     stall_timeout=None, write_buffer_high=16 * 1024) as server:  # fmt: skip
        reader = await soupbintcp.connect_async(server.address, USER, PASSWORD)
        stalled = stalled_socket(server.address, login(username=SLOW))
        while len(server.stream().connections) < 2:
            await asyncio.sleep(0.01)
        slow = next(c for c in server.connections if c.username == SLOW)
        while not slow.paused:
            server.publish_many([b"y" * 200] * 500)
            await asyncio.sleep(0.01)
        server.publish_many([b"y" * 200] * 4321)  # the stalled client's lag: 4,321 or more
        server.flush()
        while reader.next_sequence <= server.store.count:
            await reader.receive_batch()
        lag = slow.lag
        assert lag >= 4321

        with serve_metrics(("127.0.0.1", 0), server) as endpoint:
            master, child = pty.openpty()
            fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
            os.set_blocking(master, False)
            env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": "24"}
            top = subprocess.Popen(
                [sys.executable, "-m", "soupbintcp", "top", endpoint.url, "--interval", "0.2"],
                stdin=child, stdout=child, stderr=child, env=env, start_new_session=True,
            )  # fmt: skip
            os.close(child)
            try:
                want = f"{lag:,}".encode()

                def drawn(raw: bytes) -> bool:
                    # Two frames at least (the second has rates), with the stalled lag.
                    return raw.count(b"soupbintcp top ") >= 2 and want in raw

                raw = await asyncio.to_thread(read_until, master, drawn, 30)
                screen = screen_text(raw)
                assert drawn(raw), screen
                assert "2 clients (0 awaiting login)" in screen
                assert " ".join(screen.split()).count("logins 2, rejected 0") == 1
                host, port = slow.address
                if columns == 120:
                    rows = [line for line in screen.splitlines() if SESSION in line]
                    assert [row.split()[0] for row in rows] == [SLOW, USER]  # sorted by lag
                    slow_row = rows[0].replace("│", " ").split()
                    assert slow_row[:5] == [SLOW, f"{host}:{port}", SESSION,
                                            f"{slow.next_sequence:,}", f"{lag:,}"]  # fmt: skip
                    assert rows[1].replace("│", " ").split()[4] == "0"
                else:
                    cells = [line.replace("│", " ").split() for line in screen.splitlines()
                             if "│" in line]  # fmt: skip
                    assert len(cells) == 2, screen
                    assert all(len(line) <= columns for line in screen.splitlines()), screen
                    # user, address, session (shortened or not), next seq, lag: whole.
                    assert cells[0][3:5] == [f"{slow.next_sequence:,}", f"{lag:,}"], screen
                    assert cells[1][4] == "0", screen
                os.write(master, b"q")
                code = await asyncio.to_thread(top.wait, 10)
                assert code == 0
            finally:
                if top.poll() is None:
                    top.kill()
                    top.wait()
                os.close(master)
        stalled.close()
        await reader.close()


def top(url: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`soupbintcp top URL` with stdout a pipe, not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "soupbintcp", "top", url, "--interval", "0.2"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


async def test_top_without_a_terminal_says_it_needs_one() -> None:
    async with serve(("127.0.0.1", 0), store=MemoryStore(session_id=SESSION),
                     credentials=CREDENTIALS) as server:  # fmt: skip
        with serve_metrics(("127.0.0.1", 0), server) as endpoint:
            done = await asyncio.to_thread(top, endpoint.url)
    assert done.returncode != 0
    assert "needs a terminal" in done.stderr
    assert "stdout is not one" in done.stderr
    assert "no non-interactive mode" in done.stderr
    assert "\x1b[" not in done.stdout  # no screen drawn into the pipe


async def test_top_at_a_clients_metrics_says_so() -> None:
    async with serve(("127.0.0.1", 0), store=MemoryStore(session_id=SESSION),
                     credentials=CREDENTIALS) as server:  # fmt: skip
        client = await soupbintcp.connect_async(server.address, USER, PASSWORD)
        try:
            with serve_metrics(("127.0.0.1", 0), client) as endpoint:
                done = await asyncio.to_thread(top, endpoint.url)
        finally:
            await client.close()
    assert done.returncode != 0
    assert "a SoupBinTCP client's metrics" in done.stderr, done.stderr
    assert "serve --metrics" in done.stderr


async def test_top_at_a_soupbintcp_port_says_so() -> None:
    async with serve(("127.0.0.1", 0), store=MemoryStore(session_id=SESSION),
                     credentials=CREDENTIALS) as server:  # fmt: skip
        host, port = server.address[:2]
        done = await asyncio.to_thread(top, f"{host}:{port}")
    assert done.returncode != 0
    assert f"{host}:{port} is a SoupBinTCP port" in done.stderr, done.stderr
    assert "serve --metrics" in done.stderr
