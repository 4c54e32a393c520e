"""The client under test, as the client cases meet it: the suite listens, the client connects.

Layer 4. Each case gets a listener of its own and, when the suite is given a way to start
the client (`launch`, e.g. the `--run` command), a client started for it and stopped after
it. A launch that takes the port lets cases run side by side; a fixed port (a client that
reconnects by itself) means one case at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ._case import Failed, NotApplicable, shown
from ._link import Closed, Link
from ._packets import parse_login_request, parse_number

__all__ = ["ClientRun", "ClientTarget", "Launched", "LoginFields", "command_launcher"]


class Launched(Protocol):
    """A client under test started for one case."""

    async def stop(self) -> None:
        """Stop the client (the suite is done with it)."""
        ...


Launch = Callable[[str, int], Awaitable[Launched]]


@dataclass(frozen=True)
class LoginFields:
    """A Login Request as the client sent it."""

    payload: bytes
    user: bytes
    password: bytes
    session: bytes
    sequence_field: bytes
    timeout_field: bytes | None

    @property
    def sequence(self) -> int | None:
        return parse_number(self.sequence_field)


class ClientRun:
    """One case's listener: the connections the client under test makes to it."""

    def __init__(self) -> None:
        self._incoming: asyncio.Queue[Link] = asyncio.Queue()
        self.links: list[Link] = []

    async def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = Link(reader, writer)
        self.links.append(link)
        await self._incoming.put(link)

    async def accept(self, timeout: float = 10.0) -> Link:
        """The client's next connection; `Failed` if it does not come within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                return await self._incoming.get()
        except TimeoutError:
            raise Failed(f"the client did not connect within {timeout:g} s") from None

    async def reconnect(self, timeout: float = 5.0) -> Link:
        """The client's next connection; `NotApplicable` if it does not reconnect by itself."""
        try:
            async with asyncio.timeout(timeout):
                return await self._incoming.get()
        except TimeoutError:
            raise NotApplicable(f"the client did not reconnect within {timeout:g} s") from None

    async def login(self, timeout: float = 10.0) -> tuple[Link, LoginFields]:
        """The next connection and its Login Request (`Failed` if it sends anything else)."""
        link = await self.accept(timeout)
        return link, await read_login(link)

    async def reconnect_login(self, timeout: float = 5.0) -> LoginFields:
        """The Login Request of the client's next connection (`NotApplicable`: none)."""
        return await read_login(await self.reconnect(timeout))


async def read_login(link: Link) -> LoginFields:
    try:
        kind, payload = await link.next_of(5)
    except Closed:
        raise Failed("the client closed without sending a Login Request") from None
    except TimeoutError:
        raise Failed("no Login Request within 5 s of connecting") from None
    if kind != b"L":
        raise Failed(f"the first non-Debug packet is {shown(kind + payload)}, not a Login Request")
    if len(payload) < 46:
        raise Failed(f"a Login Request of {len(payload)} bytes: {shown(payload)}")
    return LoginFields(payload, *parse_login_request(payload))


@dataclass
class ClientTarget:
    """Where the suite listens and how it gets the client under test to connect."""

    host: str = "127.0.0.1"
    #: 0: a free port per case (needs `launch`); otherwise every case listens here.
    port: int = 0
    dialect: str = "soupbintcp"
    launch: Launch | None = None

    @property
    def parallel(self) -> bool:
        """Whether cases may run side by side (each listens on a port of its own)."""
        return self.port == 0 and self.launch is not None

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[ClientRun]:
        """Listen, start the client (if there is a launch), yield; then stop both."""
        run = ClientRun()
        server = await asyncio.start_server(run.on_connect, self.host, self.port)
        launched = None
        try:
            port = server.sockets[0].getsockname()[1]
            if self.launch is not None:
                launched = await self.launch(self.host, port)
            yield run
        finally:
            if launched is not None:
                await launched.stop()
            server.close()
            for link in run.links:
                await link.close()


class _Process:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def stop(self) -> None:
        if self.process.returncode is None:
            # The shell's whole process group: the client it started goes too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(3):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                await self.process.wait()


def command_launcher(command: str) -> Launch:
    """A launch that runs `command` through the shell, ``{host}`` and ``{port}`` replaced by
    where the case listens; its output is discarded. Stopped with SIGTERM (then SIGKILL)."""

    async def launch(host: str, port: int) -> Launched:
        line = command.replace("{host}", shlex.quote(host)).replace("{port}", str(port))
        process = await asyncio.create_subprocess_shell(
            line,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        return _Process(process)

    return launch
