"""The asyncio client's I/O: the protocol object, connecting and logging in, the session's
events and timer on the loop, reading paused and resumed, the end of the session.

Layer 3. `AsyncClient` (in `_async`) is the application's API on top of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from typing import Any, cast

from .._errors import ConnectionLost, SoupBinTCPError
from .._session._client import ClientSession, ClientState
from .._session._events import Event, Message
from .._wire._packets import LoginAccepted
from ._core import ClientCore, log
from ._options import Address, ClientConfig
from ._reconnect import Attempts, CloseReason, ended_by

__all__ = ["AsyncIO", "OnClose", "OnMessage"]

OnMessage = Callable[[Message], Awaitable[None]]
OnClose = Callable[[], Awaitable[None]]


class _ClientProtocol(asyncio.Protocol):
    __slots__ = ("_client", "transport")

    def __init__(self, client: AsyncIO) -> None:
        self._client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        client = self._client
        if client._protocol is not self:
            return  # a connection being torn down
        session = client._core.session
        now = client._loop.time()
        # The usual answer to a request: exactly one Sequenced Data packet, queued as the
        # message it is (no frame walk, no run made and taken apart again).
        msg = session.receive_one(data, now)
        if msg is not None:
            # `inbox.put_one(msg)` inlined: one call less on the round trip's path.
            inbox = client._inbox
            inbox._items.append(msg)
            inbox._queued += 1
            if inbox._queued >= inbox._high_water and not inbox._paused:
                inbox._paused = inbox._pause()
            # `_wake_consumer` inlined: one call less on the round trip's path.
            waiter = client._waiter
            if waiter is not None:
                client._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
            if client._on_ready is not None:
                client._ready()
            return
        try:
            events = session.receive_data(data, now)
        except SoupBinTCPError as exc:
            client._fail(exc)
            return
        client._dispatch(events)
        if session.error is not None:
            client._fail(session.error)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._connection_lost(self, exc)


class AsyncIO:
    """The event loop's side of `AsyncClient`: it owns the `ClientCore` (session, inbox,
    reconnect bookkeeping) and is its driver."""

    def _init_io(
        self,
        config: ClientConfig,
        session: ClientSession,
        on_msg_coro: OnMessage | None,
        on_close_coro: OnClose | None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._core = ClientCore(
            config,
            session,
            now=self._loop.time,
            pause_io=self._pause_io,
            resume_io=self._resume_io,
            finish=self._finish,
        )
        self._inbox = self._core.inbox
        self._on_msg_coro = on_msg_coro
        self._on_close_coro = on_close_coro
        self._waiter: asyncio.Future[None] | None = None
        self._protocol: _ClientProtocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._login_future: asyncio.Future[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._dispatch_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._logout_waiter: asyncio.Future[None] | None = None
        self._on_ready: Callable[[], None] | None = None

    # --- connecting ------------------------------------------------------------------------

    async def _connect(self, *, first: bool) -> None:
        """Connection attempts until one logs in. When they end: a first login raises,
        a resume ends the session."""
        attempts = Attempts(self._core.reconnect, len(self._core.addresses), first=first)
        while self._core.end is None:
            delay = attempts.delay()
            if delay:
                await asyncio.sleep(delay)
            try:
                await self._connect_and_login(self._core.next_address(attempts))
                return
            except asyncio.CancelledError:
                raise
            except (TimeoutError, SoupBinTCPError, OSError) as exc:
                ending = self._core.attempt_failed(attempts, exc)
                if ending is None:
                    continue
                if not first:
                    self._finish(ending.reason, ending.error)
                    return
                if ending.raised is exc:
                    raise
                raise ending.raised from exc

    async def _connect_and_login(self, address: Address) -> None:
        host, port = address
        kwargs: dict[str, Any] = {}
        if self._core.config.ssl is not None:
            kwargs["ssl"] = self._core.config.ssl
            kwargs["server_hostname"] = self._core.config.server_hostname or host
        try:
            transport, protocol = await asyncio.wait_for(
                self._loop.create_connection(lambda: _ClientProtocol(self), host, port, **kwargs),
                self._core.config.connect_timeout,
            )
        except TimeoutError:
            raise ConnectionLost(f"could not connect to {host}:{port} in time") from None
        self._transport = transport
        self._protocol = protocol
        self._core.unpause()
        login = self._loop.create_future()
        self._login_future = login
        try:
            transport.write(self._core.session.login(self._loop.time()))
            self._schedule_timer()
            await login
        except BaseException:
            if self._protocol is protocol:
                self._drop_connection()
            raise
        finally:
            self._login_future = None

    async def _reconnect_loop(self) -> None:
        await self._connect(first=False)

    def _stop_reconnecting(self) -> None:
        task = self._reconnect_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._reconnect_task = None

    # --- events from the protocol and the timer --------------------------------------------

    def _dispatch(self, events: list[Event]) -> None:
        n, other = self._inbox.queue(events)
        if n:
            self._wake_consumer()
        if other:
            err = self._core.act(other)
            if any(type(event) is LoginAccepted for event in other):
                self._schedule_timer()  # heartbeats start now
                login = self._login_future
                if login is not None and not login.done():
                    login.set_result(None)
            self._core.report(other)
            if err is not None:
                self._fail(err)

    def _wake_consumer(self) -> None:
        """Messages were queued: wake whoever waits for them."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self._on_ready is not None:
            self._ready()

    def _ready(self) -> None:
        """Tell the `on_ready` callback, in the protocol's call: no task hop in between."""
        assert self._on_ready is not None
        try:
            self._on_ready()
        except Exception:  # the application's bug must not break the connection
            log.exception("on_ready callback failed")

    def _schedule_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._core.session.next_timer()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            out = self._core.session.handle_timer(self._loop.time())
        except SoupBinTCPError as exc:
            self._fail(exc)
            return
        if out and self._transport is not None:
            self._transport.write(out)
        self._schedule_timer()

    def _fail(self, exc: SoupBinTCPError) -> None:
        """The current connection failed with `exc`: drop it, then resume or end."""
        self._drop_connection()
        login = self._login_future
        if login is not None and not login.done():
            login.set_exception(exc)  # the connect / reconnect attempt decides
            return
        if self._core.end is None and self._core.end_or_resume(exc):
            self._start_reconnect()

    def _connection_lost(self, protocol: _ClientProtocol, exc: Exception | None) -> None:
        waiter = self._logout_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if protocol is not self._protocol:
            return  # already dropped on purpose
        self._drop_connection()
        state = self._core.session.state
        if (ended := ended_by(state)) is not None:
            self._finish(*ended)
        elif state is ClientState.REJECTED or state is ClientState.ERROR:
            return  # already reported
        else:
            self._fail(self._core.lost_error(exc))

    def _drop_connection(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self._transport
        self._transport = None
        self._protocol = None
        self._core.session.connection_lost()
        if transport is not None:
            transport.abort()

    def _start_reconnect(self) -> None:
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = self._loop.create_task(self._reconnect_loop())

    def _finish(self, reason: CloseReason, exc: SoupBinTCPError) -> None:
        """The session is over for good. Queued messages stay readable."""
        if not self._core.ended(reason, exc):
            return
        if self._transport is not None:
            # Let End of Session / logout close gracefully: what we wrote still goes out.
            transport = self._transport
            self._transport = None
            self._protocol = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            transport.close()
        self._stop_reconnecting()
        self._wake_consumer()  # a waiting receive_* sees the close
        if self._on_close_coro is not None and self._close_task is None:
            self._close_task = self._loop.create_task(self._run_close_callback())

    async def _run_close_callback(self) -> None:
        if self._dispatch_task is not None and self._dispatch_task is not asyncio.current_task():
            # on_msg_coro sees every message before on_close_coro runs
            with contextlib.suppress(BaseException):
                await self._dispatch_task
        assert self._on_close_coro is not None
        try:
            await self._on_close_coro()
        except Exception:
            log.exception("on_close_coro failed")

    async def _await_close_callback(self) -> None:
        task = self._close_task
        if task is not None and task is not asyncio.current_task():
            await asyncio.shield(task)

    # --- flow control ----------------------------------------------------------------------

    async def _wait(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = self._loop.create_future()
        await waiter

    def _pause_io(self) -> bool:
        if self._transport is None:
            return False
        self._transport.pause_reading()
        return True

    def _resume_io(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()
