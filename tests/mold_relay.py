"""A datagram relay for fault tests, the UDP sibling of fault_proxy.py: it forwards what it
receives and loses, duplicates, reorders and delays datagrams as told.

- `MulticastRelay` joins one multicast group and re-sends every datagram to another: put it
  between a transmitter (on group A) and listeners (on group B).
- `UnicastRelay` stands in for a re-request server: each source gets its own upstream
  socket to the real server, and the answers coming back go through the same faults.

Faults are drawn from a seeded `random.Random`, so a failing run can be replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass

from soupbintcp.moldudp64._sockets import receiver_socket, sender_socket

Address = tuple[str, int]
Send = Callable[[bytes, Address], None]


@dataclass
class Faults:
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0  # chance a datagram is held back behind the next few
    delay: float = 0.0  # seconds added to every datagram (0: none)
    seed: int = 1


class _Faulty:
    """Applies `Faults` to a stream of datagrams handed to `send`."""

    def __init__(self, faults: Faults, send: Send) -> None:
        self.faults = faults
        self._send = send
        self._rng = random.Random(faults.seed)
        self._held: list[tuple[int, bytes, Address]] = []  # (release after n more, ...)
        self.received = 0
        self.lost = 0
        self.duplicated = 0
        self.reordered = 0

    def __call__(self, data: bytes, dest: Address) -> None:
        f = self.faults
        rng = self._rng
        self.received += 1
        if self._held:
            still = []
            for left, held, where in self._held:
                if left <= 1:
                    self._out(held, where)
                else:
                    still.append((left - 1, held, where))
            self._held = still
        if rng.random() < f.loss:
            self.lost += 1
            return
        copies = 2 if rng.random() < f.duplicate else 1
        self.duplicated += copies - 1
        for _ in range(copies):
            if rng.random() < f.reorder:
                self.reordered += 1
                self._held.append((rng.randrange(1, 4), data, dest))
            else:
                self._out(data, dest)

    def flush(self) -> None:
        for _, held, where in self._held:
            self._out(held, where)
        self._held = []

    def _out(self, data: bytes, dest: Address) -> None:
        if self.faults.delay:
            asyncio.get_running_loop().call_later(self.faults.delay, self._send, data, dest)
        else:
            self._send(data, dest)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Send) -> None:
        self._on = on_datagram

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._on(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass


class MulticastRelay:
    """Group `source` in, group `target` out, through `faults`."""

    def __init__(self, source: Address, target: Address, faults: Faults) -> None:
        self.source = source
        self.target = target
        self._out = sender_socket("127.0.0.1", 0, True)
        self.faults = _Faulty(faults, self._sendto)
        self._transport: asyncio.BaseTransport | None = None

    def _sendto(self, data: bytes, dest: Address) -> None:
        with contextlib.suppress(OSError):  # a full buffer is one more loss
            self._out.sendto(data, dest)

    async def start(self) -> MulticastRelay:
        sock = receiver_socket(self.source, "127.0.0.1", 16 << 20)
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(lambda data, _addr: self.faults(data, self.target)), sock=sock
        )
        return self

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._out.close()


class UnicastRelay:
    """Listeners send requests here; they reach `server` and the answers come back through
    `faults` (the requests themselves go through `request_faults`)."""

    def __init__(
        self, server: Address, faults: Faults, request_faults: Faults | None = None
    ) -> None:
        self.server = server
        self.answers = _Faulty(faults, self._to_client)
        self.requests = _Faulty(request_faults or Faults(seed=faults.seed + 1), self._to_server)
        self._front: asyncio.DatagramTransport | None = None
        self._upstream: dict[Address, asyncio.DatagramTransport] = {}
        self._pending: dict[Address, list[bytes]] = {}
        self.address: Address = ("127.0.0.1", 0)

    async def start(self) -> UnicastRelay:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self._from_client), local_addr=("127.0.0.1", 0)
        )
        self._front = transport
        self.address = transport.get_extra_info("sockname")[:2]
        return self

    def _from_client(self, data: bytes, client: Address) -> None:
        self.requests(data, client)

    def _to_server(self, data: bytes, client: Address) -> None:
        up = self._upstream.get(client)
        if up is not None:
            up.sendto(data)
            return
        pending = self._pending.setdefault(client, [])
        pending.append(data)
        if len(pending) == 1:
            asyncio.get_running_loop().create_task(self._connect(client))

    async def _connect(self, client: Address) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(lambda data, _addr: self.answers(data, client)),
            remote_addr=self.server,
            family=socket.AF_INET,
        )
        self._upstream[client] = transport
        for data in self._pending.pop(client, []):
            transport.sendto(data)

    def _to_client(self, data: bytes, client: Address) -> None:
        if self._front is not None:
            self._front.sendto(data, client)

    async def close(self) -> None:
        for transport in [*self._upstream.values(), self._front]:
            if transport is not None:
                transport.close()
