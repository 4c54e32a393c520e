"""`OrderClient`: OUCH 5.0 order entry over asyncio, on the SoupBinTCP client.

It never enters an order twice and never loses one, across lost connections, failovers to a
mirrored host (the address list of `connect_async`) and restarts of the program (the state
directory); `_core` says how. This module is only the asyncio plumbing: a callback that
applies the outbound stream as it arrives (`AsyncClient.set_on_ready`) and settles the
waiting handles; `_sending` sends (a send step scheduled once per event-loop turn, so every
request made in one turn shares one journal write and one fdatasync).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Self, Unpack

from .._client import Addresses, AsyncClient, ConnectOptions, connect_async
from .._errors import ConnectionLost, SessionEnded, SoupBinTCPError
from .._session import Event, SequencedMessages
from .._wire import LoginAccepted
from ._book import Answer, Order, OrderBook
from ._core import OrderCore, OrderEvent, Phase
from ._login import first_login_retry
from ._sending import OrderHandle, Sending
from ._state import StateDir

__all__ = ["OrderClient", "OrderHandle"]

_READY = Phase.READY  # a global: no trip through the enum metaclass's hook

OnOrderEvent = Callable[[OrderEvent], Any]


class OrderClient(Sending):
    """One OUCH account's order entry. Create it with `await OrderClient.connect(...)`."""

    def __init__(self, core: OrderCore, on_event: OnOrderEvent | None) -> None:
        self._core = core
        self._on_event = on_event
        self._init_sending(asyncio.get_running_loop())
        self._client: AsyncClient | None = None
        self._logins: list[str] = []
        self._changed = asyncio.Event()
        #: Tasks in `_wait_change`: `_on_ready` wakes `_changed` only when one waits (each
        #: waiter clears it first, so a set with nobody waiting changes nothing).
        self._waiting = 0
        self._events: asyncio.Queue[OrderEvent] | None = None
        self._end: SoupBinTCPError | None = None
        self._user_status: Callable[[Event], None] | None = None

    @classmethod
    async def connect(
        cls,
        address: Addresses,
        username: str,
        password: str,
        *,
        state: str | os.PathLike[str] | None = None,
        rate: float | None = None,
        cancel_on_disconnect: bool = False,
        fsync: bool = True,
        on_event: OnOrderEvent | None = None,
        **options: Unpack[ConnectOptions],
    ) -> Self:
        """Log in, catch up and recover; return once new orders may be entered.

        `address`: one `(host, port)` / `"host:port"` or a list of mirrored hosts to fail
        over between. `state`: a directory for the journals (None: nothing on disk; the
        venue's Account Query says where UserRefNums go on). `rate`: messages per second
        (None: no limit); over it requests queue. `cancel_on_disconnect`: after a lost
        connection, cancel every live order once logged in again (the kill switch).
        `options`: those of `connect_async`; `reconnect` is on unless said otherwise.
        """
        options.setdefault("reconnect", True)
        user_status = options.pop("on_status", None)
        state_dir = StateDir(state, fsync=fsync) if state is not None else None
        loop = asyncio.get_running_loop()
        core = OrderCore(
            state_dir, rate, cancel_on_disconnect=cancel_on_disconnect, now=loop.time()
        )
        self = cls(core, on_event)
        self._user_status = user_status
        options["on_status"] = self._on_status
        try:
            attempt = 0
            while True:
                try:
                    self._client = await connect_async(
                        address,
                        username,
                        password,
                        session_id=state_dir.session_id or "" if state_dir is not None else "",
                        sequence=core.received + 1,
                        **options,
                    )
                    break
                except SoupBinTCPError as exc:
                    delay = first_login_retry(exc, attempt, options.get("reconnect"))
                    if delay is None:
                        raise
                    self._logins.clear()
                    attempt += 1
                    await asyncio.sleep(delay)
            self._login_if_pending()  # binds the state: before anything is journaled
            self._client.set_on_ready(self._on_ready)
            self._on_ready()  # what came with the login
            while core.phase is not Phase.READY:
                await self._wait_change()
        except BaseException:
            await self.close()
            raise
        return self

    # --- state -------------------------------------------------------------------------------

    @property
    def book(self) -> OrderBook:
        """Every order, fill and position as the stream tells them."""
        return self._core.book

    @property
    def orders(self) -> dict[int, Order]:
        return self._core.book.orders

    @property
    def positions(self) -> dict[str, int]:
        return self._core.book.positions

    @property
    def phase(self) -> Phase:
        return self._core.phase

    @property
    def core(self) -> OrderCore:
        return self._core

    @property
    def session(self) -> AsyncClient:
        """The SoupBinTCP session underneath (address, reconnects, failovers)."""
        assert self._client is not None
        return self._client

    # --- requests ----------------------------------------------------------------------------

    def enter(
        self,
        symbol: str,
        side: str,
        quantity: int,
        price: int,
        *,
        time_in_force: str = "0",
        display: str = "Y",
        capacity: str = "A",
        intermarket_sweep: str = "N",
        cross_type: str = "N",
        cl_ord_id: str = "",
    ) -> OrderHandle:
        """Enter an order (price in ticks of $0.0001). Returns at once; await the handle for
        Accepted or Rejected. time_in_force, display, capacity, intermarket_sweep,
        cross_type: the spec's letters. (Spelled out, not `**fields`: no dict per order.)"""
        core = self._core
        request = core.enter_request(
            symbol, side, quantity, price, time_in_force, display, capacity, intermarket_sweep,
            cross_type, cl_ord_id,
        )  # fmt: skip
        try:
            return self._handle(request)
        finally:  # the order in the book once its message is on its way (`enter_request`)
            core.book.entered(
                request.user_ref_num, cl_ord_id, symbol, side, quantity, price, time_in_force
            )

    def replace(
        self, order: int | OrderHandle, quantity: int, price: int, **fields: str
    ) -> OrderHandle:
        """Replace an order (its chain's current number is used). `quantity`: the chain's
        whole liability, executed shares included (§5.3)."""
        return self._handle(self._core.replace(_num(order), quantity, price, **fields))

    def cancel(self, order: int | OrderHandle, quantity: int = 0) -> OrderHandle:
        """Cancel down to `quantity` open shares (0: all)."""
        return self._handle(self._core.cancel(_num(order), quantity))

    def modify(self, order: int | OrderHandle, side: str, quantity: int) -> OrderHandle:
        return self._handle(self._core.modify(_num(order), side, quantity))

    def cancel_all(self) -> list[OrderHandle]:
        """The kill switch: cancel every live order; new ones are refused until
        `release_kill_switch()`."""
        return [self._handle(r) for r in self._core.cancel_all()]

    def release_kill_switch(self) -> None:
        self._core.release_kill_switch()

    async def sync(self) -> None:
        """Wait until the client holds everything the venue has done up to now (fills
        included): an Account Query's answer follows all of it in the stream."""
        while True:
            while self._core.phase is not Phase.READY:
                if self._end is not None:
                    raise self._end
                await self._wait_change()
            if (await self._handle(self._core.query())).outcome != "superseded":
                return

    async def drain(self) -> None:
        """Wait until every request has its answer."""
        while not self._core.idle:
            if self._end is not None:
                raise self._end
            await self._wait_change()

    def events(self) -> AsyncIterator[OrderEvent]:
        """Every outbound message from now on, once each, with the requests it settled."""
        if self._events is None:
            self._events = asyncio.Queue()
        return self._iter_events(self._events)

    async def _iter_events(self, queue: asyncio.Queue[OrderEvent]) -> AsyncIterator[OrderEvent]:
        while True:
            if queue.empty() and self._end is not None:
                return
            get = asyncio.ensure_future(queue.get())
            changed = asyncio.ensure_future(self._wait_change())
            await asyncio.wait({get, changed}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            if get.done():
                yield get.result()
            else:
                get.cancel()

    # --- plumbing ----------------------------------------------------------------------------

    async def _wait_change(self) -> None:
        self._changed.clear()
        self._waiting += 1
        try:
            await self._changed.wait()
        finally:
            self._waiting -= 1

    def _on_status(self, event: Event) -> None:
        if self._user_status is not None:
            self._user_status(event)
        if isinstance(event, LoginAccepted):
            self._logins.append(event.session)
            self._loop.call_soon(self._login_if_pending)

    def _login_if_pending(self) -> None:
        client = self._client
        if client is None or not self._logins:
            return  # connect_async has not returned yet: it calls again
        session = self._logins[-1]
        self._logins.clear()
        try:
            query = self._core.logged_in(session)
        except SoupBinTCPError as exc:  # StateMismatch: another day's state
            self._finish(exc)
            return
        self._write([query])
        self._tell_answers(self._core.superseded)
        self._core.superseded.clear()
        self._changed.set()

    def _on_ready(self) -> None:
        """Messages are queued (or the session ended): apply them and settle the waiters
        right here, in the protocol's call, so an answer wakes its awaiter directly (no
        reader task in between: one event-loop turn less per round trip)."""
        client = self._client
        if client is None or self._end is not None:
            return
        core = self._core
        self._turn_open = False  # new input: a new turn (what it queued is sent with the next)
        try:
            # Everything queued comes in one batch; only at the session's end is another
            # call needed (it raises the end once the rest is handed out).
            batch = client.receive_batch_nowait()
            listening = self._on_event is not None or self._events is not None
            futures = self._futures
            while batch:
                for item in batch:
                    if type(item) is not SequencedMessages:
                        continue  # Unsequenced Data: not OUCH's outbound stream
                    if listening:
                        self._tell(core.received_run(item.first_sequence, item.messages))
                        continue
                    # No event per message: only the answers (`_tell_answers`, written out).
                    for answer in core.received_answers(item.first_sequence, item.messages):
                        future = futures.pop(answer.request, None)
                        if future is not None and not future.done():
                            future.set_result(answer)
                if core.phase is _READY and (core._queue or core._resend):  # `sendable`
                    self._schedule_flush()
                if self._waiting:
                    self._changed.set()
                batch = client.receive_batch_nowait() if client.is_closed else []
        except SessionEnded:
            self._finish(SessionEnded("end of session"))
        except SoupBinTCPError as exc:
            self._finish(exc)
        except Exception as exc:  # a bug or a full disk: nobody waits for ever
            self._finish(ConnectionLost(f"order client stopped: {exc!r}"))
            raise

    def _tell_answers(self, answers: list[Answer] | tuple[Answer, ...]) -> None:
        futures = self._futures
        for answer in answers:
            future = futures.pop(answer.request, None)
            if future is not None and not future.done():
                future.set_result(answer)

    def _tell(self, events: list[OrderEvent]) -> None:
        on_event = self._on_event
        queue = self._events
        for event in events:
            if event.answers:
                self._tell_answers(event.answers)
            if on_event is not None:
                try:
                    result = on_event(event)
                    if isinstance(result, Awaitable):
                        self._loop.create_task(_await(result))
                except Exception:
                    _log_failure()
            if queue is not None:
                queue.put_nowait(event)

    def _finish(self, exc: SoupBinTCPError) -> None:
        if self._end is None:
            self._end = exc
        for future in self._futures.values():
            if not future.done():
                future.set_exception(exc)
                future.exception()  # a handle nobody awaits is not an error to log
        self._futures.clear()
        self._changed.set()

    async def close(self) -> None:
        """Log out and close the journals (requests not answered are re-sent by the next
        run with the same state)."""
        self._finish(SessionEnded("closed by the application"))
        if self._timer is not None:
            self._timer.cancel()
        if self._client is not None:
            await self._client.close()
        if self._core.state is not None:
            self._core.state.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _num(order: int | OrderHandle) -> int:
    return order.user_ref_num if isinstance(order, OrderHandle) else order


async def _await(result: Awaitable[Any]) -> None:
    try:
        await result
    except Exception:
        _log_failure()


def _log_failure() -> None:
    import logging

    logging.getLogger("soupbintcp.orders").exception("on_event failed")
