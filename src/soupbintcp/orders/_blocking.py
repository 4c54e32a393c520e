"""`BlockingOrderClient`: the order client without an event loop, on the blocking
SoupBinTCP client (`soupbintcp.connect`), with the same shape as `OrderClient`.

Everything runs in the caller's thread except the SoupBinTCP client's own I/O thread, which
only notes logins here. Requests are sent at once (each call its own journal write and
fdatasync); inside `with client.batch():` they are held and sent together at the end of
the block, sharing one write and one fdatasync (group commit). Answers arrive while the
caller waits: `handle.wait(timeout)`, `client.poll(timeout)` or `client.drain(timeout)`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, Self, Unpack

from .._client import Addresses, BlockingClient, ConnectOptions, connect
from .._errors import SoupBinTCPError
from .._session import Event, SequencedMessages
from .._wire import LoginAccepted
from ._book import Answer, Order, OrderBook, Request
from ._core import OrderCore, OrderEvent, Phase
from ._login import first_login_retry
from ._state import StateDir

__all__ = ["BlockingOrderClient", "BlockingOrderHandle"]

OnOrderEvent = Callable[[OrderEvent], Any]


class BlockingOrderHandle:
    """A request just made: its UserRefNum, its order, and `wait()` for its `Answer`."""

    __slots__ = ("_client", "request")

    def __init__(self, request: Request, client: BlockingOrderClient) -> None:
        self.request = request
        self._client = client

    @property
    def user_ref_num(self) -> int:
        return self.request.user_ref_num

    def done(self) -> bool:
        return self.request.answered

    def wait(self, timeout: float | None = None) -> Answer:
        """The answer, receiving until it comes (`TimeoutError` after `timeout` seconds)."""
        return self._client._wait_for(self.request, timeout)

    def __repr__(self) -> str:
        return f"BlockingOrderHandle({self.request.kind.value} {self.request.user_ref_num})"


class BlockingOrderClient:
    """One OUCH account's order entry, blocking. Create it with `BlockingOrderClient.connect`."""

    def __init__(self, core: OrderCore, on_event: OnOrderEvent | None) -> None:
        self._core = core
        self._on_event = on_event
        self._client: BlockingClient | None = None
        self._logins: list[str] = []
        self._answers: dict[Request, Answer] = {}
        self._batching = 0
        self._end: SoupBinTCPError | None = None

    @classmethod
    def connect(
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
        timeout: float | None = 30.0,
        **options: Unpack[ConnectOptions],
    ) -> Self:
        """As `OrderClient.connect`; returns once caught up (at most `timeout` seconds)."""
        options.setdefault("reconnect", True)
        state_dir = StateDir(state, fsync=fsync) if state is not None else None
        core = OrderCore(
            state_dir, rate, cancel_on_disconnect=cancel_on_disconnect, now=time.monotonic()
        )
        self = cls(core, on_event)
        user_status = options.pop("on_status", None)

        def on_status(event: Event) -> None:  # in the client's I/O thread: note it, no more
            if isinstance(event, LoginAccepted):
                self._logins.append(event.session)
            if user_status is not None:
                user_status(event)

        options["on_status"] = on_status
        try:
            session_id = state_dir.session_id or "" if state_dir is not None else ""
            attempt = 0
            while True:
                try:
                    self._client = connect(
                        address, username, password, session_id, core.received + 1, **options
                    )
                    break
                except SoupBinTCPError as exc:
                    delay = first_login_retry(exc, attempt, options.get("reconnect"))
                    if delay is None:
                        raise
                    self._logins.clear()
                    attempt += 1
                    time.sleep(delay)
            deadline = None if timeout is None else time.monotonic() + timeout
            while core.phase is not Phase.READY:
                self._pump(_left(deadline))
        except BaseException:
            self.close()
            raise
        return self

    # --- state (as OrderClient) ----------------------------------------------------------------

    @property
    def book(self) -> OrderBook:
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
    def session(self) -> BlockingClient:
        assert self._client is not None
        return self._client

    # --- requests ------------------------------------------------------------------------------

    def _handle(self, request: Request) -> BlockingOrderHandle:
        if not self._batching:
            self._send()
        return BlockingOrderHandle(request, self)

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
    ) -> BlockingOrderHandle:
        """As `OrderClient.enter`; wait for the answer with the handle's `wait()`."""
        request = self._core.enter(
            symbol, side, quantity, price, time_in_force=time_in_force, display=display,
            capacity=capacity, intermarket_sweep=intermarket_sweep, cross_type=cross_type,
            cl_ord_id=cl_ord_id,
        )  # fmt: skip
        return self._handle(request)

    def replace(
        self, order: int | BlockingOrderHandle, quantity: int, price: int, **fields: str
    ) -> BlockingOrderHandle:
        return self._handle(self._core.replace(_num(order), quantity, price, **fields))

    def cancel(self, order: int | BlockingOrderHandle, quantity: int = 0) -> BlockingOrderHandle:
        return self._handle(self._core.cancel(_num(order), quantity))

    def modify(
        self, order: int | BlockingOrderHandle, side: str, quantity: int
    ) -> BlockingOrderHandle:
        return self._handle(self._core.modify(_num(order), side, quantity))

    def cancel_all(self) -> list[BlockingOrderHandle]:
        """The kill switch (see `OrderClient.cancel_all`)."""
        with self.batch():
            return [BlockingOrderHandle(r, self) for r in self._core.cancel_all()]

    def release_kill_switch(self) -> None:
        self._core.release_kill_switch()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Hold the requests made inside the block; send them together at its end."""
        self._batching += 1
        try:
            yield
        finally:
            self._batching -= 1
            if not self._batching:
                self._send()

    # --- waiting -------------------------------------------------------------------------------

    def poll(self, timeout: float | None = 0.0) -> list[OrderEvent]:
        """Receive what has arrived (waiting up to `timeout` for something): the events."""
        return self._pump(timeout)

    def sync(self, timeout: float | None = None) -> None:
        """Receive until the client holds everything the venue has done up to now (see
        `OrderClient.sync`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            while self._core.phase is not Phase.READY:
                self._pump(_left(deadline))
            handle = self._handle(self._core.query())
            if self._wait_for(handle.request, _left(deadline)).outcome != "superseded":
                return

    def drain(self, timeout: float | None = None) -> None:
        """Receive until every request has its answer (`TimeoutError` after `timeout`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._core.idle:
            self._pump(_left(deadline))

    def _wait_for(self, request: Request, timeout: float | None) -> Answer:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not request.answered:
            self._pump(_left(deadline))
        return self._answers.pop(request)

    def _pump(self, timeout: float | None) -> list[OrderEvent]:
        """One round: logins noted, a batch received (or nothing within `timeout`), what is
        due sent."""
        if self._end is not None:
            raise self._end
        client = self._client
        assert client is not None
        core = self._core
        if self._logins:
            session = self._logins[-1]
            self._logins.clear()
            self._write([core.logged_in(session)])
            for answer in core.superseded:
                self._answers[answer.request] = answer
            core.superseded.clear()
        if core.sendable:  # the throttle decides how long we may wait before sending more
            delay = core.delay(time.monotonic())
            timeout = delay if timeout is None else min(timeout, delay)
        try:
            batch = client.receive_batch(timeout)
        except TimeoutError:  # the callers keep their own deadlines (`_left`)
            self._send()
            return []
        except SoupBinTCPError as exc:
            self._end = exc
            raise
        events: list[OrderEvent] = []
        for item in batch:
            if isinstance(item, SequencedMessages):
                events += core.received_run(item.first_sequence, item.messages)
        for event in events:
            for answer in event.answers:
                self._answers[answer.request] = answer
            if self._on_event is not None:
                self._on_event(event)
        self._send()
        return events

    def _send(self) -> None:
        self._write(self._core.take(time.monotonic()))

    def _write(self, payloads: list[bytes]) -> None:
        client = self._client
        if client is None:
            return
        try:
            for payload in payloads:
                client.send_unseq_data(payload)
        except SoupBinTCPError:  # not connected, or the session ended
            self._core.disconnected()  # journaled: the next login re-sends them

    def close(self) -> None:
        """Log out and close the journals."""
        if self._client is not None:
            self._client.close()
        if self._core.state is not None:
            self._core.state.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _num(order: int | BlockingOrderHandle) -> int:
    return order.user_ref_num if isinstance(order, BlockingOrderHandle) else order


def _left(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no answer in time")
    return left
