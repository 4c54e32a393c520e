"""The blocking client's shared state and its wake-up: what `_blocking_io`'s connection loop
and the application's threads (`_blocking`, `_blocking_read`) share, made in one place, and
the small operations on it (waking the I/O thread, ending the session, the socket's events
in the selector). See `_blocking` for the threading model.

Layer 3. Every attribute is set in `_init_io`, in one place: the client's instance
attributes stay under CPython's 30 shared keys (past them every attribute read of the
client, `receive_msg`'s included, is slower; measured).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time

from .._errors import SoupBinTCPError
from .._session._client import ClientSession
from .._session._events import Event
from ._core import ClientCore
from ._options import ClientConfig
from ._reconnect import CloseReason

__all__ = ["BlockingState"]


class BlockingState:
    """The state `BlockingIO` (the I/O thread) and `BlockingClient` (the application's
    threads) share, and what both do to it."""

    def _init_io(self, config: ClientConfig, session: ClientSession, busy_poll: float) -> None:
        self._busy_poll = busy_poll  # how long a reading application thread spins
        self._core = ClientCore(
            config,
            session,
            now=time.monotonic,
            pause_io=self._pause_io,
            resume_io=self._resume_io,
            finish=self._finish,
        )
        self._inbox = self._core.inbox
        # --- shared state, guarded by _lock ---
        # `with self._lock` takes the condition's lock (a C-level enter, cheaper than the
        # Condition's own); the condition waits and notifies on it.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._out = bytearray()  # to send on the current connection
        self._live = False  # a connection is up (Login Request sent)
        self._login_ok = False  # the first login succeeded
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
        # --- the direct path: application threads on the socket (guarded by _lock) ---
        #: Held by whoever reads the socket (taken after `_lock`, never waited for under it).
        self._read_lock = threading.Lock()
        #: The logged-in plain-TCP socket application threads may use, else None (TLS, and
        #: selectors that do not see another thread's changes, go through the I/O thread).
        self._sock: socket.socket | None = None
        self._mask = 0  # the socket's events in the selector
        self._app_reading = False  # an application thread reads the socket
        #: The last read brought `_blocking_io._STREAM_BYTES` or more: a stream flows, which the I/O
        #: thread reads while the application works (no application thread takes over).
        self._streaming = False
        self._ticking = False  # the I/O thread looks every _REARM s whether it still does
        #: Application threads waiting on `_cond` (notified only when there are some).
        #: (Instance attributes stay under CPython's 30 shared keys: past them every
        #: attribute read of the client, `receive_msg`'s included, is slower; measured.)
        self._waiters = 0
        #: What an application thread found while reading, for the I/O thread: the error
        #: that ends the connection, and events for `on_status` (it runs in the I/O thread).
        self._handover_error: Exception | None = None
        self._status_backlog: list[Event] = []
        self._conn_sock: socket.socket | None = None  # the current connection's socket
        #: The direct reader's SO_RCVTIMEO on `_sock`, in seconds (0: none); set only when
        #: it must change (`_blocking_read.read_directly`). Guarded by `_read_lock`.
        self._rcvtimeo = 0.0
        self._thread: threading.Thread | None = None  # the I/O thread

    def _pause_io(self) -> bool:
        return True  # the I/O thread looks at _paused

    def _resume_io(self) -> None:
        self._wake()

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(OSError):  # BlockingIOError: it is awake already
                self._wake_w.send(b"\0")

    def _finish(self, reason: CloseReason, exc: SoupBinTCPError) -> None:
        """The session is over for good. Queued messages stay readable."""
        if not self._core.ended(reason, exc):
            return
        self._cond.notify_all()
        self._wake()  # the I/O thread flushes what is left, closes the socket and exits

    def _close_io(self) -> None:
        if self._wake_w is None:
            return
        self._wake_w.close()
        self._wake_w = None
        self._wake_r.close()
        self._selector.close()

    def _over(self) -> bool:
        """Whether the session has ended (with _lock held)."""
        return self._core.end is not None

    def _stopping(self) -> bool:
        with self._lock:
            return self._core.end is not None

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def _forget_handover(self) -> None:
        self._handover_error = None  # a new connection

    def _set_mask(self, sock: socket.socket, mask: int) -> None:
        """The socket's events in the selector (with _lock held: application threads take
        it out of the read set while they read it themselves)."""
        old = self._mask
        if mask == old:
            return
        selector = self._selector
        if not mask:
            selector.unregister(sock)
        elif not old:
            selector.register(sock, mask)
        else:
            selector.modify(sock, mask)
        self._mask = mask
