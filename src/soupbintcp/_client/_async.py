"""The asyncio client: a thin driver that moves bytes and timers between the event loop and a
`ClientSession`, with a bounded queue for the application and reconnect with resume and
failover. What it shares with the blocking client (the queue, the reconnect decision, the
events) lives in `_core`, `_inbox` and `_reconnect`; this module is only the asyncio I/O.

Layer 3. The hot path is `_ClientProtocol.data_received`: one `receive_data` call per chunk,
runs of sequenced messages queued as they come (no object per message until the application
asks for `Message` objects), one wake-up of the consumer per chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Self, Unpack

from .._errors import LocalProtocolError, SessionEnded, SoupBinTCPError
from .._session._client import ClientSession, ClientState
from .._session._events import BatchItem, FramesItem, Message
from ._async_io import AsyncIO, OnClose, OnMessage
from ._core import LIVE_FOR_LOGOUT, log
from ._options import Address, Addresses, ClientConfig, ConnectOptions
from ._reconnect import CloseReason

__all__ = ["AsyncClient", "BatchItem", "connect_async"]


class AsyncClient(AsyncIO):
    """A SoupBinTCP client session over asyncio. Create it with `connect_async()`.

    `address` is where it is connected (it changes on failover), `addresses` all it may use,
    `reconnects` and `failovers` count logins after the first and logins at another address.
    """

    def __init__(
        self,
        config: ClientConfig,
        session: ClientSession,
        on_msg_coro: OnMessage | None = None,
        on_close_coro: OnClose | None = None,
    ) -> None:
        self._init_io(config, session, on_msg_coro, on_close_coro)

    # --- public API ------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Messages received and not yet handed to the application."""
        return self._inbox._unread()

    # --- what the session knows (read-only) --------------------------------------------------

    @property
    def session_id(self) -> str:
        """The session's id, as the server's Login Accepted gave it."""
        return self._core.session.session_id

    @property
    def next_sequence(self) -> int:
        """Sequence number of the next sequenced message to arrive (received messages
        still queued for the application are counted as arrived)."""
        return self._core.session.next_sequence

    @property
    def state(self) -> ClientState:
        """Where the session is in its life (`ClientState`)."""
        return self._core.session.state

    @property
    def is_closed(self) -> bool:
        """Whether the session is over for good (messages received before may still be
        queued)."""
        return self._core.inbox._end is not None

    @property
    def close_reason(self) -> CloseReason | None:
        """Why the session ended (`CloseReason`); None while it has not."""
        return self._core.close_reason

    @property
    def address(self) -> Address:
        """The address of the current (or last) connection attempt; it changes on failover."""
        return self._core.address

    @property
    def addresses(self) -> tuple[Address, ...]:
        """Every address the client may use, in the order it tries them."""
        return self._core.addresses

    @property
    def reconnects(self) -> int:
        """Logins after the first, over all connections."""
        return self._core.reconnects

    @property
    def failovers(self) -> int:
        """Logins at another address than the login before."""
        return self._core.failovers

    @property
    def gaps_refused(self) -> int:
        """Logins refused here because the server would have skipped messages."""
        return self._core.gaps_refused

    @property
    def messages_received(self) -> int:
        """Sequenced messages received since the first login (those still queued for the
        application included); read on demand, not counted per message."""
        return self._core.messages_received

    @property
    def receive_rate(self) -> float:
        """Messages received per second, over the time since this was last computed (at
        least a second: reading it more often gives the same figure until a second passed)."""
        return self._core.receive_rate

    async def receive_msg(self) -> Message:
        """The next message, sequenced or not, in stream order.

        Raises `SessionEnded` after End of Session, logout or close once every message
        received before it has been handed out; the session's own error otherwise
        (`LoginRejected`, `HeartbeatTimeout`, `ConnectionLost`, `SequenceGap`, ...).
        """
        inbox = self._inbox
        # The current run first; checked after every wait too: another consumer may have
        # started one meanwhile.
        while (msg := next(inbox._run, None)) is None:
            if items := inbox._items:
                # The round trip's answer, queued as the `Message` it is (`put_one`):
                # `_take_one`'s case for it inlined while reading is not paused.
                head = items[0]
                if type(head) is Message and not inbox._paused:
                    items.popleft()
                    inbox._queued -= 1
                    return head
            if items or inbox._end is not None:
                # Something queued (or the end): `_take_one` hands it out or raises. Not
                # called when nothing is, so a waiting round trip calls it once, not twice.
                if (msg := inbox._take_one()) is not None:
                    return msg
                continue
            # `_wait` inlined: no coroutine made per request on the round trip's path.
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = self._loop.create_future()
            await waiter
        return msg

    async def receive_batch(self) -> list[BatchItem]:
        """Everything received so far (at least one message, waiting if there is none):
        runs of sequenced payloads as `SequencedMessages(first_sequence, messages)` and
        unsequenced messages as `UnsequencedData`, in stream order. Raises as `receive_msg`.
        """
        while not (out := self._core.all_or_end()):
            await self._wait()
        return out

    async def receive_frames(self) -> list[FramesItem]:
        """As `receive_batch`, but each run of sequenced messages as a zero-copy view:
        `SequencedFrames(first_sequence, buffer, offsets, lengths)`, the received bytes and
        where each message lies in them, with no object per message. Exactly once and in
        order, across reconnects, like every other path (they may be mixed). From the first
        call on, runs are kept as views as they arrive; runs received before it are copied
        into one buffer each."""
        while not (out := self._core.frames_or_end()):
            await self._wait()
        return out

    def receive_batch_nowait(self) -> list[BatchItem]:
        """As `receive_batch`, without waiting: [] if nothing is queued yet."""
        return self._core.all_or_end()

    def set_on_ready(self, callback: Callable[[], None] | None) -> None:
        """Call `callback()` (no arguments, from the event loop's I/O callback itself) each
        time messages were queued, and once when the session ends: a consumer that reads with
        `receive_batch_nowait()` there settles its waiters without a task's wake-up in between
        (the order client's answers). None removes it."""
        self._on_ready = callback

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        msg = next(self._inbox._run, None)  # receive_msg's fast path, without its await
        if msg is not None:
            return msg
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
        transport = self._transport
        session = self._core.session
        if (
            transport is None
            or self._inbox._end is not None
            or session._state is not ClientState.LOGGED_IN  # the attribute: no property call
        ):
            self._core.check_send(transport is not None)  # raises why
            assert transport is not None
        transport.write(session.send_unsequenced(data, self._loop.time()))

    def send_debug(self, text: str) -> None:
        """Send a Debug packet carrying `text` (ASCII) to the server."""
        if self._transport is None:
            raise LocalProtocolError("cannot send: not connected")
        self._transport.write(self._core.session.send_debug(text, self._loop.time()))

    async def logout(self, timeout: float = 5.0) -> None:
        """Send a Logout Request and wait (up to `timeout`) for the server to close. It
        returns as soon as the close is seen, however many messages are queued unread."""
        if self._core.end is not None:
            return
        self._stop_reconnecting()
        if self._transport is not None and self._core.session.state in LIVE_FOR_LOGOUT:
            self._transport.write(self._core.session.logout(self._loop.time()))
            self._core.unpause()
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
        if self._core.end is None:
            self._stop_reconnecting()
            if self._transport is not None:
                if self._core.session.state is ClientState.LOGGED_IN:
                    self._transport.write(self._core.session.logout(self._loop.time()))
                self._transport.close()
            self._finish(CloseReason.CLOSED, SessionEnded("closed by the application"))
        await self._await_close_callback()

    async def wait_closed(self) -> None:
        """Wait until the session has ended for good (for whatever reason)."""
        while self._core.end is None:
            await self._wait()
        await self._await_close_callback()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

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
    address: Addresses,
    username: str,
    password: str,
    session_id: str = "",
    sequence: int = 1,
    on_msg_coro: OnMessage | None = None,
    on_close_coro: OnClose | None = None,
    **options: Unpack[ConnectOptions],
) -> AsyncClient:
    """Connect, log in and return the session once the server has accepted the login.

    `address`: `(host, port)`, `"host:port"`, or a sequence of those: gateways serving the
    same session. The first login tries them in order (each once); after a lost connection
    the client goes on at the next one (under `reconnect`), logs in with the next expected
    sequence number, and refuses a gateway that answers with another session
    (`SessionMismatch`) for the one after. `client.address` is the one in use,
    `client.failovers` counts moves between them; every move is logged.

    `sequence`: 1 for the whole session, n to start at n, 0 for new messages only.
    `session_id` "" logs into the server's current session. With `reconnect` (True or a
    `ReconnectPolicy`) a lost connection is re-established and the session resumed at the
    next expected sequence number, so the application sees every sequenced message exactly
    once, in order; the policy also retries a first login that timed out. Raises
    `LoginRejected`, `LoginTimeout`, `OSError` (unreachable) or a `ProtocolError` if the
    first login does not succeed.
    """
    config = ClientConfig.of(address, username, password, **options)
    client = AsyncClient(
        config, config.options.session(session_id, sequence), on_msg_coro, on_close_coro
    )
    await client._connect(first=True)
    if on_msg_coro is not None:
        client._dispatch_task = asyncio.get_running_loop().create_task(client._dispatch_messages())
    return client
