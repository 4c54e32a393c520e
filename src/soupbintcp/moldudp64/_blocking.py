"""The blocking MoldUDP64 listener: the same `MoldListener` as the asyncio one, driven by a
background thread, for programs without an event loop.

Layer 3 (drivers). As with the blocking SoupBinTCP client, one daemon I/O thread owns the
sockets: it waits in `select()` on the multicast socket, the request socket and a wake-up
pipe, reads every datagram that is ready, feeds the listener, sends its requests and runs
its timers, so gaps are filled while the application is busy. One lock (and a condition
over it) guards the listener and the queue; the application's calls wait on the condition.
With `max_queue` messages queued the thread stops reading (the kernel drops the excess and
the listener asks for it again once the application catches up).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Final, Self, Unpack

from .._errors import SessionEnded, SessionTimeout, SoupBinTCPError
from .._session._events import Message, SequencedMessages
from .._session._mold_lines import DEFAULT_LINE_WAIT
from .._session._mold_listener import MoldListener
from ._core import DEFAULT_MAX_QUEUE, ListenerCore, ListenerOptions
from ._listener import log
from ._sockets import DEFAULT_RCVBUF, Address, groups_of, receiver_socket, request_socket

__all__ = ["BlockingListener", "listen"]

_RECV_SIZE: Final = 65536
#: The longest the I/O thread sleeps without a timer: it also notices `close()` by its pipe.
_IDLE: Final = 1.0
_JOIN_TIMEOUT: Final = 5.0


class BlockingListener(ListenerCore):
    """A MoldUDP64 listener over a blocking API. Create it with `listen()`; close it (or use
    it as a context manager) to stop its thread."""

    def __init__(
        self,
        machine: MoldListener,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        lines: list[str] | None = None,
    ) -> None:
        self._init_core(machine, max_queue, lines)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._socks: list[socket.socket] = []
        self._request_sock: socket.socket | None = None
        self._line_of: dict[socket.socket, int] = {}  # multicast socket -> its group's index
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stop = False
        self._thread: threading.Thread | None = None

    def _open(
        self, groups: list[Address], request: Address | None, interface: str | None, rcvbuf: int
    ) -> None:
        for line, group in enumerate(groups):
            sock = receiver_socket(group, interface, rcvbuf)
            self._socks.append(sock)
            self._line_of[sock] = line
        if request is not None:
            self._request_sock = request_socket(request, interface, rcvbuf)
            self._socks.append(self._request_sock)
        self._thread = threading.Thread(
            target=self._io_loop, name="moldudp64-listener", daemon=True
        )
        self._thread.start()

    # --- public API ------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Messages received and not yet taken by the application."""
        with self._lock:
            return self._unread()

    def receive_msg(self, timeout: float | None = None) -> Message:
        """The next message, in order; waits up to `timeout` seconds (None: for ever) and
        raises `TimeoutError` if none came. Raises as `AsyncListener.receive_msg`."""
        msg = next(self._run, None)  # within a run, no lock
        if msg is not None:
            return msg
        with self._lock:
            deadline = None if timeout is None else time.monotonic() + timeout
            while (msg := self._take_one()) is None:
                self._wait(deadline)
            return msg

    def receive_batch(self, timeout: float | None = None) -> list[SequencedMessages]:
        """Everything received so far as runs of `SequencedMessages`, in order."""
        with self._lock:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not (out := self._take_all()):
                self._wait(deadline)
            return out

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Message:
        try:
            return self.receive_msg()
        except SessionEnded:
            raise StopIteration from None

    def batches(self) -> Iterator[list[SequencedMessages]]:
        """Yield what `receive_batch` returns, batch after batch, until End of Session."""
        while True:
            try:
                yield self.receive_batch()
            except SessionEnded:
                return

    def close(self) -> None:
        """Leave the group and stop the thread. Messages received can still be read."""
        with self._lock:
            self._ended(SessionEnded("closed by the application"))
            self._stop = True
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the I/O thread --------------------------------------------------------------------

    def _sockets(self) -> list[socket.socket]:
        return self._socks

    def _wait(self, deadline: float | None) -> None:
        if deadline is None:
            self._cond.wait()
            return
        left = deadline - time.monotonic()
        timed_out = left <= 0 or not self._cond.wait(left)
        if timed_out and not self._items and self._end is None:
            raise TimeoutError("no message in time")

    def _ended(self, exc: SoupBinTCPError) -> bool:
        ended = super()._ended(exc)
        if ended:
            self._stop = True
            self._cond.notify_all()
        return ended

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full or closed: the thread wakes anyway
            self._wake_w.send(b"x")

    def _pause_reading(self) -> bool:
        return True  # the I/O thread stops selecting the sockets while _paused

    def _resume_reading(self) -> None:
        self._wake()

    def _io_loop(self) -> None:
        try:
            self._serve()
        except Exception as exc:  # a bug, or the sockets failed: end, never hang readers
            log.exception("MoldUDP64 listener thread failed")
            with self._lock:
                self._ended(SoupBinTCPError(f"the listener's I/O thread failed: {exc}"))
        finally:
            with self._lock:
                self._remember_drops()
            for sock in self._socks:
                sock.close()
            self._wake_r.close()
            self._wake_w.close()

    def _serve(self) -> None:
        while not self._stop:
            with self._lock:
                deadline = self._machine.next_timer()
                readable = [self._wake_r] if self._paused else [self._wake_r, *self._socks]
            timeout = _IDLE if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select(readable, [], [], min(timeout, _IDLE))
            if self._wake_r in ready:
                with contextlib.suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass
            with self._lock:
                for sock in ready:
                    if sock is not self._wake_r:
                        self._read(sock)
                self._timers()
                self._send_requests()

    def _read(self, sock: socket.socket) -> None:
        recv = sock.recv
        line = self._line_of.get(sock, -1)
        now = time.monotonic()
        woke = False
        while not self._paused and self._end is None:
            try:
                data = recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # ICMP unreachable for a request: retried on its timer
            if self._feed(data, now, line):
                woke = True
        if woke:
            self._cond.notify_all()

    def _timers(self) -> None:
        machine = self._machine
        deadline = machine.next_timer()
        if deadline is not None and time.monotonic() >= deadline:
            try:
                machine.handle_timer(time.monotonic())
            except SessionTimeout as exc:
                self._ended(exc)

    def _send_requests(self) -> None:
        requests = self._machine.take_requests()
        sock = self._request_sock
        if requests and sock is not None:
            for request in requests:
                try:
                    sock.send(request)
                except OSError:
                    break  # lost like any datagram: retried on its timer


def listen(
    group: Address | Sequence[Address],
    request: Address | None = None,
    *,
    interface: str | None = None,
    rcvbuf: int = DEFAULT_RCVBUF,
    max_queue: int = DEFAULT_MAX_QUEUE,
    **options: Unpack[ListenerOptions],
) -> BlockingListener:
    """`listen_async()` for blocking code: join `group` and start the I/O thread."""
    groups = groups_of(group)
    if len(groups) > 1:
        options.setdefault("request_delay", DEFAULT_LINE_WAIT)
    machine = MoldListener(**options)
    listener = BlockingListener(machine, max_queue=max_queue, lines=[f"{h}:{p}" for h, p in groups])
    try:
        listener._open(groups, request, interface, rcvbuf)
    except BaseException:
        for sock in listener._socks:
            sock.close()
        listener._wake_r.close()
        listener._wake_w.close()
        raise
    return listener
