"""A small MoldUDP64 transmitter and re-request server for the conformance suite's own tests:
correct by default, broken on purpose in one way by naming a fault (`FAULTS`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from typing import cast

SESSION = b"BROKENMOLD"
MESSAGES = [b"%040d" % i for i in range(1, 51)]

FAULTS = {
    "count-lies": "a Message Count larger than the blocks that follow",
    "session-changes": "every other datagram of another session",
    "sequence-skips": "heartbeats that skip a number",
    "no-heartbeats": "nothing sent once the stream is out",
    "single-end": "End of Session sent once",
    "answers-shifted": "answers one message off",
    "answers-too-many": "answers more messages than asked",
    "answers-huge": "answers not clipped to a datagram's size",
    "answers-any-session": "answers requests for any session",
    "crash-on-malformed": "a malformed request stops the re-request server",
    "crash-on-hostile": "a request for 0 messages stops the re-request server",
    "answers-beyond-end": "answers requests beyond the end with a heartbeat",
}


def downstream(sequence: int, messages: list[bytes], count: int | None = None) -> bytes:
    blocks = b"".join(struct.pack(">H", len(m)) + m for m in messages)
    n = len(messages) if count is None else count
    return SESSION + struct.pack(">QH", sequence, n) + blocks


class _Requests(asyncio.DatagramProtocol):
    def __init__(self, fault: str | None) -> None:
        self.fault = fault
        self.dead = False
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if self.dead:
            return
        if len(data) != 20:
            self.dead = self.fault == "crash-on-malformed"
            return
        session, sequence, count = data[:10], *struct.unpack_from(">QH", data, 10)
        if session != SESSION and self.fault != "answers-any-session":
            return
        if count == 0 or sequence == 0:
            self.dead = self.fault == "crash-on-hostile"
            return
        if sequence > len(MESSAGES):
            if self.fault == "answers-beyond-end":
                self.transport.sendto(downstream(len(MESSAGES) + 1, []), addr)
            return
        limit = 200 if self.fault == "answers-huge" else 30
        wanted = min(count, limit) + (5 if self.fault == "answers-too-many" else 0)
        first = sequence + (1 if self.fault == "answers-shifted" else 0)
        self.transport.sendto(downstream(sequence, MESSAGES[first - 1 : first - 1 + wanted]), addr)


async def _transmit(
    sock: socket.socket, group: tuple[str, int], fault: str | None, ended: bool
) -> None:
    loop = asyncio.get_running_loop()
    n = len(MESSAGES)
    next_sequence = 1
    beat = sent = 0
    while True:
        if next_sequence <= n:
            count = 10
            batch = MESSAGES[next_sequence - 1 : next_sequence - 1 + count]
            lie = len(batch) + 1 if fault == "count-lies" else None
            datagram = downstream(next_sequence, batch, lie)
            next_sequence += len(batch)
        elif fault == "no-heartbeats":
            return
        elif ended or fault == "single-end":
            datagram = downstream(n + 1, [], 0xFFFF)
            if fault == "single-end":
                await loop.sock_sendto(sock, datagram, group)
                return
        else:
            skip = beat % 2 if fault == "sequence-skips" else 0
            datagram = downstream(n + 1 + skip, [])
            beat += 1
        sent += 1
        if fault == "session-changes" and sent % 2:
            datagram = b"OTHERSESS1" + datagram[10:]
        await loop.sock_sendto(sock, datagram, group)
        await asyncio.sleep(0.15 if next_sequence <= n else 0.25)


@contextlib.asynccontextmanager
async def broken_mold(
    group: tuple[str, int], fault: str | None = None, ended: bool = False
) -> AsyncIterator[tuple[str, int]]:
    """Transmit to `group` over loopback and answer requests; yields the request address."""
    assert fault is None or fault in FAULTS, fault
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Requests(fault), local_addr=("127.0.0.1", 0)
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(_transmit(sock, group, fault, ended))
    try:
        yield transport.get_extra_info("sockname")[:2]
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        sock.close()
        transport.close()
