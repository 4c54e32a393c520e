"""The blocking client: the same `ClientSession` as the asyncio client, driven by a socket and a
`selectors` loop, for programs that do not run an event loop.

Layer 3. The API mirrors `AsyncClient` without `await`: `connect()` returns once the server
has accepted the login; `receive_msg(timeout=...)` hands out messages in stream order.

Threading model
---------------
Each `BlockingClient` runs one background daemon thread, the I/O thread. It alone owns the
socket and the selector: it connects (TCP and TLS, non-blocking, interruptible), sends the
Login Request, reads into the session, runs the session's timers (heartbeats flow while the
application is busy elsewhere), sends what the session returns, and reconnects with backoff.
The application's threads never touch the socket.

* One lock, `_lock` (with the `threading.Condition` `_cond` over it), guards all shared
  state: the `ClientSession`, the queue of received messages, the outbound buffer and the
  end-of-session state. The I/O thread holds it only while it feeds received bytes to the
  session, runs a timer or queues what came out; never while it blocks in `select()`,
  `recv()`, `send()` or `connect()`.
* Receiving: the I/O thread appends runs of messages to a deque and notifies the condition;
  `receive_msg()` / `receive_batch()` take them off under the lock, waiting on the condition
  (with the caller's timeout) when the deque is empty. Within a run `receive_msg()` takes no
  lock: it calls `next()` on the run's list iterator, which is atomic. Several threads may
  read at once; each message goes to exactly one of them.
* Sending: `send_unseq_data()`, `send_debug()`, `logout()` and `close()` ask the session for
  the bytes under the lock, append them to the outbound buffer and wake the I/O thread
  through a socketpair; only the I/O thread writes to the socket (non-blocking `send()`,
  keeping what did not fit for the next writable event, and the same bytes for a TLS retry).
  The same wake-up carries "resume reading" (the application drained the queue below a
  quarter of `max_queue`) and "stop" (the session ended).
* Back-pressure: with `max_queue` messages queued the I/O thread stops reading the socket;
  its timer ticks then call `session.peer_alive()`, so our own pause is not taken for a dead
  link, and heartbeats keep flowing.
* `on_status` runs in the I/O thread, outside the lock: keep it short, it delays heartbeats,
  and do not wait in it for messages.
* `close()` is idempotent and joins the I/O thread with a bounded timeout.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import operator
import os
import selectors
import socket
import ssl as _ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Final, Self

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

__all__ = ["BlockingClient", "connect"]

log = logging.getLogger("soupbintcp.client")

Address = tuple[str, int]
OnStatus = Callable[[Event], None]

_DEFAULT_MAX_QUEUE: Final = 50_000  # as the asyncio client: more only costs memory
_RECV_SIZE: Final = 256 * 1024
#: How long the I/O thread tries to get a final Logout Request out before closing.
_LINGER: Final = 1.0
#: How long `close()` waits for the I/O thread.
_JOIN_TIMEOUT: Final = 5.0
#: connect_ex() results meaning "connected" or "in progress" (10035: Windows' WSAEWOULDBLOCK).
_CONNECTING: Final = frozenset(
    {0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY, 10035}
)
_LIVE_FOR_LOGOUT: Final = frozenset(
    {ClientState.LOGGED_IN, ClientState.LOGIN_SENT, ClientState.ENDED}
)


class _Stopped(Exception):
    """The session ended while the I/O thread was connecting or waiting to reconnect."""


def _as_session_error(exc: Exception) -> SoupBinTCPError:
    return exc if isinstance(exc, SoupBinTCPError) else ConnectionLost(str(exc))


class BlockingClient:
    """A SoupBinTCP client session over a blocking API. Create it with `connect()`.

    Use it as a context manager, or call `close()`: the I/O thread runs until then.
    """

    def __init__(
        self,
        address: Address,
        session: ClientSession,
        *,
        on_status: OnStatus | None = None,
        reconnect: ReconnectPolicy | None = None,
        ssl: _ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout: float = 10.0,
        max_queue: int = _DEFAULT_MAX_QUEUE,
    ) -> None:
        self.address = address
        self._session = session
        self._on_status = on_status
        self._reconnect = reconnect
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._connect_timeout = connect_timeout
        self._high_water = max(1, max_queue)
        self._low_water = self._high_water // 4
        # --- shared state, guarded by _lock ---
        # `with self._lock` takes the condition's lock (a C-level enter, cheaper than the
        # Condition's own); the condition waits and notifies on it.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._items: deque[BatchItem] = deque()  # received, not yet handed out
        self._queued = 0  # messages in _items
        # The run receive_msg() is handing out. `next()` on a list iterator is atomic, so
        # the fast path takes no lock.
        self._run_iter: Iterator[Message] = iter(())
        self._paused = False  # reading stopped: the queue is full
        self._out = bytearray()  # to send on the current connection
        self._live = False  # a connection is up (Login Request sent)
        self._end: SoupBinTCPError | None = None  # set once the session is over for good
        self._login_ok = False  # the first login succeeded
        self._connect_error: Exception | None = None  # why the first login failed
        self.close_reason: CloseReason | None = None
        self.reconnects = 0
        # --- the I/O thread's own ---
        self._selector = selectors.DefaultSelector()
        self._wake_r, wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        wake_w.setblocking(False)
        self._wake_w: socket.socket | None = wake_w  # guarded by _lock; None once closed
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._inflight: memoryview | None = None  # being sent; TLS retries need the same bytes
        self._read_wants_write = False  # TLS: recv() needs the socket writable
        self._write_wants_read = False  # TLS: send() needs the socket readable
        self._conn_logged_in = False  # the current connection got Login Accepted
        self._conn_dead = False  # the current connection is gone
        self._thread: threading.Thread | None = None

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
        with self._lock:
            return self._queued + operator.length_hint(self._run_iter)

    def receive_msg(self, timeout: float | None = None) -> Message:
        """The next message, sequenced or not, in stream order.

        Waits up to `timeout` seconds (None: for ever) and raises the builtin `TimeoutError`
        if nothing arrived. Raises `SessionEnded` after End of Session, logout or close once
        every message received before it has been handed out; the session's own error
        otherwise (`LoginRejected`, `HeartbeatTimeout`, `ConnectionLost`, `SequenceGap`, ...).
        """
        msg = next(self._run_iter, None)
        if msg is not None:
            return msg
        with self._lock:
            deadline: float | None = None
            while True:
                # Another reader may have started a run meanwhile (also while we waited): a
                # new run must not replace one that is not used up.
                msg = next(self._run_iter, None)
                if msg is not None:
                    return msg
                if self._items:
                    item = self._items.popleft()
                    if type(item) is UnsequencedData:
                        self._dequeued(1)
                        return Message((None, item.data))
                    assert type(item) is SequencedMessages
                    self._dequeued(len(item.messages))
                    run = iter(item.to_messages())
                    msg = next(run)  # before another thread's fast path can see the run
                    self._run_iter = run
                    return msg
                if self._end is not None:
                    raise self._end
                deadline = self._wait(timeout, deadline)

    def receive_batch(self, timeout: float | None = None) -> list[BatchItem]:
        """Everything received so far (at least one message, waiting up to `timeout` if there
        is none): runs of sequenced payloads as `SequencedMessages(first_sequence, messages)`
        and unsequenced messages as `UnsequencedData`, in stream order. Raises as
        `receive_msg`."""
        with self._lock:
            deadline: float | None = None
            while True:
                out: list[BatchItem] = []
                rest = list(self._run_iter)
                if rest:
                    out.append(SequencedMessages(rest[0][0], [m[1] for m in rest]))  # type: ignore[arg-type]
                if self._items:
                    out.extend(self._items)
                    self._items.clear()
                    self._dequeued(self._queued)
                if out:
                    return out
                if self._end is not None:
                    raise self._end
                deadline = self._wait(timeout, deadline)

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
            if self._end is not None:
                raise self._end
            if not self._live or self._session.state is not ClientState.LOGGED_IN:
                raise LocalProtocolError(
                    f"cannot send: the session is {self._session.state.value} (reconnecting?)"
                )
            self._write(self._session.send_unsequenced(data, time.monotonic()))

    def send_debug(self, text: str) -> None:
        with self._lock:
            if not self._live:
                raise LocalProtocolError("cannot send: not connected")
            self._write(self._session.send_debug(text, time.monotonic()))

    def logout(self, timeout: float = 5.0) -> None:
        """Send a Logout Request and wait (up to `timeout`) for the server to close."""
        with self._lock:
            if self._end is None:
                if self._live and self._session.state in _LIVE_FOR_LOGOUT:
                    self._write(self._session.logout(time.monotonic()))
                    deadline = time.monotonic() + timeout
                    if threading.current_thread() is self._thread:
                        deadline = 0.0  # from on_status: the I/O thread cannot see the close
                    while self._live and self._end is None:
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
            if self._end is None:
                if self._live and self._session.state is ClientState.LOGGED_IN:
                    self._write(self._session.logout(time.monotonic()))
                self._finish(CloseReason.CLOSED, SessionEnded("closed by the application"))
        self._join()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the session has ended for good; False if `timeout` passed first."""
        with self._lock:
            return self._cond.wait_for(lambda: self._end is not None, timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the application's side: helpers called with _lock held ----------------------------

    def _wait(self, timeout: float | None, deadline: float | None) -> float | None:
        if timeout is None:
            self._cond.wait()
            return None
        now = time.monotonic()
        if deadline is None:
            deadline = now + timeout
        remaining = deadline - now
        if remaining <= 0:
            raise TimeoutError(f"no message received within {timeout:g} s")
        self._cond.wait(remaining)
        return deadline

    def _dequeued(self, n: int) -> None:
        self._queued -= n
        if self._paused and self._queued <= self._low_water:
            self._paused = False
            self._wake()

    def _write(self, data: bytes) -> None:
        was_empty = not self._out
        self._out += data
        if was_empty:  # otherwise a wake-up is already on its way
            self._wake()

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(OSError):  # BlockingIOError: it is awake already
                self._wake_w.send(b"\0")

    def _finish(self, reason: CloseReason, exc: SoupBinTCPError) -> None:
        """The session is over for good. Queued messages stay readable."""
        if self._end is not None:
            return
        self._end = exc
        self.close_reason = reason
        log.info("session with %s ended: %s", self.address, exc)
        self._cond.notify_all()
        self._wake()  # the I/O thread flushes what is left, closes the socket and exits

    def _join(self) -> None:
        thread = self._thread
        if thread is None:  # never started
            with self._lock:
                self._close_io()
            return
        if thread is threading.current_thread():
            return  # close() from on_status: the thread exits when the callback returns
        thread.join(_JOIN_TIMEOUT)
        if thread.is_alive():
            log.warning("the client I/O thread for %s did not stop in time", self.address)

    def _close_io(self) -> None:
        if self._wake_w is None:
            return
        self._wake_w.close()
        self._wake_w = None
        self._wake_r.close()
        self._selector.close()

    # --- connecting ------------------------------------------------------------------------

    def _start(self) -> None:
        """Start the I/O thread and wait for the first login's outcome."""
        host, port = self.address
        thread = threading.Thread(
            target=self._run, name=f"soupbintcp-client {host}:{port}", daemon=True
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
            raise error or self._end or ConnectionLost("the client stopped before the login")

    def _run(self) -> None:
        """The I/O thread."""
        try:
            self._run_connections()
        except BaseException as exc:  # a bug: never leave the application waiting
            log.exception("the client I/O thread for %s failed", self.address)
            with self._lock:
                err = ConnectionLost(f"the client I/O thread failed: {exc!r}")
                if not self._login_ok and self._connect_error is None:
                    self._connect_error = err
                self._finish(CloseReason.CONNECTION_LOST, err)
        finally:
            with self._lock:
                self._live = False
                self._close_io()
                self._cond.notify_all()

    def _run_connections(self) -> None:
        policy = self._reconnect
        host, port = self.address
        first = True
        failures = 0
        while True:
            if not first:
                assert policy is not None
                if not self._sleep(policy.delay(failures)):
                    return
            logged_in = False
            err: Exception | None
            try:
                sock = self._open()
            except _Stopped:
                return
            except TimeoutError:
                err = ConnectionLost(f"could not connect to {host}:{port} in time")
            except OSError as exc:
                err = exc
            else:
                err, logged_in = self._serve(sock)
                if err is None:
                    return  # the session is over
            if logged_in:  # an established session lost its connection
                first = False
                failures = 0
                with self._lock:
                    if self._end is not None:
                        return
                    if (
                        policy is not None
                        and is_recoverable(err)
                        and self._session.state is ClientState.DISCONNECTED
                    ):
                        log.warning("connection to %s failed (%s); reconnecting", self.address, err)
                        continue
                    session_err = _as_session_error(err)
                    self._finish(close_reason_for(session_err), session_err)
                    return
            with self._lock:
                if first:  # connect() raises it
                    self._connect_error = err
                    session_err = _as_session_error(err)
                    self._finish(close_reason_for(session_err), session_err)
                    return
                # a reconnect attempt failed
                if self._end is not None:
                    return
                if self._session.is_terminal or not is_recoverable(err):
                    session_err = _as_session_error(err)
                    self._finish(close_reason_for(session_err), session_err)
                    return
                failures += 1
                log.warning("reconnect attempt %d to %s failed: %s", failures, self.address, err)
                assert policy is not None
                if policy.gives_up(failures):
                    self._finish(
                        CloseReason.CONNECTION_LOST,
                        ConnectionLost(f"gave up after {failures} reconnect attempts: {err}"),
                    )
                    return

    def _over(self) -> bool:
        """Whether the session has ended (with _lock held)."""
        return self._end is not None

    def _stopping(self) -> bool:
        with self._lock:
            return self._end is not None

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def _sleep(self, delay: float) -> bool:
        """Wait `delay` seconds before a reconnect; False if the session ended meanwhile."""
        deadline = time.monotonic() + delay
        while not self._stopping():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if self._selector.select(remaining):
                self._drain_wake()
        return False

    def _wait_io(self, sock: socket.socket, events: int, deadline: float) -> None:
        """Wait until `sock` is ready for `events`; TimeoutError at `deadline`, `_Stopped` if
        the session ends meanwhile."""
        selector = self._selector
        selector.register(sock, events)
        try:
            while True:
                if self._stopping():
                    raise _Stopped
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                for key, _ in selector.select(remaining):
                    if key.fileobj is sock:
                        return
                    self._drain_wake()
        finally:
            selector.unregister(sock)

    def _open(self) -> socket.socket:
        """A connected (and, with `ssl`, TLS-established) non-blocking socket."""
        host, port = self.address
        deadline = time.monotonic() + self._connect_timeout
        errors: list[OSError] = []
        for family, kind, proto, _, addr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                if family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                code = sock.connect_ex(addr)
                if code not in _CONNECTING:
                    raise OSError(code, os.strerror(code))
                if code:
                    self._wait_io(sock, selectors.EVENT_WRITE, deadline)
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        raise OSError(code, os.strerror(code))  # e.g. ConnectionRefusedError
            except (TimeoutError, _Stopped):
                sock.close()
                raise
            except OSError as exc:
                sock.close()
                errors.append(exc)
                continue
            except BaseException:
                sock.close()
                raise
            return self._start_tls(sock, deadline) if self._ssl is not None else sock
        if not errors:
            raise OSError(f"no address found for {host}:{port}")
        if len({str(e) for e in errors}) == 1:
            raise errors[0]
        raise OSError(f"Multiple exceptions: {', '.join(str(e) for e in errors)}")

    def _start_tls(self, sock: socket.socket, deadline: float) -> socket.socket:
        assert self._ssl is not None
        try:
            tls = self._ssl.wrap_socket(
                sock,
                server_hostname=self._server_hostname or self.address[0],
                do_handshake_on_connect=False,
            )
        except BaseException:
            sock.close()
            raise
        try:
            while True:
                try:
                    tls.do_handshake()
                    return tls
                except _ssl.SSLWantReadError:
                    self._wait_io(tls, selectors.EVENT_READ, deadline)
                except _ssl.SSLWantWriteError:
                    self._wait_io(tls, selectors.EVENT_WRITE, deadline)
        except BaseException:
            tls.close()
            raise

    # --- one connection --------------------------------------------------------------------

    def _serve(self, sock: socket.socket) -> tuple[Exception | None, bool]:
        """Log in on `sock` and run it until it fails or the session ends.

        Returns (why the connection failed, or None if the session is over; whether this
        connection got Login Accepted)."""
        selector = self._selector
        tls = sock if isinstance(sock, _ssl.SSLSocket) else None
        self._inflight = None
        self._read_wants_write = self._write_wants_read = False
        self._conn_logged_in = self._conn_dead = False
        mask = 0
        try:
            with self._lock:
                if self._end is not None:
                    return None, False
                self._out.clear()
                self._out += self._session.login(time.monotonic())
                self._live = True
                self._paused = False
            while True:
                err = self._flush(sock)
                if err is not None or self._conn_dead:
                    return err, self._conn_logged_in
                with self._lock:
                    if self._over():
                        break
                    deadline = self._session.next_timer()
                    paused = self._paused
                    want_write = bool(self._out)
                want_write = want_write or self._inflight is not None or self._read_wants_write
                new_mask = (0 if paused else selectors.EVENT_READ) | (
                    selectors.EVENT_WRITE if want_write else 0
                )
                if new_mask != mask:
                    if not new_mask:
                        selector.unregister(sock)
                    elif not mask:
                        selector.register(sock, new_mask)
                    else:
                        selector.modify(sock, new_mask)
                    mask = new_mask
                # TLS: bytes already decrypted inside the SSL object wake no selector.
                buffered = tls is not None and not paused and tls.pending() > 0
                if buffered:
                    timeout: float | None = 0.0
                elif deadline is None:
                    timeout = None
                else:
                    timeout = max(0.0, deadline - time.monotonic())
                ready = buffered
                for key, _ in selector.select(timeout):
                    if key.fileobj is sock:
                        ready = True
                    else:
                        self._drain_wake()
                if ready and not paused:
                    err = self._read(sock, tls)
                    if err is not None or self._conn_dead:
                        return err, self._conn_logged_in
                err = self._timers()
                if err is not None:
                    return err, self._conn_logged_in
            # The session is over: get out what is left (a Logout Request), then close.
            linger_until = time.monotonic() + _LINGER
            while self._flush(sock) is None and not self._conn_dead:
                with self._lock:
                    if not self._out and self._inflight is None:
                        break
                remaining = linger_until - time.monotonic()
                if remaining <= 0:
                    break
                if mask:
                    selector.unregister(sock)
                events = selectors.EVENT_READ if self._write_wants_read else selectors.EVENT_WRITE
                selector.register(sock, events)
                mask = events
                selector.select(remaining)
            return None, self._conn_logged_in
        finally:
            if mask:
                with contextlib.suppress(KeyError, ValueError):
                    selector.unregister(sock)
            with self._lock:
                self._live = False
                self._out.clear()
                self._session.connection_lost()
                self._cond.notify_all()  # logout() waits for the connection to go
            self._inflight = None
            sock.close()

    def _flush(self, sock: socket.socket) -> Exception | None:
        """Send what can be sent now without blocking."""
        while True:
            view = self._inflight
            if view is None:
                with self._lock:
                    if not self._out:
                        return None
                    view = memoryview(bytes(self._out))
                    self._out.clear()
                self._inflight = view
            try:
                n = sock.send(view)
            except (BlockingIOError, InterruptedError, _ssl.SSLWantWriteError):
                self._write_wants_read = False
                return None
            except _ssl.SSLWantReadError:
                self._write_wants_read = True
                return None
            except OSError as exc:
                return self._lost(exc)
            self._write_wants_read = False
            self._inflight = view[n:] if n < len(view) else None

    def _read(self, sock: socket.socket, tls: _ssl.SSLSocket | None) -> Exception | None:
        """Read what is there (one recv for TCP; for TLS, records until the socket runs dry
        or `_RECV_SIZE` bytes) and hand it to the session."""
        chunks: list[bytes] = []
        size = 0
        lost: BaseException | None = None
        eof = False
        while True:
            try:
                data = sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError, _ssl.SSLWantReadError):
                self._read_wants_write = False
                break
            except _ssl.SSLWantWriteError:
                self._read_wants_write = True
                break
            except _ssl.SSLZeroReturnError:
                eof = True
                break
            except OSError as exc:
                lost = exc
                break
            self._read_wants_write = False
            if not data:
                eof = True
                break
            chunks.append(data)
            size += len(data)
            if tls is None or size >= _RECV_SIZE:
                break
        if chunks:
            err = self._received(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            if err is not None:
                return err
            if self._stopping():
                return None  # End of Session: what followed it does not matter
        if eof or lost is not None:
            return self._lost(lost)
        return None

    def _received(self, data: bytes) -> Exception | None:
        status: list[Event] = []
        with self._lock:
            try:
                events = self._session.receive_data(data, time.monotonic())
            except SoupBinTCPError as exc:
                return exc
            err = self._dispatch(events, status)
            if err is None:
                err = self._session.error
        on_status = self._on_status
        if on_status is not None:
            for event in status:
                try:
                    on_status(event)
                except Exception:
                    log.exception("on_status callback failed")
        return err

    def _dispatch(self, events: list[Event], status: list[Event]) -> Exception | None:
        """Queue the messages, act on the rest (with _lock held)."""
        err: Exception | None = None
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
                status.append(event)
                if type(event) is LoginAccepted:
                    self._conn_logged_in = True
                    if self._login_ok:
                        self.reconnects += 1
                    self._login_ok = True
                    self._cond.notify_all()
                    log.info(
                        "logged in to %s:%s session %r at sequence %d",
                        self.address[0],
                        self.address[1],
                        self._session.session_id,
                        self._session.next_sequence,
                    )
                elif type(event) is LoginReject:
                    err = LoginRejected(event.reason)
                elif type(event) is EndOfSession:
                    self._finish(CloseReason.END_OF_SESSION, SessionEnded("end of session"))
                elif type(event) is Debug:
                    log.debug("debug packet from %s: %s", self.address, event.text)
                elif type(event) is NoMoreMessages:
                    log.debug("no more messages available at sequence %d", event.sequence)
        if n:
            self._queued += n
            if self._queued >= self._high_water:
                self._paused = True
            self._cond.notify_all()
        return err

    def _timers(self) -> Exception | None:
        now = time.monotonic()
        with self._lock:
            if self._end is not None:
                return None
            due = self._session.next_timer()
            if due is None or now < due:
                return None
            if self._paused:
                self._session.peer_alive(now)  # unread data is waiting: the server is alive
            try:
                out = self._session.handle_timer(now)
            except SessionTimeout as exc:
                return exc
            if out:
                self._out += out
        return None

    def _lost(self, exc: BaseException | None) -> Exception | None:
        """The connection is gone: None if that ends the session as it should (after a
        logout or End of Session), else the error."""
        self._conn_dead = True
        with self._lock:
            self._session.connection_lost()
            if (ended := ended_by(self._session.state)) is not None:
                self._finish(*ended)
                return None
        why = f": {exc}" if exc else ""
        return ConnectionLost(f"connection to {self.address[0]}:{self.address[1]} lost{why}")


def connect(
    address: Address,
    username: str,
    password: str,
    session_id: str = "",
    sequence: int = 1,
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
) -> BlockingClient:
    """Connect, log in and return the session once the server has accepted the login.

    The blocking twin of `connect_async()`, with the same arguments and semantics:
    `sequence` 1 for the whole session, n to start at n, 0 for new messages only;
    `session_id` "" logs into the server's current session. With `reconnect` (True or a
    `ReconnectPolicy`) a lost connection is re-established and the session resumed at the
    next expected sequence number, so the application sees every sequenced message exactly
    once, in order. Raises `LoginRejected`, `LoginTimeout`, `OSError` (unreachable),
    `ConnectionLost` (no connection within `connect_timeout`) or a `ProtocolError` if the
    first login does not succeed.
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
    client = BlockingClient(
        (address[0], address[1]),
        session,
        on_status=on_status,
        reconnect=reconnect_policy(reconnect),
        ssl=ssl_context(ssl),
        server_hostname=server_hostname,
        connect_timeout=connect_timeout,
        max_queue=max_queue,
    )
    client._start()
    return client
