"""The asyncio MoldUDP64 listener: joins a group, fills gaps through a re-request server and
hands out each message exactly once, in order, like the SoupBinTCP client.

Layer 3 (drivers). Two sockets feed one `MoldListener`: the multicast one, and a unicast one
connected to the re-request server, from which requests go out and on which the answers
come back. The hot path is `_Receiver.datagram_received`: one `receive_datagram` call per
datagram, its run queued whole, one wake-up of the consumer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Self

from .._errors import SessionEnded, SessionTimeout, SoupBinTCPError
from .._session._events import Message, SequencedMessages
from .._session._mold_listener import MoldListener
from ._core import DEFAULT_MAX_QUEUE, ListenerCore
from ._sockets import DEFAULT_RCVBUF, Address, receiver_socket, request_socket

__all__ = ["AsyncListener", "listen_async"]

log = logging.getLogger("soupbintcp.moldudp64")


class _Receiver(asyncio.DatagramProtocol):
    __slots__ = ("_owner",)

    def __init__(self, owner: AsyncListener) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        owner = self._owner
        if owner._feed(data, owner._loop.time()):
            waiter = owner._waiter
            if waiter is not None:
                owner._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
        owner._after()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable for a request (no re-request server yet): retried later.
        log.debug("MoldUDP64 socket error: %s", exc)


class AsyncListener(ListenerCore):
    """A MoldUDP64 listener over asyncio. Create it with `listen_async()`."""

    def __init__(self, machine: MoldListener, *, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self._loop = asyncio.get_running_loop()
        self._init_core(machine, max_queue)
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._group_transport: asyncio.DatagramTransport | None = None
        self._request_transport: asyncio.DatagramTransport | None = None
        self._socks: list[socket.socket] = []

    async def _open(
        self, group: Address, request: Address | None, interface: str | None, rcvbuf: int
    ) -> None:
        loop = self._loop
        sock = receiver_socket(group, interface, rcvbuf)
        self._socks.append(sock)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(self), sock=sock)
        self._group_transport = transport
        if request is not None:
            rsock = request_socket(request, interface, rcvbuf)
            self._socks.append(rsock)
            transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(self), sock=rsock)
            self._request_transport = transport

    # --- public API ------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Messages received and not yet handed to the application."""
        return self._unread()

    async def receive_msg(self) -> Message:
        """The next message, in sequence order. Raises `SessionEnded` after End of Session
        (or `close()`) once every message before it has been handed out; the listener's
        error otherwise (`MoldUDP64GapTimeout`: a gap could not be filled)."""
        while (msg := self._take_one()) is None:
            await self._wait()
        return msg

    async def receive_batch(self) -> list[SequencedMessages]:
        """Everything received so far (waiting for at least one message) as runs of
        `SequencedMessages(first_sequence, messages)`, in order. Raises as `receive_msg`."""
        while not (out := self._take_all()):
            await self._wait()
        return out

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        msg = next(self._run, None)  # receive_msg's fast path, without its await
        if msg is not None:
            return msg
        try:
            return await self.receive_msg()
        except SessionEnded:
            raise StopAsyncIteration from None

    async def batches(self) -> AsyncIterator[list[SequencedMessages]]:
        """`receive_batch()` as an async iterator that ends after End of Session."""
        while True:
            try:
                yield await self.receive_batch()
            except SessionEnded:
                return

    async def close(self) -> None:
        """Leave the group. Messages already received can still be read."""
        self._ended(SessionEnded("closed by the application"))
        self._close_io()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the driver ------------------------------------------------------------------------

    def _sockets(self) -> list[socket.socket]:
        return self._socks

    def _after(self) -> None:
        """Send the requests the listener wants, keep its timer, notice its end."""
        machine = self._machine
        requests = machine.take_requests()
        if requests and self._request_transport is not None:
            sendto = self._request_transport.sendto
            for request in requests:
                sendto(request)
        if self._timer is None and machine.outstanding:
            deadline = machine.next_timer()
            if deadline is not None:
                self._timer = self._loop.call_at(deadline, self._on_timer)
        if self._end is not None:
            self._close_io()

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self._machine.handle_timer(self._loop.time())
        except SessionTimeout as exc:
            self._ended(exc)
        self._after()

    def _ended(self, exc: SoupBinTCPError) -> bool:
        ended = super()._ended(exc)
        if ended:
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
        return ended

    def _close_io(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for transport in (self._group_transport, self._request_transport):
            if transport is not None:
                transport.close()
        self._group_transport = self._request_transport = None

    async def _wait(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = self._loop.create_future()
        await waiter

    def _pause(self) -> None:
        for transport in (self._group_transport, self._request_transport):
            if transport is not None:
                transport.pause_reading()  # type: ignore[attr-defined]

    def _resume(self) -> None:
        for transport in (self._group_transport, self._request_transport):
            if transport is not None:
                transport.resume_reading()  # type: ignore[attr-defined]


async def listen_async(
    group: Address,
    request: Address | None = None,
    *,
    sequence: int = 1,
    session_id: str | None = None,
    interface: str | None = None,
    rcvbuf: int = DEFAULT_RCVBUF,
    max_queue: int = DEFAULT_MAX_QUEUE,
    request_timeout: float = 0.25,
    max_retries: int = 20,
    max_outstanding: int = 64,
    max_request_count: int = 256,
    max_held: int = 100_000,
) -> AsyncListener:
    """Join multicast `group` ((address, port)) and follow its MoldUDP64 session.

    `request`: the re-request server's (host, port); without it gaps cannot be filled and
    the first one ends the listener with `MoldUDP64GapTimeout`. `sequence`: 1 for the whole
    session (what came before is asked for), n to start at n, 0 for whatever comes next.
    `session_id`: the session to follow (None: the first seen). `interface`: the address of
    the interface to join on (None: the system's choice). `rcvbuf`: the socket receive
    buffer asked for. The rest are `MoldListener`'s limits.
    """
    machine = MoldListener(
        session=session_id,
        sequence=sequence,
        request_timeout=request_timeout,
        max_retries=max_retries,
        max_outstanding=max_outstanding,
        max_request_count=max_request_count,
        max_held=max_held,
    )
    listener = AsyncListener(machine, max_queue=max_queue)
    try:
        await listener._open(group, request, interface, rcvbuf)
    except BaseException:
        listener._close_io()
        for sock in listener._socks:
            sock.close()
        raise
    return listener
