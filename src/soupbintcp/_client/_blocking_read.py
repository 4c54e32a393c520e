"""The blocking client's direct read: the application thread waiting in `receive_msg()` /
`receive_batch()` reads the socket itself while nobody else does, instead of waiting for
the I/O thread to read it and wake it (a hand-off measured at ~100 µs each way).

Layer 3. `await_items` claims the socket (with `_lock` held, taking `_read_lock`
and the socket out of the I/O thread's read set), calls `read_directly` without the lock,
then gives the socket back. Only data is handled here; the end of the connection (EOF, an
error, a protocol error) is the I/O thread's, as it would be without this path.
"""

from __future__ import annotations

import math
import select
import selectors
import socket
import time
from collections.abc import Callable
from typing import Final, TypeVar

from .._session._events import Event, Message
from ._blocking_io import _STREAM_BYTES, BlockingIO

__all__ = ["await_items", "read_directly"]

_T = TypeVar("_T")

#: One recv(): 64 KiB, below glibc's mmap threshold (256 KiB measured slower per round trip).
_RECV_SIZE: Final = 64 * 1024
#: At most this much per call when a stream fills the buffer (the I/O thread reads as much).
_MAX_READ: Final = 256 * 1024


def wait_cond(client: BlockingIO, timeout: float | None, deadline: float | None) -> float | None:
    """Wait on the condition (with _lock held) until the caller's deadline."""
    if timeout is None:
        remaining = None
    else:
        now = time.monotonic()
        if deadline is None:
            deadline = now + timeout
        remaining = deadline - now
        if remaining <= 0:
            raise TimeoutError(f"no message received within {timeout:g} s")
    client._waiters += 1
    try:
        client._cond.wait(remaining)
    finally:
        client._waiters -= 1
    return deadline


def await_items(
    client: BlockingIO, take: Callable[[], _T | None], timeout: float | None, one: bool = False
) -> _T:
    """What `take()` (called with _lock held) gives once it gives something. Meanwhile
    this thread reads the socket itself if nobody else does (no hand-off from the I/O
    thread), else waits for whoever does. `one`: `take` is `receive_msg`'s, so a chunk
    that is exactly one Sequenced Data packet, with nothing queued before it, is handed
    out as it is (`ClientSession.receive_one`), not queued and taken back."""
    deadline = None if timeout is None else time.monotonic() + timeout
    cond_deadline: float | None = None
    lock = client._lock
    while True:
        with lock:
            out = take()
            if out:
                return out
            sock = claim(client)
            if sock is None:
                cond_deadline = wait_cond(client, timeout, cond_deadline)
                continue
        data = b""
        try:
            data = read_directly(client, sock, deadline, client._busy_poll)
        finally:
            with lock:
                msg = _give_back(client, sock, data, one)
                if msg is None and data:
                    out = take()
        if msg is not None:
            return msg  # type: ignore[return-value]  # `one`: _T is Message
        if data and out:
            return out
        if deadline is not None and time.monotonic() >= deadline:
            with lock:
                if out := take():
                    return out
            assert timeout is not None
            raise TimeoutError(f"no message received within {timeout:g} s")


def _give_back(client: BlockingIO, sock: socket.socket, data: bytes, one: bool) -> Message | None:
    """One turn of the lock after a direct read: the bytes to the session, the socket given
    back (`_hand_over`'s message, if any). After an answer the I/O thread watches the socket
    again at its next look (within `_REARM`), not now: it would be woken by the answer to our
    next request. A stream (a read of `_STREAM_BYTES` or more) goes back to it at once, to be
    read on while the application works through it."""
    msg = _hand_over(client, sock, data, one) if data else None
    client._app_reading = False
    if client._streaming and client._sock is sock and not client._inbox._paused:
        client._set_mask(sock, client._mask | selectors.EVENT_READ)
    client._read_lock.release()
    if client._waiters:  # the socket is free: one of them may read it now
        client._cond.notify()
    return msg


def _hand_over(client: BlockingIO, sock: socket.socket, data: bytes, one: bool) -> Message | None:
    """The bytes an application thread read, to the session (with _lock held): the message
    itself when it is the one `receive_msg` waits for, else None (queued, or not a message).
    An error that ends the connection goes to the I/O thread with the socket."""
    inbox = client._inbox
    client._streaming = len(data) >= _STREAM_BYTES
    if one and not inbox._items:
        msg = client._core.session.receive_one(data, time.monotonic())
        if msg is not None:
            return msg
    status: list[Event] = []
    err = client._received_locked(data, status)
    if status and client._core.on_status is not None:
        client._status_backlog += status  # on_status runs in the I/O thread
        client._wake()
    if err is not None:
        client._sock = None
        client._handover_error = err
        client._wake()
    return None


def claim(client: BlockingIO) -> socket.socket | None:
    """The socket, for this thread to read until something arrives, if it may (with
    _lock held): logged in over plain TCP, no stream flowing, reading not paused, nobody
    else reading.
    The I/O thread then stops watching it for reading."""
    sock = client._sock
    if (
        sock is None
        or client._streaming  # the I/O thread reads it while the application works
        or client._inbox._paused
        or not client._read_lock.acquire(blocking=False)
    ):
        return None
    client._app_reading = True
    if client._mask & selectors.EVENT_READ:
        client._set_mask(sock, client._mask & ~selectors.EVENT_READ)
    if not client._ticking:  # the I/O thread may sleep for a second: let it look soon
        client._ticking = True
        client._wake()
    return sock


def read_directly(
    client: BlockingIO, sock: socket.socket, deadline: float | None, busy_poll: float
) -> bytes:
    """Read `sock` until some bytes arrive (returned, for the caller to hand to the
    session under the lock), `deadline` passes or the connection ends (b"": the end is
    left to the I/O thread). With `busy_poll` > 0, spin on the non-blocking socket that
    many seconds before sleeping in `poll()` (for users who pin a core: it saves the
    wake-up, and costs a core while it spins).

    The answer is waited for in `poll()` first (a read that finds nothing would cost a
    system call per round trip); a read that fills the
    buffer is read on, up to `_MAX_READ` bytes."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    spin_until = time.monotonic() + busy_poll if busy_poll > 0 else 0.0
    while True:
        if not spin_until:
            if deadline is None:
                poller.poll()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b""
                if not poller.poll(math.ceil(remaining * 1000)):
                    continue  # re-checks the deadline
        try:
            data = sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            if spin_until and time.monotonic() >= spin_until:
                spin_until = 0.0
            continue
        except OSError:
            data = b""  # the I/O thread sees the error too
        if not data:
            with client._lock:
                if client._sock is sock:
                    client._sock = None  # the connection ends: the I/O thread's to handle
            return b""
        if len(data) == _RECV_SIZE:
            data = _read_on(sock, data)
        return data


def _read_on(sock: socket.socket, first: bytes) -> bytes:
    """More of a stream that filled the buffer, up to `_MAX_READ` bytes in all (what is
    left, and any error, is for the next read)."""
    chunks = [first]
    size = len(first)
    while size < _MAX_READ:
        try:
            data = sock.recv(_RECV_SIZE)
        except OSError:  # BlockingIOError: nothing more yet
            break
        if not data:
            break
        chunks.append(data)
        size += len(data)
        if len(data) < _RECV_SIZE:
            break
    return b"".join(chunks)
