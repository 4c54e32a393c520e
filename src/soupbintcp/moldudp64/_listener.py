"""The asyncio MoldUDP64 listener: joins a group, fills gaps through a re-request server and
hands out each message exactly once, in order, like the SoupBinTCP client.

Layer 3 (drivers). Two sockets feed one `MoldListener`: the multicast one, and a unicast one
connected to the re-request server, from which requests go out and on which the answers
come back. The hot path is `_readable`: the sockets are read with `add_reader` rather than
asyncio's datagram transport, which reads one datagram per turn of the loop; here every
datagram waiting (up to `_READS_PER_EVENT`) is read and fed in one tight loop, and the
consumer is woken once for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Final, Self, Unpack

from .._errors import SessionEnded, SessionTimeout, SoupBinTCPError
from .._session._events import Message, SequencedMessages
from .._session._mold_lines import DEFAULT_LINE_WAIT
from .._session._mold_listener import MoldListener
from ._core import DEFAULT_MAX_QUEUE, ListenerCore, ListenerOptions
from ._sockets import DEFAULT_RCVBUF, Address, groups_of, receiver_socket, request_socket

__all__ = ["AsyncListener", "listen_async"]

log = logging.getLogger("soupbintcp.moldudp64")


#: Datagrams read per readable event before the loop gets its turn back (fairness).
_READS_PER_EVENT: Final = 256
_RECV_SIZE: Final = 65536


class AsyncListener(ListenerCore):
    """A MoldUDP64 listener over asyncio. Create it with `listen_async()`."""

    def __init__(
        self,
        machine: MoldListener,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        lines: list[str] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._init_core(machine, max_queue, lines)
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._socks: list[socket.socket] = []
        self._request_sock: socket.socket | None = None
        self._line_of: dict[socket.socket, int] = {}  # multicast socket -> its group's index
        self._reading = False

    async def _open(
        self, groups: list[Address], request: Address | None, interface: str | None, rcvbuf: int
    ) -> None:
        for line, group in enumerate(groups):
            sock = receiver_socket(group, interface, rcvbuf)
            self._socks.append(sock)
            self._line_of[sock] = line
        if request is not None:
            self._request_sock = request_socket(request, interface, rcvbuf)
            self._socks.append(self._request_sock)
        self._resume_reading()

    # --- public API ------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Messages received and not yet handed to the application."""
        return self._unread()

    async def receive_msg(self) -> Message:
        """The next message, in sequence order. Raises `SessionEnded` after End of Session
        (or `close()`) once every message before it has been handed out; the listener's
        error otherwise (`MoldUDP64GapTimeout`: a gap could not be filled)."""
        msg = next(self._run, None)  # within a run: no call beyond this one
        if msg is not None:
            return msg
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

    def _readable(self, sock: socket.socket) -> None:
        recv = sock.recv
        feed = self._feed
        line = self._line_of.get(sock, -1)
        now = self._loop.time()
        woke = 0
        for _ in range(_READS_PER_EVENT):
            try:
                data = recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # ICMP unreachable for a request: retried on its timer
                log.debug("MoldUDP64 socket error: %s", exc)
                break
            woke += feed(data, now, line)
            if not self._reading:
                break  # paused (queue full) or ended
        if woke:
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
        self._after()

    def _after(self) -> None:
        """Send the requests the listener wants, keep its timer, notice its end."""
        machine = self._machine
        requests = machine.take_requests()
        if requests and self._request_sock is not None:
            send = self._request_sock.send
            for request in requests:
                try:
                    send(request)
                except OSError:
                    break  # lost like any datagram: retried on its timer
        if self._timer is None and (machine.outstanding or machine.request_delay):
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
        self._pause_reading()
        self._remember_drops()
        for sock in self._socks:
            sock.close()
        self._socks = []
        self._request_sock = None

    async def _wait(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = self._loop.create_future()
        await waiter

    def _pause_reading(self) -> bool:
        if self._reading:
            self._reading = False
            for sock in self._socks:
                self._loop.remove_reader(sock.fileno())
        return True  # paused, or already not reading

    def _resume_reading(self) -> None:
        if not self._reading and self._socks and self._end is None:
            self._reading = True
            for sock in self._socks:
                self._loop.add_reader(sock.fileno(), self._readable, sock)


async def listen_async(
    group: Address | Sequence[Address],
    request: Address | None = None,
    *,
    interface: str | None = None,
    rcvbuf: int = DEFAULT_RCVBUF,
    max_queue: int = DEFAULT_MAX_QUEUE,
    **options: Unpack[ListenerOptions],
) -> AsyncListener:
    """Join multicast `group` ((address, port)) and follow its MoldUDP64 session.

    `group` may be several groups, the redundant lines of one session (A/B): every line
    feeds one listener, the first copy of each number wins, and a gap is re-requested only
    once every line has missed it for `request_delay` (default 0.02 s with several lines).
    `listener.lines` counts per line what it delivered first, missed, and what another line
    covered.

    `request`: the re-request server's (host, port); without it gaps cannot be filled and
    the first one ends the listener with `MoldUDP64GapTimeout`. `sequence`: 1 for the whole
    session (what came before is asked for), n to start at n, 0 for whatever comes next.
    `session_id`: the session to follow (None: the first seen). `interface`: the address of
    the interface to join on (None: the system's choice). `rcvbuf`: the socket receive
    buffer asked for. `options` are `MoldListener`'s: `sequence`, `session_id` and the limits
    (`request_timeout`, `max_retries`, `max_outstanding`, `max_request_count`, `max_held`).
    """
    groups = groups_of(group)
    if len(groups) > 1:
        options.setdefault("request_delay", DEFAULT_LINE_WAIT)
    machine = MoldListener(**options)
    listener = AsyncListener(machine, max_queue=max_queue, lines=[f"{h}:{p}" for h, p in groups])
    try:
        await listener._open(groups, request, interface, rcvbuf)
    except BaseException:
        listener._close_io()
        raise
    return listener
