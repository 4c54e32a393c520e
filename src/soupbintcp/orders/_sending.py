"""When the asyncio order client's requests go out: the first of an event-loop turn at once,
the turn's later ones together at its end (one journal write and one fdatasync for all of
them: group commit), and what the throttle holds back when it allows. `OrderClient` (in
`_client`) derives from `Sending`; `OrderHandle` is what each request returns.

Layer 4 (order client).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

from .._client import AsyncClient
from .._errors import SoupBinTCPError
from ._book import Answer, Request
from ._core import OrderCore

__all__ = ["OrderHandle", "Sending"]


class OrderHandle:
    """A request just made: its UserRefNum, its order, and (awaited) its `Answer`."""

    __slots__ = ("_future", "request")

    def __init__(self, request: Request, future: asyncio.Future[Answer]) -> None:
        self.request = request
        self._future = future

    @property
    def user_ref_num(self) -> int:
        return self.request.user_ref_num

    def done(self) -> bool:
        return self._future.done()

    def __await__(self) -> Generator[Any, None, Answer]:
        return self._future.__await__()

    def __repr__(self) -> str:
        return f"OrderHandle({self.request.kind.value} {self.request.user_ref_num})"


class Sending:
    """The send side of `OrderClient`: requests to the wire, and a future per request."""

    _core: OrderCore
    _client: AsyncClient | None
    _end: SoupBinTCPError | None

    def _init_sending(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._futures: dict[Request, asyncio.Future[Answer]] = {}
        self._flush_scheduled = False
        self._turn_open = False
        self._end_turn_due = False
        self._timer: asyncio.TimerHandle | None = None
        # The standard loop's `create_future` is a Python frame around this (one per order).
        std = type(loop).create_future is asyncio.BaseEventLoop.create_future
        self._new_future: Callable[[], asyncio.Future[Answer]] = (
            partial(asyncio.Future, loop=loop) if std else loop.create_future
        )

    def _handle(self, request: Request) -> OrderHandle:
        if self._end is not None:
            future = self._new_future()
            future.set_exception(self._end)
            future.exception()
            return OrderHandle(request, future)
        # Sent first, the future made after: nothing settles a request before the stream is
        # next read (a later event-loop callback), and what is done after the send is done
        # while the venue works on it (off the round trip's path).
        if self._turn_open or self._flush_scheduled:
            self._schedule_flush()
        elif self._core.unlimited:  # `_schedule_flush`, `_flush`, `_write`, written out
            self._turn_open = True
            payloads = self._core.take(0.0)
            client = self._client
            if payloads and client is not None:
                try:
                    for payload in payloads:
                        client.send_unseq_data(payload)
                except SoupBinTCPError:  # not connected: journaled, re-sent after login
                    self._core.disconnected()
        else:
            self._turn_open = True
            self._flush()
        future = self._new_future()
        self._futures[request] = future
        return OrderHandle(request, future)

    def _schedule_flush(self) -> None:
        """Send the first request of an event-loop turn at once (no added latency); the
        turn's later requests go together at its end: one journal write and one fdatasync
        for all of them (group commit). The turn's end is only scheduled when a second
        request comes: a closed loop (one order in flight) pays no extra callback."""
        if self._flush_scheduled:
            return  # they go with the flush already due (the throttle's)
        if not self._turn_open:
            self._turn_open = True  # until the turn's end or the next input (`_on_ready`)
            self._flush()
        elif not self._end_turn_due:
            self._end_turn_due = True
            self._loop.call_soon(self._end_turn)

    def _end_turn(self) -> None:
        self._end_turn_due = False
        self._turn_open = False
        if not self._flush_scheduled and self._core.sendable:
            self._flush()

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._end is not None:
            return  # closed: what waits is in the journal for the next run
        core = self._core
        if core.unlimited:  # everything waiting goes: no clock needed
            payloads = core.take(0.0)
            if payloads:
                self._write(payloads)
            return
        self._write(core.take(self._loop.time()))
        if core.sendable:  # held back by the throttle
            self._flush_scheduled = True
            self._timer = self._loop.call_later(core.delay(self._loop.time()), self._flush)

    def _write(self, payloads: list[bytes]) -> None:
        client = self._client
        if client is None or not payloads:
            return
        try:
            for payload in payloads:
                client.send_unseq_data(payload)
        except SoupBinTCPError:  # not connected, or the session ended
            self._core.disconnected()  # they are journaled: the next login re-sends them
