"""The blocking client: the same `ClientSession` as the asyncio client, driven by a socket and a
`selectors` loop, for programs that do not run an event loop.

Layer 3. The API mirrors `AsyncClient` without `await`: `connect()` returns once the server
has accepted the login; `receive_msg(timeout=...)` hands out messages in stream order.

Threading model
---------------
Each `BlockingClient` runs one background daemon thread, the I/O thread: it connects (TCP
and TLS, non-blocking, interruptible), sends the Login Request, runs the session's timers
(heartbeats flow while the application is busy elsewhere), reconnects with backoff, and
reads and writes the socket whenever no application thread does. On a logged-in plain-TCP
connection (Linux: epoll) the application's threads do their own round trip, with no
hand-off between threads:

* Sending: `send_unseq_data()` asks the session for the bytes under the lock and, when
  nothing is queued before them, writes them to the socket itself (non-blocking); what does
  not fit, and everything on TLS, is queued for the I/O thread and it is woken through a
  socketpair. The I/O thread writes under the same lock, so bytes never overtake each other.
* Receiving: a thread waiting in `receive_msg()` / `receive_batch()` / `receive_frames()`
  with nothing queued reads the socket itself while nobody else does (`_read_lock`); the
  socket is then out of the I/O thread's read set, so the answer wakes only the thread
  that waits for it. The I/O thread looks every 10 ms whether that thread is still reading
  and watches the socket again once nobody is: bytes that arrive while the application is
  away are read into the queue, heartbeats and the end of the connection seen, within that.
  The end of a connection (EOF, an error, a protocol error) is always the I/O thread's to
  handle; it shuts the socket down first, which gets a waiting reader out of `recv()`.
  Other waiting threads wait on the condition for whoever reads. `busy_poll=` makes the
  reading thread spin that long before it sleeps in `recv()`. The reader sleeps in
  `recv()` itself, with no `poll()` first: the logged-in plain-TCP socket is in blocking
  mode, every other read and write of it passes `MSG_DONTWAIT`, and the caller's deadline
  is the socket's receive timeout (SO_RCVTIMEO, set only when it must change).
* One lock, `_lock` (with the `threading.Condition` `_cond` over it), guards all shared
  state: the `ClientSession`, the queue of received messages, the outbound buffer and the
  end-of-session state. Nobody holds it while blocking in `select()`, `poll()`, `recv()`
  or `connect()`. Within a run `receive_msg()` takes no lock: it calls `next()` on the
  run's iterator, which is atomic. Several threads may read at once; each message goes to
  exactly one of them.
* Back-pressure: with `max_queue` messages queued nobody reads the socket; the session is
  told (`reading_paused`/`reading_resumed`), so our own pause is not taken for a dead link,
  and heartbeats keep flowing. After a Logout Request the queue does not stop reading, so
  the server's close is seen at once.
* `on_status` runs in the I/O thread, outside the lock (events an application thread read
  are handed to it): keep it short, it delays heartbeats, and do not wait in it for
  messages.
* `close()` is idempotent and joins the I/O thread with a bounded timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Self, Unpack

from .._errors import ConnectionLost, LocalProtocolError, SessionEnded
from .._session._client import ClientSession, ClientState
from .._session._events import BatchItem, FramesItem, Message
from ._blocking_io import DONTWAIT
from ._blocking_read import await_items, await_message
from ._blocking_thread import BlockingThread
from ._core import LIVE_FOR_LOGOUT
from ._options import Address, Addresses, ClientConfig, ConnectOptions
from ._reconnect import CloseReason

__all__ = ["BlockingClient", "connect"]


class BlockingClient(BlockingThread):
    """A SoupBinTCP client session over a blocking API. Create it with `connect()`.

    Use it as a context manager, or call `close()`: the I/O thread runs until then.
    `address` is where it is connected (it changes on failover), `addresses` all it may use,
    `reconnects` and `failovers` count logins after the first and logins at another address.
    """

    def __init__(
        self, config: ClientConfig, session: ClientSession, busy_poll: float = 0.0
    ) -> None:
        self._init_io(config, session, busy_poll)
        self._connect_error: BaseException | None = None  # why the first login failed

    # --- public API ------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Messages received and not yet handed to the application."""
        with self._lock:
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

    def receive_msg(self, timeout: float | None = None) -> Message:
        """The next message, sequenced or not, in stream order.

        Waits up to `timeout` seconds (None: for ever) and raises the builtin `TimeoutError`
        if nothing arrived. Raises `SessionEnded` after End of Session, logout or close once
        every message received before it has been handed out; the session's own error
        otherwise (`LoginRejected`, `HeartbeatTimeout`, `ConnectionLost`, `SequenceGap`, ...).
        """
        msg = next(self._inbox._run, None)  # within a run, no lock
        if msg is not None:
            return msg
        return await_message(self, timeout)

    def receive_batch(self, timeout: float | None = None) -> list[BatchItem]:
        """Everything received so far (at least one message, waiting up to `timeout` if there
        is none): runs of sequenced payloads as `SequencedMessages(first_sequence, messages)`
        and unsequenced messages as `UnsequencedData`, in stream order. Raises as
        `receive_msg`."""
        return await_items(self, self._core.all_or_end, timeout)

    def receive_frames(self, timeout: float | None = None) -> list[FramesItem]:
        """As `receive_batch`, but each run of sequenced messages as a zero-copy view:
        `SequencedFrames(first_sequence, buffer, offsets, lengths)`, the received bytes and
        where each message lies in them, with no object per message. Exactly once and in
        order, across reconnects, like every other path (they may be mixed). From the first
        call on, runs are kept as views as they arrive; runs received before it are copied
        into one buffer each."""
        return await_items(self, self._core.frames_or_end, timeout)

    def __iter__(self) -> Self:
        """Iterating yields messages until End of Session (or logout, or close); other errors
        propagate."""
        return self

    def __next__(self) -> Message:
        try:
            return self.receive_msg()
        except SessionEnded:
            raise StopIteration from None

    def batches(self) -> Iterator[list[BatchItem]]:
        """`receive_batch()` as an iterator that ends after End of Session."""
        while True:
            try:
                yield self.receive_batch()
            except SessionEnded:
                return

    def send_unseq_data(self, data: bytes) -> None:
        """Send an Unsequenced Data packet (best effort, as the protocol says)."""
        with self._lock:
            session = self._core.session
            if (
                not self._live
                or self._inbox._end is not None
                or session._state is not ClientState.LOGGED_IN  # the attribute: no call
            ):
                self._core.check_send(self._live)  # raises why
            out = session.send_unsequenced(data, time.monotonic())
            sock = self._sock
            if sock is not None and not self._out and self._inflight is None:
                # Nothing queued before it: this thread writes it (no wake-up of the I/O
                # thread); what does not fit now, or an error, is left to the I/O thread.
                try:
                    n = sock.send(out, DONTWAIT)  # the socket is in blocking mode
                except OSError:
                    n = 0
                if n == len(out):
                    return
                out = out[n:]
            self._write(out)

    def send_debug(self, text: str) -> None:
        """Send a Debug packet carrying `text` (ASCII) to the server."""
        with self._lock:
            if not self._live:
                raise LocalProtocolError("cannot send: not connected")
            self._write(self._core.session.send_debug(text, time.monotonic()))

    def logout(self, timeout: float = 5.0) -> None:
        """Send a Logout Request and wait (up to `timeout`) for the server to close. It
        returns as soon as the close is seen, however many messages are queued unread."""
        with self._lock:
            if self._core.end is None:
                if self._live and self._core.session.state in LIVE_FOR_LOGOUT:
                    self._core.unpause()
                    self._write(self._core.session.logout(time.monotonic()))
                    deadline = time.monotonic() + timeout
                    if threading.current_thread() is self._thread:
                        deadline = 0.0  # from on_status: the I/O thread cannot see the close
                    while self._live and self._core.end is None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                self._finish(CloseReason.LOGOUT, SessionEnded("logged out"))
        self._join()

    def close(self) -> None:
        """End the session: a polite Logout Request if logged in, then close the socket.
        Messages already received can still be read; then `receive_msg()` raises
        `SessionEnded`. Idempotent; waits (boundedly) for the I/O thread to stop."""
        with self._lock:
            if self._core.end is None:
                if self._live and self._core.session.state is ClientState.LOGGED_IN:
                    self._write(self._core.session.logout(time.monotonic()))
                self._finish(CloseReason.CLOSED, SessionEnded("closed by the application"))
        self._join()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the session has ended for good; False if `timeout` passed first."""
        with self._lock:
            return self._cond.wait_for(lambda: self._core.end is not None, timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the application's side: helpers called with _lock held ----------------------------

    def _write(self, data: bytes) -> None:
        was_empty = not self._out
        self._out += data
        if was_empty:  # otherwise a wake-up is already on its way
            self._wake()

    # --- connecting ------------------------------------------------------------------------

    def _start(self) -> None:
        """Start the I/O thread and wait for the first login's outcome."""
        thread = threading.Thread(
            target=self._io_thread, name=f"soupbintcp-client {self._core.where()}", daemon=True
        )
        self._thread = thread
        try:
            thread.start()
            with self._lock:
                while not self._login_ok and self._connect_error is None and thread.is_alive():
                    self._cond.wait(0.5)
                ok, error = self._login_ok, self._connect_error
        except BaseException:  # KeyboardInterrupt while waiting
            self.close()
            raise
        if not ok:
            self._join()
            raise error or self._core.end or ConnectionLost("the client stopped before the login")


