"""One TCP connection as the suite sees it: bytes out, whole logical packets in, every wait
bounded, and a record of what arrived for the failure line.

Layer 4 (stdlib asyncio streams only).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as _ssl
import time

from ._case import Failed, shown

__all__ = ["Closed", "Link", "open_link"]

Packet = tuple[bytes, bytes]


class Closed(Exception):
    """The peer closed the connection (or reset it)."""


class Link:
    """A connection to (or from) the implementation under test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        #: Every packet read, in order, as (type, payload).
        self.received: list[Packet] = []
        #: When each of `received` arrived (monotonic seconds).
        self.arrivals: list[float] = []

    async def send(self, data: bytes) -> None:
        """Write `data`; a peer that closed shows as `Closed`."""
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise Closed(str(exc)) from None

    async def packet(self, timeout: float) -> Packet:
        """The next logical packet; `Closed` at end of stream, `TimeoutError` after `timeout`."""
        async with asyncio.timeout(timeout):
            try:
                head = await self._reader.readexactly(2)
                length = int.from_bytes(head, "big")
                if length == 0:
                    raise Failed(f"a packet of length 0 ({shown(head)}): it has no type byte")
                body = await self._reader.readexactly(length)
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    raise Closed(f"closed mid-packet after {shown(exc.partial)}") from None
                raise Closed("closed") from None
            except (ConnectionError, OSError) as exc:
                raise Closed(str(exc)) from None
        received = (body[:1], body[1:])
        self.received.append(received)
        self.arrivals.append(time.monotonic())
        return received

    async def next_of(self, timeout: float, skip: bytes = b"+") -> Packet:
        """The next packet whose type is not in `skip` (Debug by default), within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            kind, payload = await self.packet(max(0.0, deadline - time.monotonic()))
            if kind not in skip:
                return kind, payload

    async def closed_within(self, timeout: float) -> bool:
        """Whether the peer closes within `timeout`, reading (and recording) what it sends."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                await self.packet(max(0.0, deadline - time.monotonic()))
        except Closed:
            return True
        except TimeoutError:
            return False

    async def collect(self, seconds: float) -> list[Packet]:
        """Every packet that arrives in the next `seconds` (stopping early at a close)."""
        start = len(self.received)
        with contextlib.suppress(Closed):
            await self.closed_within(seconds)
        return self.received[start:]

    def types(self) -> bytes:
        """The types of every packet read so far, e.g. ``b'ASSSH'``."""
        return b"".join(kind for kind, _ in self.received)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):
                await self._writer.wait_closed()


async def open_link(host: str, port: int, tls: _ssl.SSLContext | None = None) -> Link:
    """Connect to `host:port` (within 5 s)."""
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection(
            host, port, ssl=tls, server_hostname=host if tls else None
        )
    return Link(reader, writer)
