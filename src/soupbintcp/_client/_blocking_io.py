"""The blocking client's I/O thread: the socket, the selector and one connection's loop
(login, read, timers, send; connect and TLS are `_blocking_connect`'s, waiting through the
selector here; the state it shares with the application's threads is `_blocking_state`'s).
See `_blocking` for the threading model.

Layer 3. The I/O thread holds `_lock` only while it feeds received bytes to the session,
runs a timer, writes what is queued (non-blocking) or queues what came out; never while it
blocks in `select()`, `recv()` or `connect()`. While an application thread reads the socket
itself (`_blocking_read`), the socket is out of the selector's read set (the I/O thread is
not woken by the answer it will not read) and `_read_lock` keeps the two from reading at
once.
"""

from __future__ import annotations

import contextlib
import select
import selectors
import socket
import ssl as _ssl
import time
from typing import Final

from .._errors import SoupBinTCPError
from .._session._events import Event
from .._wire._packets import LoginAccepted
from ._blocking_connect import Stopped
from ._blocking_state import BlockingState
from ._reconnect import ended_by

__all__ = ["DONTWAIT", "BlockingIO", "Stopped"]

_RECV_SIZE: Final = 256 * 1024


def _readable(sock: socket.socket | None) -> bool:
    """Whether bytes (or the end) wait on `sock`, without reading them."""
    if sock is None:
        return False
    with contextlib.suppress(OSError, ValueError):
        return bool(select.select([sock], [], [], 0)[0])
    return False


#: A read of this much or more means a stream flows rather than answers to requests.
_STREAM_BYTES: Final = 8 * 1024
#: While an application thread reads the socket itself, how often the I/O thread looks whether
#: it has left (then it watches the socket again: bytes that arrive while the application is
#: away are read into the queue, heartbeats and the end of the connection seen, within this).
_REARM: Final = 0.01
#: Whether an application thread may change the socket's events while the I/O thread waits
#: in the selector, and have them apply at once: epoll (Linux) does; other selectors keep
#: every read in the I/O thread.
_SHARED_SELECTOR: Final = selectors.DefaultSelector is getattr(selectors, "EpollSelector", None)
#: How long the I/O thread tries to get a final Logout Request out before closing.
_LINGER: Final = 1.0
#: The per-call non-blocking flag. Once application threads may read a plain-TCP socket
#: themselves it is put in blocking mode, so that a waiting reader sleeps in `recv()` itself
#: (no `poll()` first: one system call less per round trip, measured), and every other read
#: and write of it passes this flag instead.
DONTWAIT: Final = getattr(socket, "MSG_DONTWAIT", 0)


