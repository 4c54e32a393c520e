"""The MoldUDP64 listener under test, as the listener cases meet it: the suite transmits on
a multicast group of its own and serves (or withholds) re-requests, per case.

Layer 4 (stdlib sockets on the asyncio loop). The listener is started for each case by a
launch given the group and the request address; what it prints (one line per message, the
payload in it, as `soupbintcp mold tail` does) is read when the launch captures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shlex
import signal
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from ._case import Failed
from ._packets import downstream

__all__ = ["ListenerRun", "ListenerTarget", "Printing", "listener_command"]

Address = tuple[str, int]
SESSION = b"CHECKMOLD1"


def message(n: int) -> bytes:
    """Message `n` of the suite's session: its text names its number."""
    return b"msg-%06d" % n


class Printing(Protocol):
    """A listener under test started for one case, and what it has printed so far."""

    lines: list[str]

    async def stop(self) -> None:
        """Stop the listener."""
        ...


Launch = Callable[[Address, Address], Awaitable[Printing]]


@dataclass
class ListenerRun:
    """One case: the group, the request socket, and the requests the listener made."""

    group: Address
    sender: socket.socket
    requests: socket.socket
    printing: Printing | None = None
    #: (session, sequence, count) of every request received, in order.
    asked: list[tuple[bytes, int, int]] = field(default_factory=list)
    #: Whether requests are answered (from `message()`, at most `answer_cap` per answer).
    answering: bool = True
    answer_cap: int = 1000
    #: The last message that exists (requests beyond it get no answer).
    last: int = 0

    def send(self, datagram: bytes) -> None:
        self.sender.sendto(datagram, self.group)

    def packet(self, first: int, last: int, session: bytes = SESSION) -> None:
        """Messages first..last in one Downstream Packet on the group."""
        self.last = max(self.last, last)
        self.send(downstream(session, first, [message(i) for i in range(first, last + 1)]))

    def heartbeat(self, next_sequence: int) -> None:
        self.send(downstream(SESSION, next_sequence, []))

    async def serve_requests(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data, source = await _recvfrom(loop, self.requests)
            if len(data) != 20:
                continue
            session, sequence, count = data[:10], *struct.unpack_from(">QH", data, 10)
            self.asked.append((session, sequence, count))
            if not self.answering or session != SESSION or sequence > self.last or count == 0:
                continue
            upto = min(self.last, sequence + min(count, self.answer_cap) - 1)
            wanted = [message(i) for i in range(sequence, upto + 1)]
            self.requests.sendto(downstream(SESSION, sequence, wanted), source)

    async def request(self, timeout: float, after: int = 0) -> tuple[bytes, int, int]:
        """The first request after the first `after` ones, within `timeout`; `Failed` if
        none comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.asked) > after:
                return self.asked[after]
            await asyncio.sleep(0.02)
        shown = self.shown_requests()
        raise Failed(f"no request number {after + 1} within {timeout:g} s ({shown})")

    def shown_requests(self, after: int = 0) -> str:
        """The requests after the first `after`, for a failure line: the count, the first 3."""
        some = [(s.decode("ascii", "replace"), q, c) for s, q, c in self.asked[after:]]
        more = f", ... {len(some):,} in all" if len(some) > 3 else ""
        return f"requests: {some[:3]}{more}" if some else "no request"

    async def printed(self, upto: int, timeout: float) -> list[int] | None:
        """The message numbers the listener printed, once `upto` is among them (or at the
        timeout); None when its output is not read."""
        if self.printing is None:
            return None
        deadline = time.monotonic() + timeout
        while True:
            numbers = [int(w[4:]) for line in self.printing.lines for w in line.split()
                       if w.startswith("msg-") and w[4:].isdigit()]  # fmt: skip
            if upto in numbers or time.monotonic() >= deadline:
                return numbers
            await asyncio.sleep(0.05)


async def _recvfrom(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> tuple[bytes, Address]:
    # sock_recvfrom is missing on uvloop: wait for readability by hand.
    while True:
        try:
            data, source = sock.recvfrom(65536)
            return data, source
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_reader(sock.fileno(), ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_reader(sock.fileno())


@dataclass
class ListenerTarget:
    """How the suite starts the listener under test, and the interface to transmit on."""

    launch: Launch
    interface: str = "127.0.0.1"

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[ListenerRun]:
        """A fresh group and request socket, the listener started on them; then stopped."""
        requests = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        task = None
        printing = None
        try:
            requests.setblocking(False)
            requests.bind((self.interface, 0))
            sender.setblocking(False)
            sender.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.interface)
            )
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
            sender.bind((self.interface, 0))
            group = (f"239.{random.randrange(1, 255)}.{random.randrange(1, 255)}.24", _free_port())
            run = ListenerRun(group, sender, requests)
            task = asyncio.create_task(run.serve_requests())
            printing = await self.launch(group, requests.getsockname()[:2])
            run.printing = printing if hasattr(printing, "lines") else None
            yield run
        finally:
            if printing is not None:
                await printing.stop()
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            requests.close()
            sender.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Printing:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode("utf-8", "replace").rstrip("\n"))

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(3):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


def listener_command(command: str) -> Launch:
    """A launch running `command` through the shell, ``{group}`` and ``{request}`` replaced
    by the case's GROUP:PORT and HOST:PORT; its standard output is read as it prints."""

    async def launch(group: Address, request: Address) -> Printing:
        line = command.replace("{group}", shlex.quote(f"{group[0]}:{group[1]}")).replace(
            "{request}", shlex.quote(f"{request[0]}:{request[1]}")
        )
        process = await asyncio.create_subprocess_shell(
            line,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        return _Printing(process)

    return launch
