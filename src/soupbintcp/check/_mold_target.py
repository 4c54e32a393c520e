"""The MoldUDP64 transmitter and re-request server under test, as the mold cases reach them.

Layer 4 (stdlib sockets on the asyncio loop). The suite joins the multicast group to watch
the stream and asks the re-request server from sockets of its own, one per case.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field

from ._case import Failed, NotApplicable
from ._packets import parse_downstream

__all__ = ["Datagram", "MoldTarget", "Seen"]

Address = tuple[str, int]


@dataclass(frozen=True)
class Datagram:
    """One Downstream Packet as received: when, its raw bytes and its fields."""

    at: float
    raw: bytes
    session: bytes
    sequence: int
    count: int
    messages: list[bytes]


@dataclass
class Seen:
    """What watching the group showed: the session, the next sequence number and every
    message whose number is known."""

    session: bytes
    next_sequence: int
    messages: dict[int, bytes]


def _join(group: Address, interface: str | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(AttributeError, OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind(group)
        except OSError:
            sock.bind(("", group[1]))
        local = socket.inet_aton(interface or "0.0.0.0")
        membership = socket.inet_aton(group[0]) + local
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    except BaseException:
        sock.close()
        raise
    return sock


async def _receive(
    sock: socket.socket, seconds: float, until: int = 0
) -> list[tuple[float, bytes]]:
    """Datagrams arriving on `sock` for `seconds` (or until `until` of them came)."""
    loop = asyncio.get_running_loop()
    got: list[tuple[float, bytes]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                data = await loop.sock_recv(sock, 65536)
        except TimeoutError:
            break
        got.append((time.monotonic(), data))
    return got


@dataclass
class MoldTarget:
    """The multicast group the transmitter sends to and its re-request server."""

    group: Address
    request: Address
    #: The local interface to join the group on (None: the default one).
    interface: str | None = None
    _seen: Seen | None = field(default=None, repr=False)
    _learning: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def watch(self, seconds: float) -> list[Datagram]:
        """Every Downstream Packet on the group for `seconds`; `Failed` if one is malformed."""
        sock = _join(self.group, self.interface)
        try:
            raw = await _receive(sock, seconds)
        finally:
            sock.close()
        out = []
        for at, data in raw:
            try:
                session, sequence, count, messages = parse_downstream(data)
            except ValueError as exc:
                raise Failed(f"a malformed Downstream Packet ({exc}): {data[:40]!r}") from None
            out.append(Datagram(at, data, session, sequence, count, messages))
        return out

    async def seen(self) -> Seen:
        """The session and next sequence number (watching the group once, up to 3 s)."""
        async with self._learning:
            if self._seen is None:
                datagrams = await self.watch(1.5)
                if not datagrams:
                    datagrams = await self.watch(1.5)
                if not datagrams:
                    raise Failed(f"nothing arrived on {self.group[0]}:{self.group[1]} in 3 s")
                messages = {d.sequence + i: m for d in datagrams for i, m in enumerate(d.messages)}
                last = datagrams[-1]
                step = len(last.messages)
                self._seen = Seen(last.session, last.sequence + step, messages)
            return self._seen

    async def messages_exist(self, count: int) -> Seen:
        """What `seen()` shows; `NotApplicable` when the session has fewer than `count`."""
        seen = await self.seen()
        if seen.next_sequence - 1 < count:
            raise NotApplicable(
                f"the session has {seen.next_sequence - 1} messages; the case needs {count}"
            )
        return seen

    async def ask(self, requests: list[bytes], seconds: float = 0.5) -> list[bytes]:
        """Send `requests` from one fresh socket; the datagrams answered to it in `seconds`."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((self.interface or "0.0.0.0", 0))
            for request in requests:
                # A plain send: a UDP datagram does not block, and uvloop has no sock_sendto.
                sock.sendto(request, self.request)
            return [data for _, data in await _receive(sock, seconds)]
        finally:
            sock.close()
