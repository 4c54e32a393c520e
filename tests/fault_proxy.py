"""A loopback TCP proxy that injects faults between a client and a server.

Per connection it can cut the server-to-client stream at a chosen byte offset (mid-packet
included), by a clean close or a reset; split everything into single-byte writes; delay each
write; or stall (stop forwarding) until released. Loopback only; everything it starts, it
stops in `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

CutPlan = Callable[[int], int | None]  # connection number -> byte offset to cut at, or None


class FaultProxy:
    def __init__(
        self,
        target: tuple[str, int],
        *,
        cut_at: CutPlan | None = None,
        split_bytes: bool = False,
        delay: float = 0.0,
        reset: bool | None = None,  # None: randomly close or reset
        seed: int = 0,
    ) -> None:
        self.target = target
        self.cut_at = cut_at
        self.split_bytes = split_bytes
        self.delay = delay
        self.reset = reset
        self.rng = random.Random(seed)
        self.connections = 0
        self.cuts = 0
        self.bytes_to_client = 0
        self.stalled = asyncio.Event()
        self.stalled.set()  # set = flowing
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    def stall(self) -> None:
        self.stalled.clear()

    def release(self) -> None:
        self.stalled.set()

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.transport.abort()
            return
        self._writers |= {c_writer, s_writer}
        cut = self.cut_at(number) if self.cut_at else None
        down = asyncio.ensure_future(self._pump(s_reader, c_writer, cut, s_writer, True))
        up = asyncio.ensure_future(self._pump(c_reader, s_writer, None, c_writer, False))
        self._tasks |= {down, up}
        try:
            await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass  # the proxy is closing
        finally:
            for task in (down, up):
                task.cancel()
            for writer in (c_writer, s_writer):
                writer.transport.abort()
                self._writers.discard(writer)
            self._tasks -= {down, up}

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        cut: int | None,
        other: asyncio.StreamWriter,
        downstream: bool,
    ) -> None:
        sent = 0
        while True:
            data = await reader.read(65536)
            if not data:
                writer.close()
                return
            await self.stalled.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
            if cut is not None and sent + len(data) >= cut:
                data = data[: cut - sent]
                await self._write(writer, data)
                self.cuts += 1
                reset = self.reset if self.reset is not None else self.rng.random() < 0.5
                if reset:
                    writer.transport.abort()
                    other.transport.abort()
                else:
                    writer.close()
                    other.close()
                return
            await self._write(writer, data)
            sent += len(data)
            if downstream:
                self.bytes_to_client += len(data)

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if self.split_bytes:
            for i in range(len(data)):
                writer.write(data[i : i + 1])
                await writer.drain()
        else:
            writer.write(data)
            await writer.drain()

    async def close(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
