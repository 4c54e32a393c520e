"""The implementations the conformance matrix is made of, each started by the tests: our
server, clients and MoldUDP64 transmitter, the server and client of `nasdaq-protocols` (PyPI)
and of `soupbintcp` on npm (node-soupbintcp, installed by `make test` into tests/peers/node).

The peers' servers leave replay to the application: each runs the same small feed app
(20 messages, replay from the requested number, 0 or beyond the end: new messages only,
credentials user/secret compared case-insensitively as the spec says, one session).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from nasdaq_protocols import common, soup

import soupbintcp
from soupbintcp import Dialect, serve
from soupbintcp.check import ClientTarget, Launched, command_launcher
from soupbintcp.store import MemoryStore

NODE_DIR = Path(__file__).resolve().parent / "peers" / "node"
HISTORY = [b"m%d" % i for i in range(1, 21)]
USER, PASSWORD = "user", "secret"

Launch = Callable[[str, int], Awaitable[Launched]]


def node_ready() -> bool:
    """Whether the npm peer can run; skips where node is absent, fails where it is present
    but `make test` did not install the peer (a missing install step must not hide)."""
    if shutil.which("node") is None:
        return False
    if not (NODE_DIR / "node_modules" / "soupbintcp").is_dir():
        pytest.fail("node is installed but the npm peer is not: run `make node-peers`")
    return True


class _Task:
    """An in-process client under test: a task, cancelled to stop it."""

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task


def our_client(dialect: str = "soupbintcp") -> Launch:
    """Our asyncio client, reconnecting, reading until stopped."""

    async def launch(host: str, port: int) -> Launched:
        async def run() -> None:
            client = await soupbintcp.connect_async(
                (host, port), USER, PASSWORD, reconnect=True, dialect=Dialect(dialect)
            )
            try:
                while True:
                    await client.receive_msg()
            finally:
                await client.close()

        return _Task(asyncio.create_task(run()))

    return launch


def nasdaq_client() -> Launch:
    """The client of nasdaq-protocols with its defaults, reading until stopped."""

    async def launch(host: str, port: int) -> Launched:
        async def run() -> None:
            session = await soup.connect_async((host, port), USER, PASSWORD)
            try:
                while True:
                    await session.receive_msg()
            finally:
                await session.close()

        return _Task(asyncio.create_task(run()))

    return launch


def node_client() -> Launch:
    return command_launcher(f"exec node {NODE_DIR / 'client.js'} {{host}} {{port}}")


def first_number(text: str) -> int:
    return int(text) if text.isdigit() else 1


def start_at(asked: int) -> int:
    """The feed app's rule: replay from the number asked; 0 or beyond the end: the next."""
    return len(HISTORY) + 1 if asked == 0 or asked > len(HISTORY) + 1 else asked


class NasdaqFeed(soup.SoupServerSession):  # type: ignore[misc]
    """The feed app on the server of nasdaq-protocols."""

    async def on_login(self, msg: Any) -> Any:
        if (msg.user.strip().lower(), msg.password.strip().lower()) != (USER, PASSWORD):
            return soup.LoginRejected(soup.LoginRejectReason.NOT_AUTHORIZED)
        if msg.session.strip() not in ("", "NQSESS"):
            return soup.LoginRejected(soup.LoginRejectReason.SESSION_NOT_AVAILABLE)
        start = start_at(first_number(msg.sequence.strip()))
        asyncio.get_running_loop().create_task(self._replay(start))
        return soup.LoginAccepted("NQSESS", start)

    async def _replay(self, start: int) -> None:
        await asyncio.sleep(0)  # Login Accepted goes out after on_login returns
        for data in HISTORY[start - 1 :]:
            self.send_seq_msg(data)

    async def on_unsequenced(self, msg: Any) -> None:
        pass


@contextlib.asynccontextmanager
async def nasdaq_server() -> AsyncIterator[tuple[str, int]]:
    server, task = await common.start_server(("127.0.0.1", 0), NasdaqFeed)
    try:
        yield "127.0.0.1", server.sockets[0].getsockname()[1]
    finally:
        server.close()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


@contextlib.asynccontextmanager
async def node_server() -> AsyncIterator[tuple[str, int]]:
    process = await asyncio.create_subprocess_exec(
        "node", str(NODE_DIR / "server.js"), "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 15)
        assert line.startswith(b"listening "), line
        yield "127.0.0.1", int(line.split()[1])
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


@contextlib.asynccontextmanager
async def our_server(dialect: str = "soupbintcp") -> AsyncIterator[tuple[str, int]]:
    store = MemoryStore()
    store.append_many(HISTORY)
    async with serve(
        ("127.0.0.1", 0),
        store=store,
        session_id="SESSION1",
        credentials={USER: PASSWORD},
        dialect=Dialect(dialect),
    ) as server:
        yield server.address


def client_target(launch: Launch, dialect: str = "soupbintcp") -> ClientTarget:
    return ClientTarget(dialect=dialect, launch=launch)