def connect(
    address: Addresses,
    username: str,
    password: str,
    session_id: str = "",
    sequence: int = 1,
    *,
    busy_poll: float = 0.0,
    **options: Unpack[ConnectOptions],
) -> BlockingClient:
    """Connect, log in and return the session once the server has accepted the login.

    The blocking twin of `connect_async()`, with the same arguments and semantics.
    `address`: `(host, port)`, `"host:port"`, or a sequence of those to fail over between
    (see `connect_async()`; `client.address`, `client.failovers` and the log show it).
    `sequence` 1 for the whole session, n to start at n, 0 for new messages only;
    `session_id` "" logs into the server's current session. With `reconnect` (True or a
    `ReconnectPolicy`) a lost connection is re-established and the session resumed at the
    next expected sequence number, so the application sees every sequenced message exactly
    once, in order; the policy also retries a first login that timed out. Raises
    `LoginRejected`, `LoginTimeout`, `OSError` (unreachable),
    `ConnectionLost` (no connection within `connect_timeout`) or a `ProtocolError` if the
    first login does not succeed.

    `busy_poll` [0.0 s]: a thread waiting in `receive_msg()` / `receive_batch()` that reads
    the socket itself spins this long on it before sleeping in `recv()`: a few µs less per
    round trip, for programs that pin the thread to a core of its own (it burns that core
    while it spins).
    """
    if busy_poll < 0:
        raise LocalProtocolError(f"busy_poll must be 0 or more, not {busy_poll}")
    config = ClientConfig.of(address, username, password, **options)
    client = BlockingClient(config, config.options.session(session_id, sequence), busy_poll)
    client._start()
    return client
