"""A loopback TCP proxy that injects faults between a client and a server.

Per connection it can cut the server-to-client stream at a chosen byte offset (mid-packet
included), by a clean close or a reset; split everything into single-byte writes; delay each
write; or stall (stop forwarding) until released. Loopback only; everything it starts, it
stops in `close()`.

It follows the SoupBinTCP framing of the server-to-client stream (2-byte length, then that
many bytes), so it can say how many cuts fell inside a packet (`cuts_mid_packet`) rather
than between two; it counts clean closes and resets apart (`cuts_clean`, `cuts_reset`).
`upstream_rcvbuf` shrinks the receive buffer of its server-facing sockets, so a stalled
proxy backs up into the server after little data.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Callable

CutPlan = Callable[[int], int | None]  # connection number -> byte offset to cut at, or None


class _Framing:
    """Where the packets of a SoupBinTCP byte stream begin, fed chunk by chunk."""

    __slots__ = ("carry", "next", "offset")

    def __init__(self) -> None:
        self.offset = 0  # bytes fed so far
        self.next = 0  # stream offset of the next packet's length field
        self.carry = 0  # first length byte, when a chunk ended between the two

    def feed(self, data: bytes) -> None:
        if not data:
            return
        start = self.offset
        end = start + len(data)
        nxt = self.next
        while nxt + 2 <= end:
            i = nxt - start
            # i == -1: the length field straddles two chunks
            length = (data[i] << 8) | data[i + 1] if i >= 0 else (self.carry << 8) | data[0]
            nxt += 2 + length
        if nxt == end - 1:
            self.carry = data[-1]
        self.next = nxt
        self.offset = end

    @property
    def between_packets(self) -> bool:
        """Whether everything fed so far ends exactly where a packet ends."""
        return self.next == self.offset


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
        upstream_rcvbuf: int | None = None,
    ) -> None:
        self.target = target
        self.cut_at = cut_at
        self.split_bytes = split_bytes
        self.delay = delay
        self.reset = reset
        self.rng = random.Random(seed)
        self.connections = 0
        self.upstream_rcvbuf = upstream_rcvbuf
        self.cuts = 0
        self.cuts_reset = 0
        self.cuts_clean = 0
        self.cuts_mid_packet = 0
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

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream_rcvbuf is None:
            return await asyncio.open_connection(*self.target)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Before connecting: the window the kernel offers is fixed at the handshake.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.upstream_rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, self.target)
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock, limit=self.upstream_rcvbuf)

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        try:
            s_reader, s_writer = await self._open_upstream()
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
        framing = _Framing() if downstream else None
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
                if framing is not None:
                    framing.feed(data)
                    self.cuts_mid_packet += not framing.between_packets
                reset = self.reset if self.reset is not None else self.rng.random() < 0.5
                if reset:
                    self.cuts_reset += 1
                    writer.transport.abort()
                    other.transport.abort()
                else:
                    self.cuts_clean += 1
                    writer.close()
                    other.close()
                return
            await self._write(writer, data)
            sent += len(data)
            if framing is not None:
                framing.feed(data)
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
