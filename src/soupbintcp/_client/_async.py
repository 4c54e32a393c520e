"""The asyncio client: a thin driver that moves bytes and timers between the event loop and a
`ClientSession`, with a bounded queue for the application and reconnect with resume.

Layer 3. The hot path is `_ClientProtocol.data_received`: one `receive_data` call per chunk,
runs of sequenced messages queued as they come (no object per message until the application
asks for `Message` objects), one wake-up of the consumer per chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl as _ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, Self, cast

from .._errors import (
    ConnectionLost,
    LocalProtocolError,
    LoginRejected,
    SessionEnded,
    SessionTimeout,
    SoupBinTCPError,
)
from .._session._client import ClientSession, ClientState
from .._session._events import BatchItem, Event, Message, NoMoreMessages, SequencedMessages
from .._wire._framing import Dialect
from .._wire._packets import Debug, EndOfSession, LoginAccepted, LoginReject, UnsequencedData
from ._reconnect import (
    CloseReason,
    ReconnectPolicy,
    close_reason_for,
    ended_by,
    is_recoverable,
    reconnect_policy,
    ssl_context,
)

__all__ = ["AsyncClient", "BatchItem", "connect_async"]

log = logging.getLogger("soupbintcp.client")

Address = tuple[str, int]
OnMessage = Callable[[Message], Awaitable[None]]
OnClose = Callable[[], Awaitable[None]]
OnStatus = Callable[[Event], None]

# 50,000: uvloop reads several chunks per wake-up, so the queue fills to the mark before the
# consumer runs; higher marks only cost memory (measured: no throughput change).
_DEFAULT_MAX_QUEUE: Final = 50_000


class _ClientProtocol(asyncio.Protocol):
    __slots__ = ("_client", "transport")

    def __init__(self, client: AsyncClient) -> None:
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
        session = client._session
        try:
            events = session.receive_data(data, client._loop.time())
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


class AsyncClient:
    """A SoupBinTCP client session over asyncio. Create it with `connect_async()`."""

    def __init__(
        self,
        address: Address,
        session: ClientSession,
        *,
        on_msg_coro: OnMessage | None = None,
        on_close_coro: OnClose | None = None,
        on_status: OnStatus | None = None,
        reconnect: ReconnectPolicy | None = None,
        ssl: _ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout: float = 10.0,
        max_queue: int = _DEFAULT_MAX_QUEUE,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.address = address
        self._session = session
        self._on_msg_coro = on_msg_coro
        self._on_close_coro = on_close_coro
        self._on_status = on_status
        self._reconnect = reconnect
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._connect_timeout = connect_timeout
        self._high_water = max(1, max_queue)
        self._low_water = self._high_water // 4
        # Received, not yet handed to the application.
        self._items: deque[BatchItem] = deque()
        self._queued = 0  # messages in _items
        # The run receive_msg() is handing out: payloads[i] is message first + i. Message
        # objects are made one at a time as handed out: a tuple subclass stays tracked by
        # the garbage collector, so a whole run of them made at once slows every collection.
        self._payloads: list[bytes] = []
        self._first = 0
        self._index = 0
        self._waiter: asyncio.Future[None] | None = None
        self._protocol: _ClientProtocol | None = None
        self._transport: asyncio.Transport | None = None
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._login_future: asyncio.Future[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._dispatch_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._logout_waiter: asyncio.Future[None] | None = None
        self._accepted_sequence = 0
        self._end: SoupBinTCPError | None = None  # set once the session is over for good
        self.close_reason: CloseReason | None = None
        self.reconnects = 0

    # --- public API ------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self._session.session_id

    @property
    def next_sequence(self) -> int:
        """Sequence number of the next sequenced message to arrive (received messages
        still queued for the application are counted as arrived)."""
        return self._session.next_sequence

    @property
    def state(self) -> ClientState:
        return self._session.state

    @property
    def is_closed(self) -> bool:
        return self._end is not None

    @property
    def queued(self) -> int:
        """Messages received and not yet handed to the application."""
        return self._queued + len(self._payloads) - self._index

    async def receive_msg(self) -> Message:
        """The next message, sequenced or not, in stream order.

        Raises `SessionEnded` after End of Session, logout or close once every message
        received before it has been handed out; the session's own error otherwise
        (`LoginRejected`, `HeartbeatTimeout`, `ConnectionLost`, `SequenceGap`, ...).
        """
        while True:
            # Checked after every wait too: another consumer may have started a run.
            i = self._index
            if i < len(self._payloads):
                self._index = i + 1
                return Message((self._first + i, self._payloads[i]))
            if self._items:
                item = self._items.popleft()
                if type(item) is UnsequencedData:
                    self._dequeued(1)
                    return Message((None, item.data))
                assert type(item) is SequencedMessages
                self._dequeued(len(item.messages))
                self._payloads = item.messages
                self._first = item.first_sequence
                self._index = 1
                return Message((item.first_sequence, item.messages[0]))
            if self._end is not None:
                raise self._end
            await self._wait()

    async def receive_batch(self) -> list[BatchItem]:
        """Everything received so far (at least one message, waiting if there is none):
        runs of sequenced payloads as `SequencedMessages(first_sequence, messages)` and
        unsequenced messages as `UnsequencedData`, in stream order. Raises as `receive_msg`.
        """
        while True:
            out: list[BatchItem] = []
            if self._index < len(self._payloads):
                out.append(
                    SequencedMessages(self._first + self._index, self._payloads[self._index :])
                )
                self._payloads = []
                self._index = 0
            if self._items:
                out.extend(self._items)
                self._items.clear()
                self._dequeued(self._queued)
            if out:
                return out
            if self._end is not None:
                raise self._end
            await self._wait()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        i = self._index
        if i < len(self._payloads):  # receive_msg's fast path, without its await
            self._index = i + 1
            return Message((self._first + i, self._payloads[i]))
        try:
            return await self.receive_msg()
        except SessionEnded:
            raise StopAsyncIteration from None

    async def batches(self) -> AsyncIterator[list[BatchItem]]:
        """`receive_batch()` as an async iterator that ends after End of Session."""
        while True:
            try:
                yield await self.receive_batch()
            except SessionEnded:
                return

    def send_unseq_data(self, data: bytes) -> None:
        """Send an Unsequenced Data packet (best effort, as the protocol says)."""
        if self._end is not None:
            raise self._end
        if self._transport is None or self._session.state is not ClientState.LOGGED_IN:
            raise LocalProtocolError(
                f"cannot send: the session is {self._session.state.value} (reconnecting?)"
            )
        self._transport.write(self._session.send_unsequenced(data, self._loop.time()))

    def send_debug(self, text: str) -> None:
        if self._transport is None:
            raise LocalProtocolError("cannot send: not connected")
        self._transport.write(self._session.send_debug(text, self._loop.time()))

    async def logout(self, timeout: float = 5.0) -> None:
        """Send a Logout Request and wait (up to `timeout`) for the server to close."""
        if self._end is not None:
            return
        self._stop_reconnecting()
        if self._transport is not None and self._session.state in (
            ClientState.LOGGED_IN,
            ClientState.LOGIN_SENT,
            ClientState.ENDED,
        ):
            self._transport.write(self._session.logout(self._loop.time()))
            protocol = self._protocol
            closed = self._loop.create_future()
            self._logout_waiter = closed
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(closed), timeout)
            if self._protocol is protocol and self._transport is not None:
                self._transport.close()
        self._finish(CloseReason.LOGOUT, SessionEnded("logged out"))
        await self._await_close_callback()

    async def close(self) -> None:
        """End the session: a polite Logout Request if logged in, then close the socket.
        Messages already received can still be read; then `receive_msg()` raises
        `SessionEnded`."""
        if self._end is None:
            self._stop_reconnecting()
            if self._transport is not None:
                if self._session.state is ClientState.LOGGED_IN:
                    self._transport.write(self._session.logout(self._loop.time()))
                self._transport.close()
            self._finish(CloseReason.CLOSED, SessionEnded("closed by the application"))
        await self._await_close_callback()

    async def wait_closed(self) -> None:
        """Wait until the session has ended for good (for whatever reason)."""
        while self._end is None:
            await self._wait()
        await self._await_close_callback()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- connecting ------------------------------------------------------------------------

    async def _connect_and_login(self) -> None:
        host, port = self.address[0], self.address[1]
        kwargs: dict[str, Any] = {}
        if self._ssl is not None:
            kwargs["ssl"] = self._ssl
            kwargs["server_hostname"] = self._server_hostname or host
        try:
            transport, protocol = await asyncio.wait_for(
                self._loop.create_connection(lambda: _ClientProtocol(self), host, port, **kwargs),
                self._connect_timeout,
            )
        except TimeoutError:
            raise ConnectionLost(f"could not connect to {host}:{port} in time") from None
        self._transport = transport
        self._protocol = protocol
        self._paused = False
        login = self._loop.create_future()
        self._login_future = login
        try:
            transport.write(self._session.login(self._loop.time()))
            self._schedule_timer()
            await login
        except BaseException:
            if self._protocol is protocol:
                self._drop_connection()
            raise
        finally:
            self._login_future = None
        log.info(
            "logged in to %s:%s session %r at sequence %d",
            host,
            port,
            self._session.session_id,
            self._accepted_sequence,
        )

    async def _reconnect_loop(self) -> None:
        policy = self._reconnect
        assert policy is not None
        failures = 0
        while self._end is None:
            await asyncio.sleep(policy.delay(failures))
            try:
                await self._connect_and_login()
            except asyncio.CancelledError:
                raise
            except (TimeoutError, SoupBinTCPError, OSError) as exc:
                if self._session.is_terminal or not is_recoverable(exc):
                    err = exc if isinstance(exc, SoupBinTCPError) else ConnectionLost(str(exc))
                    self._finish(close_reason_for(err), err)
                    return
                failures += 1
                log.warning(
                    "reconnect attempt %d to %s:%s failed: %s", failures, *self.address, exc
                )
                if policy.gives_up(failures):
                    self._finish(
                        CloseReason.CONNECTION_LOST,
                        ConnectionLost(f"gave up after {failures} reconnect attempts: {exc}"),
                    )
                    return
                continue
            self.reconnects += 1
            return

    def _stop_reconnecting(self) -> None:
        task = self._reconnect_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._reconnect_task = None

    # --- events from the protocol and the timer --------------------------------------------

    def _dispatch(self, events: list[Event]) -> None:
        n = 0
        items = self._items
        for event in events:
            if type(event) is SequencedMessages:
                items.append(event)
                n += len(event.messages)
            elif type(event) is UnsequencedData:
                items.append(event)
                n += 1
            else:
                self._status(event)
        if n:
            self._queued += n
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
            if self._queued >= self._high_water and not self._paused:
                self._pause()

    def _status(self, event: Event) -> None:
        if type(event) is LoginAccepted:
            self._accepted_sequence = event.sequence
            self._schedule_timer()  # heartbeats start now
            if self._login_future is not None and not self._login_future.done():
                self._login_future.set_result(None)
        elif type(event) is LoginReject:
            self._fail(LoginRejected(event.reason))
        elif type(event) is EndOfSession:
            self._finish(CloseReason.END_OF_SESSION, SessionEnded("end of session"))
        elif type(event) is Debug:
            log.debug("debug packet from %s:%s: %s", *self.address, event.text)
        elif type(event) is NoMoreMessages:
            log.debug("no more messages available at sequence %d", event.sequence)
        if self._on_status is not None:
            try:
                self._on_status(event)
            except Exception:
                log.exception("on_status callback failed")

    def _schedule_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._session.next_timer()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._loop.time()
        if self._paused:
            self._session.peer_alive(now)  # unread data is waiting: the server is alive
        try:
            out = self._session.handle_timer(now)
        except SessionTimeout as exc:
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
        if self._end is not None:
            return
        if (
            self._reconnect is not None
            and is_recoverable(exc)
            and self._session.state is ClientState.DISCONNECTED
        ):
            log.warning("%s; reconnecting", exc)
            self._start_reconnect()
        else:
            self._finish(close_reason_for(exc), exc)

    def _connection_lost(self, protocol: _ClientProtocol, exc: Exception | None) -> None:
        waiter = self._logout_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if protocol is not self._protocol:
            return  # already dropped on purpose
        self._drop_connection()
        state = self._session.state
        if (ended := ended_by(state)) is not None:
            self._finish(*ended)
        elif state is ClientState.REJECTED or state is ClientState.ERROR:
            return  # already reported
        else:
            why = f": {exc}" if exc else ""
            self._fail(
                ConnectionLost(f"connection to {self.address[0]}:{self.address[1]} lost{why}")
            )

    def _drop_connection(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self._transport
        self._transport = None
        self._protocol = None
        self._session.connection_lost()
        if transport is not None:
            transport.abort()

    def _start_reconnect(self) -> None:
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = self._loop.create_task(self._reconnect_loop())

    def _finish(self, reason: CloseReason, exc: SoupBinTCPError) -> None:
        """The session is over for good. Queued messages stay readable."""
        if self._end is not None:
            return
        self._end = exc
        self.close_reason = reason
        log.info("session with %s:%s ended: %s", *self.address, exc)
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
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
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

    def _pause(self) -> None:
        if self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def _dequeued(self, n: int) -> None:
        self._queued -= n
        if self._paused and self._queued <= self._low_water:
            self._paused = False
            if self._transport is not None:
                self._transport.resume_reading()

    async def _dispatch_messages(self) -> None:
        assert self._on_msg_coro is not None
        on_msg = self._on_msg_coro
        while True:
            try:
                msg = await self.receive_msg()
            except SoupBinTCPError:
                return
            try:
                await on_msg(msg)
            except Exception:
                log.exception("on_msg_coro failed for message %r", msg)


async def connect_async(
    address: Address,
    username: str,
    password: str,
    session_id: str = "",
    sequence: int = 1,
    on_msg_coro: OnMessage | None = None,
    on_close_coro: OnClose | None = None,
    *,
    heartbeat_interval: float = 1.0,
    heartbeat_timeout: float = 15.0,
    client_heartbeat_timeout_ms: int | None = None,
    login_timeout: float = 30.0,
    connect_timeout: float = 10.0,
    reconnect: bool | ReconnectPolicy = False,
    ssl: _ssl.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    dialect: Dialect = Dialect.SOUPBINTCP,
    on_status: OnStatus | None = None,
    max_queue: int = _DEFAULT_MAX_QUEUE,
) -> AsyncClient:
    """Connect, log in and return the session once the server has accepted the login.

    `sequence`: 1 for the whole session, n to start at n, 0 for new messages only.
    `session_id` "" logs into the server's current session. With `reconnect` (True or a
    `ReconnectPolicy`) a lost connection is re-established and the session resumed at the
    next expected sequence number, so the application sees every sequenced message exactly
    once, in order. Raises `LoginRejected`, `LoginTimeout`, `OSError` (unreachable) or a
    `ProtocolError` if the first login does not succeed.
    """
    session = ClientSession(
        username,
        password,
        session_id=session_id,
        sequence=sequence,
        heartbeat_interval=heartbeat_interval,
        heartbeat_timeout=heartbeat_timeout,
        login_timeout=login_timeout,
        client_heartbeat_timeout_ms=client_heartbeat_timeout_ms,
        dialect=dialect,
    )
    client = AsyncClient(
        (address[0], address[1]),
        session,
        on_msg_coro=on_msg_coro,
        on_close_coro=on_close_coro,
        on_status=on_status,
        reconnect=reconnect_policy(reconnect),
        ssl=ssl_context(ssl),
        server_hostname=server_hostname,
        connect_timeout=connect_timeout,
        max_queue=max_queue,
    )
    await client._connect_and_login()
    if on_msg_coro is not None:
        client._dispatch_task = asyncio.get_running_loop().create_task(client._dispatch_messages())
    return client