class BlockingIO(BlockingState):
    """The I/O thread's side of `BlockingClient`: it owns the `ClientCore` (session, inbox,
    reconnect bookkeeping) and is its driver."""

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
        self._conn_sock = sock
        self._mask = 0
        try:
            with self._lock:
                if self._core.end is not None:
                    return None, False
                self._out.clear()
                self._out += self._core.session.login(time.monotonic())
                self._live = True
                self._forget_handover()
                self._core.unpause()
            flags = 0 if tls is not None else DONTWAIT  # the socket may be blocking
            while True:
                err = self._flush(sock, flags)
                if err is not None or self._conn_dead:
                    return err, self._conn_logged_in
                status: list[Event] = []
                with self._lock:
                    if self._over():
                        break
                    if self._handover_error is not None:
                        return self._handover_error, self._conn_logged_in
                    if self._status_backlog:
                        status, self._status_backlog = self._status_backlog, status
                    deadline = self._core.session.next_timer()
                    paused = self._inbox._paused
                    want_write = (
                        bool(self._out) or self._inflight is not None or self._read_wants_write
                    )
                    # An application thread that reads the socket itself leaves it out of
                    # the read set when it is done (putting it back would wake us with the
                    # answer to its next request): meanwhile we look every `_REARM` s, and
                    # watch it again once nobody reads it.
                    if not self._app_reading:
                        self._ticking = False
                    ticking = self._ticking
                    reading = not paused and not self._app_reading
                    self._set_mask(
                        sock,
                        (selectors.EVENT_READ if reading else 0)
                        | (selectors.EVENT_WRITE if want_write else 0),
                    )
                self._core.report(status)
                # TLS: bytes already decrypted inside the SSL object wake no selector.
                buffered = tls is not None and not paused and tls.pending() > 0
                if buffered:
                    timeout: float | None = 0.0
                elif deadline is None:
                    timeout = None
                else:
                    timeout = max(0.0, deadline - time.monotonic())
                if ticking and (timeout is None or timeout > _REARM):
                    timeout = _REARM
                ready = buffered
                for key, _ in selector.select(timeout):
                    if key.fileobj is sock:
                        ready = True
                    else:
                        self._drain_wake()
                if ready and not paused and self._read_lock.acquire(blocking=False):
                    try:  # (an application thread that reads it holds the lock)
                        err = self._read(sock, tls)
                    finally:
                        self._read_lock.release()
                    if err is not None or self._conn_dead:
                        return err, self._conn_logged_in
                err = self._timers()
                if err is not None:
                    return err, self._conn_logged_in
            # The session is over: get out what is left (a Logout Request), then close.
            linger_until = time.monotonic() + _LINGER
            while self._flush(sock, flags) is None and not self._conn_dead:
                with self._lock:
                    if not self._out and self._inflight is None:
                        break
                remaining = linger_until - time.monotonic()
                if remaining <= 0:
                    break
                events = selectors.EVENT_READ if self._write_wants_read else selectors.EVENT_WRITE
                with self._lock:
                    self._sock = None  # the application's threads leave it alone now
                    self._set_mask(sock, events)
                selector.select(remaining)
            return None, self._conn_logged_in
        finally:
            with self._lock:
                self._sock = None
                with contextlib.suppress(KeyError, ValueError):
                    self._set_mask(sock, 0)
                self._live = False
                self._out.clear()
                self._core.session.connection_lost()
                self._cond.notify_all()  # logout() waits for the connection to go
            self._inflight = None
            # An application thread may wait on the socket: wake it (it hands the end to us
            # and leaves), then close once it has.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with self._read_lock:
                sock.close()

    def _flush(self, sock: socket.socket, flags: int) -> Exception | None:
        """Send what can be sent now without blocking (`flags`: `DONTWAIT` for plain TCP,
        which may be in blocking mode). Under `_lock` (the send does not block): application
        threads write the socket themselves when nothing is queued, and their bytes must not
        overtake these."""
        failed: OSError | None = None
        with self._lock:
            while True:
                view = self._inflight
                if view is None:
                    if not self._out:
                        return None
                    view = memoryview(bytes(self._out))
                    self._out.clear()
                    self._inflight = view
                try:
                    n = sock.send(view, flags)
                except (BlockingIOError, InterruptedError, _ssl.SSLWantWriteError):
                    self._write_wants_read = False
                    return None
                except _ssl.SSLWantReadError:
                    self._write_wants_read = True
                    return None
                except OSError as exc:
                    failed = exc
                    break
                self._write_wants_read = False
                self._inflight = view[n:] if n < len(view) else None
        return self._lost(failed)

    def _read(self, sock: socket.socket, tls: _ssl.SSLSocket | None) -> Exception | None:
        """Read what is there (one recv for TCP; for TLS, records until the socket runs dry
        or `_RECV_SIZE` bytes) and hand it to the session."""
        chunks: list[bytes] = []
        size = 0
        lost: BaseException | None = None
        eof = False
        flags = 0 if tls is not None else DONTWAIT  # the socket may be blocking
        while True:
            try:
                data = sock.recv(_RECV_SIZE, flags)
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
        """The I/O thread's bytes to the session; `on_status` runs here, outside the lock."""
        status: list[Event] = []
        self._streaming = len(data) >= _STREAM_BYTES
        with self._lock:
            err = self._received_locked(data, status)
        self._core.report(status)
        return err

    def _received_locked(self, data: bytes, status: list[Event]) -> Exception | None:
        """Bytes to the session (with _lock held): messages queued, other events acted on
        and added to `status`; the error that ends the connection, if any. The caller sets
        `_streaming`."""
        session = self._core.session
        try:
            events = session.receive_data(data, time.monotonic())
        except SoupBinTCPError as exc:
            return exc
        err = self._dispatch(events, status)
        if err is None:
            err = session.error
        return err

    def _dispatch(self, events: list[Event], status: list[Event]) -> Exception | None:
        """Queue the messages, act on the rest (with _lock held)."""
        n, other = self._inbox.queue(events)
        if n and self._waiters:
            self._cond.notify_all()
        if not other:
            return None
        status += other
        err = self._core.act(other)
        if any(type(event) is LoginAccepted for event in other):
            self._conn_logged_in = self._login_ok = True
            conn_sock = self._conn_sock
            if (
                _SHARED_SELECTOR
                and DONTWAIT
                and conn_sock is not None
                and not isinstance(conn_sock, _ssl.SSLSocket)
            ):
                conn_sock.setblocking(True)  # for the direct reader (see DONTWAIT)
                self._rcvtimeo = 0.0  # a new socket: no receive timeout set yet
                self._sock = conn_sock  # application threads may use it from now on
            self._cond.notify_all()
        return err

    def _timers(self) -> Exception | None:
        now = time.monotonic()
        with self._lock:
            if self._core.end is not None:
                return None
            due = self._core.session.next_timer()
            if due is None or now < due:
                return None
            session = self._core.session
            if self._app_reading and _readable(self._conn_sock):
                # An application thread reads the socket and has yet to take what waits
                # there: the server spoke (the I/O thread would have read it before
                # looking at its timers). A dead link leaves nothing there.
                session.peer_alive(now)
            try:
                out = session.handle_timer(now)
            except SoupBinTCPError as exc:
                return exc
            if out:
                self._out += out
        return None

    def _lost(self, exc: BaseException | None) -> Exception | None:
        """The connection is gone: None if that ends the session as it should (after a
        logout or End of Session), else the error."""
        self._conn_dead = True
        with self._lock:
            self._core.session.connection_lost()
            if (ended := ended_by(self._core.session.state)) is not None:
                self._finish(*ended)
                return None
        return self._core.lost_error(exc)
