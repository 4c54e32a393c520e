"""A small MoldUDP64 listener for the conformance suite's own tests: correct by default
(gaps re-requested and retried, messages held and delivered in order, exactly once), broken
on purpose in one way by naming a fault (`FAULTS`). It "prints" into a list of lines."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

FAULTS = {
    "requests-too-much": "asks for 10 more messages than the gap holds",
    "requests-without-gap": "asks again for every packet it receives",
    "no-tail-request": "takes no notice of a heartbeat's sequence number",
    "accepts-other-session": "delivers packets of any session",
    "never-retries": "asks once for a gap, never again",
    "accepts-bad-datagram": "delivers the blocks a packet has, whatever its count says",
    "no-rest-request": "takes an answer shorter than asked for the whole gap",
    "out-of-order": "delivers each packet as it comes",
}


class BrokenListener:
    def __init__(self, group: tuple[str, int], request: tuple[str, int], fault: str | None):
        assert fault is None or fault in FAULTS, fault
        self.fault = fault
        self.request = request
        self.lines: list[str] = []
        self.session: bytes | None = None
        self.next = 1
        self.held: dict[int, bytes] = {}
        self.gap_end = 0  # the last message of the gap asked for (0: none)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setblocking(False)
        self.sock.bind(group)
        membership = socket.inet_aton(group[0]) + socket.inet_aton("127.0.0.1")
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        self.ask = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.ask.setblocking(False)
        self.ask.bind(("127.0.0.1", 0))
        self.tasks = [
            asyncio.create_task(self.read(self.sock)),
            asyncio.create_task(self.read(self.ask)),
        ]
        self.tasks.append(asyncio.create_task(self.retry()))

    def has(self, fault: str) -> bool:
        return self.fault == fault

    async def read(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.datagram(await loop.sock_recv(sock, 65536))

    def send_request(self, first: int, count: int) -> None:
        extra = 10 if self.has("requests-too-much") else 0
        assert self.session is not None
        self.ask.sendto(self.session + struct.pack(">QH", first, count + extra), self.request)

    def datagram(self, data: bytes) -> None:
        if len(data) < 20:
            return
        session, sequence, count = data[:10], *struct.unpack_from(">QH", data, 10)
        if self.session is None:
            self.session = session
        if session != self.session and not self.has("accepts-other-session"):
            return
        blocks: list[bytes] = []
        offset = 20
        while offset + 2 <= len(data) and len(blocks) < count:
            (size,) = struct.unpack_from(">H", data, offset)
            blocks.append(data[offset + 2 : offset + 2 + size])
            offset += 2 + size
        if count in (0, 0xFFFF):
            if sequence > self.next and not self.has("no-tail-request"):
                self.gap(sequence - 1)
            return
        if (len(blocks) != count or offset != len(data)) and not self.has("accepts-bad-datagram"):
            return
        if self.has("out-of-order"):
            for i, block in enumerate(blocks):
                if sequence + i >= self.next or sequence + i not in self.held:
                    self.print(block)
                    self.held[sequence + i] = block
            self.next = max(self.next, sequence + len(blocks))
            return
        if self.has("requests-without-gap"):
            self.send_request(sequence, len(blocks))
        for i, block in enumerate(blocks):
            if sequence + i >= self.next:
                self.held.setdefault(sequence + i, block)
        if self.has("no-rest-request") and self.gap_end and sequence == self.next:
            # Takes the short answer for the whole gap: what it lacks is given up.
            self.next = max(self.next, min(self.gap_end + 1, min(self.held, default=self.next)))
        self.deliver()
        if self.held and min(self.held) > self.next:
            self.gap(min(self.held) - 1)

    def deliver(self) -> None:
        while self.next in self.held:
            self.print(self.held.pop(self.next))
            self.next += 1
        if self.next > self.gap_end:
            self.gap_end = 0
        if self.has("no-rest-request") and self.gap_end and self.held:
            self.next = min(self.held)
            self.gap_end = 0
            self.deliver()

    def gap(self, last: int) -> None:
        if self.gap_end >= last:
            return
        self.gap_end = last
        self.send_request(self.next, last - self.next + 1)

    async def retry(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.gap_end and not self.has("never-retries"):
                self.send_request(self.next, self.gap_end - self.next + 1)

    def print(self, block: bytes) -> None:
        self.lines.append(block.decode("ascii", "replace"))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        self.sock.close()
        self.ask.close()


def launcher(fault: str | None):  # type: ignore[no-untyped-def]
    async def launch(group: tuple[str, int], request: tuple[str, int]) -> BrokenListener:
        return BrokenListener(group, request, fault)

    return launch
