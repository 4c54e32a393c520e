"""The blocking client's I/O thread, from start to end: its run of connection attempts
(backoff, failover, reconnect), what it does when it ends, and joining it (`BlockingClient`
starts it and waits for the first login).

Layer 3. One connection's loop is `_blocking_io`'s, connecting a socket `_blocking_connect`'s;
see `_blocking` for the threading model.
"""

from __future__ import annotations

import threading
from typing import Final

from .._errors import ConnectionLost
from ._blocking_connect import Stopped, open_for, sleep_unless_stopped
from ._blocking_io import BlockingIO
from ._core import log
from ._options import Address
from ._reconnect import Attempts, CloseReason

__all__ = ["BlockingThread"]

#: How long `close()` waits for the I/O thread.
_JOIN_TIMEOUT: Final = 5.0


class BlockingThread(BlockingIO):
    """`BlockingClient`'s I/O thread: its connection attempts and its end."""

    _connect_error: BaseException | None  # why the first login failed (`BlockingClient`)

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
            log.warning("the client I/O thread for %s did not stop in time", self._core.address)

    # --- connecting ------------------------------------------------------------------------

    def _io_thread(self) -> None:
        """The I/O thread."""
        try:
            self._run_connections()
        except BaseException as exc:  # a bug: never leave the application waiting
            log.exception("the client I/O thread for %s failed", self._core.address)
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
        first = True
        while True:
            err = self._attempts(first=first)
            if err is None:
                return  # the session is over
            first = False  # an established session lost its connection
            with self._lock:
                if self._core.end is not None or not self._core.end_or_resume(err):
                    return

    def _attempts(self, *, first: bool) -> Exception | None:
        """Connection attempts until one logs in: why that connection then failed, or None
        if the session is over (ended there, or when the attempts ended)."""
        attempts = Attempts(self._core.reconnect, len(self._core.addresses), first=first)
        while True:
            delay = attempts.delay()
            if delay and not sleep_unless_stopped(self, delay):
                return None
            err, logged_in = self._attempt(self._core.next_address(attempts))
            if err is None or logged_in:
                return err
            with self._lock:
                if self._core.end is not None:
                    return None
                ending = self._core.attempt_failed(attempts, err)
                if ending is None:
                    continue
                if first:  # connect() raises it
                    self._connect_error = ending.raised
                self._finish(ending.reason, ending.error)
                return None

    def _attempt(self, address: Address) -> tuple[Exception | None, bool]:
        """Connect to `address` and serve the connection: as `_serve`."""
        try:
            sock = open_for(self, address)
        except Stopped:
            return None, False
        except TimeoutError:
            return ConnectionLost(f"could not connect to {self._core.where()} in time"), False
        except OSError as exc:
            return exc, False
        return self._serve(sock)
