"""Helpers for the server tests: wire bytes built by hand from the spec, and a raw client
that speaks bytes over asyncio streams (for hostile input and exact checks)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable

import pytest

from .helpers import wire

USER, PASSWORD, SESSION = "user", "secret", "SESSION1"
CREDENTIALS = {USER: PASSWORD}


def login_packet(
    username: str = USER,
    password: str = PASSWORD,
    session: str = "",
    sequence: int = 1,
    heartbeat_timeout_ms: int | None = None,
) -> bytes:
    """A Login Request as the spec lays it out: 46-byte payload (4.00) or 51 (4.10)."""
    payload = (
        username.encode().ljust(6)
        + password.encode().ljust(10)
        + session.encode().rjust(10)
        + str(sequence).encode().rjust(20)
    )
    if heartbeat_timeout_ms is not None:
        payload += str(heartbeat_timeout_ms).encode().rjust(5)
    return wire(b"L", payload)


def payload(seq: int) -> bytes:
    """Test message `seq`: its content says its number, so gaps and duplicates show."""
    return b"m%d" % seq


def payloads(first: int, last: int) -> list[bytes]:
    return [payload(i) for i in range(first, last + 1)]


def frames(messages: Iterable[bytes]) -> bytes:
    return b"".join(wire(b"S", m) for m in messages)


class RawClient:
    """A byte-level client: send what you like, read packets as (type, payload)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> RawClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), 5)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def packet(self, timeout: float = 5.0) -> tuple[bytes, bytes]:
        """The next packet; raises `asyncio.IncompleteReadError` at EOF."""
        header = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        body = await asyncio.wait_for(
            self.reader.readexactly(int.from_bytes(header, "big")), timeout
        )
        return body[:1], body[1:]

    async def login(self, **kwargs: object) -> tuple[bytes, bytes]:
        self.send(login_packet(**kwargs))  # type: ignore[arg-type]
        return await self.packet()

    async def rest(self, timeout: float = 5.0) -> list[tuple[bytes, bytes]]:
        """Every packet until the server closes, heartbeats left out."""
        out: list[tuple[bytes, bytes]] = []
        while True:
            try:
                kind, body = await self.packet(timeout)
            except (asyncio.IncompleteReadError, ConnectionError):
                return out
            if kind != b"H":
                out.append((kind, body))

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """Wait for EOF (skipping whatever arrives); True if it came in time."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()


def stalled_socket(address: tuple[str, int], login: bytes) -> socket.socket:
    """A client that logs in and then never reads (a tiny receive buffer, so the server's
    side fills up quickly)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(address)
    sock.sendall(login)
    return sock


def server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "soupbintcp.server"]


def closes(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The one-line summaries of closed or refused connections."""
    return [
        r
        for r in server_records(caplog)
        if r.getMessage().startswith("connection ")
        and (" closed" in r.getMessage() or " refused" in r.getMessage())
    ]
