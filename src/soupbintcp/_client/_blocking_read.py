"""The blocking client's direct read: the application thread waiting in `receive_msg()` /
`receive_batch()` reads the socket itself while nobody else does, instead of waiting for
the I/O thread to read it and wake it (a hand-off measured at ~100 µs each way).

Layer 3. `await_items` claims the socket (with `_lock` held, taking `_read_lock`
and the socket out of the I/O thread's read set), calls `read_directly` without the lock,
then gives the socket back. Only data is handled here; the end of the connection (EOF, an
error, a protocol error) is the I/O thread's, as it would be without this path.
"""

from __future__ import annotations

import selectors
import socket
import struct
import time
from collections.abc import Callable
from typing import Final, TypeVar

from .._session._events import Event, Message
from ._blocking_io import _STREAM_BYTES, DONTWAIT, BlockingIO

__all__ = ["await_items", "await_message", "read_directly"]

_T = TypeVar("_T")

#: One recv(): 64 KiB, below glibc's mmap threshold (256 KiB measured slower per round trip).
_RECV_SIZE: Final = 64 * 1024
#: At most this much per call when a stream fills the buffer (the I/O thread reads as much).
_MAX_READ: Final = 256 * 1024
#: A receive timeout already set on the socket is kept while it ends at most this long after
#: the caller's deadline (setting it again is a system call; `poll()`'s milliseconds were as
#: coarse).
_TIMEOUT_SLACK: Final = 0.001
#: SO_RCVTIMEO's `struct timeval`.
_TIMEVAL: Final = struct.Struct("@ll").pack


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


def await_message(client: BlockingIO, timeout: float | None) -> Message:
    """`receive_msg`'s wait when its run is empty. The usual round trip, nothing queued and
    the socket free, takes one claim, one read and one turn of the lock, and a chunk that is
    exactly one Sequenced Data packet goes to the caller as it is
    (`ClientSession.receive_one`); anything else goes `await_items`' general way."""
    inbox = client._inbox
    lock = client._lock
    with lock:
        msg = next(inbox._run, None)  # another thread started a run meanwhile
        if msg is None and (inbox._items or inbox._end is not None):
            msg = inbox._take_one()  # the queue's head (a stream); raises at the end
        if msg is not None:
            return msg
        sock = None if inbox._items else claim(client)
    deadline = None if timeout is None else time.monotonic() + timeout
    if sock is not None:
        data = b""
        try:
            data = read_directly(client, sock, deadline, client._busy_poll)
        finally:
            with lock:
                if (
                    data
                    and len(data) < _STREAM_BYTES
                    and not inbox._items
                    and (msg := client._core.session.receive_one(data, time.monotonic()))
                ):
                    # The usual answer: `_give_back`'s case for it inlined (claimed, so no
                    # stream flowed, and the socket stays out of the I/O thread's read set);
                    # one Python call less per round trip.
                    client._app_reading = False
                    client._read_lock.release()
                    if client._waiters:
                        client._cond.notify()
                else:
                    msg = _give_back(client, sock, data, True)
        if msg is not None:
            return msg
    return await_items(client, inbox._take_one, timeout, one=True, deadline=deadline)


def await_items(
    client: BlockingIO,
    take: Callable[[], _T | None],
    timeout: float | None,
    one: bool = False,
    deadline: float | None = None,
) -> _T:
    """What `take()` (called with _lock held) gives once it gives something. Meanwhile
    this thread reads the socket itself if nobody else does (no hand-off from the I/O
    thread), else waits for whoever does. `one`: `take` is `receive_msg`'s, so a chunk
    that is exactly one Sequenced Data packet, with nothing queued before it, is handed
    out as it is (`ClientSession.receive_one`), not queued and taken back. `deadline`: when
    `timeout` ends, if the caller has worked that out already."""
    if deadline is None and timeout is not None:
        deadline = time.monotonic() + timeout
    cond_deadline = deadline
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
    back; the message itself when it is the one `receive_msg` waits for (`one`), else None
    (queued, or not a message). After an answer the I/O thread watches the socket again at
    its next look (within `_REARM`), not now: it would be woken by the answer to our next
    request. A stream (a read of `_STREAM_BYTES` or more) goes back to it at once, to be
    read on while the application works through it."""
    msg = None
    if data:
        client._streaming = len(data) >= _STREAM_BYTES
        if one and not client._inbox._items:
            msg = client._core.session.receive_one(data, time.monotonic())
        if msg is None:
            _hand_over(client, data)
    client._app_reading = False
    if client._streaming and client._sock is sock and not client._inbox._paused:
        client._set_mask(sock, client._mask | selectors.EVENT_READ)
    client._read_lock.release()
    if client._waiters:  # the socket is free: one of them may read it now
        client._cond.notify()
    return msg


def _hand_over(client: BlockingIO, data: bytes) -> None:
    """The bytes an application thread read, to the session and the queue (with _lock
    held). An error that ends the connection goes to the I/O thread with the socket."""
    status: list[Event] = []
    err = client._received_locked(data, status)
    if status and client._core.on_status is not None:
        client._status_backlog += status  # on_status runs in the I/O thread
        client._wake()
    if err is not None:
        client._sock = None
        client._handover_error = err
        client._wake()


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
        or not client._read_lock.acquire(False)  # (positional: a cheaper call)
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
    left to the I/O thread). With `busy_poll` > 0, spin on the socket that many seconds
    before sleeping (for users who pin a core: it saves the wake-up, and costs a core
    while it spins).

    The socket is in blocking mode (`DONTWAIT`): this thread sleeps in `recv()` itself,
    the deadline kept by the socket's receive timeout (SO_RCVTIMEO), with no `poll()`
    before it. A read that fills the buffer is read on, up to `_MAX_READ` bytes."""
    if busy_poll > 0:
        spin_until = time.monotonic() + busy_poll
        if deadline is not None:
            spin_until = min(spin_until, deadline)
        while True:
            try:
                return _got(client, sock, sock.recv(_RECV_SIZE, DONTWAIT))
            except (BlockingIOError, InterruptedError):
                if time.monotonic() >= spin_until:
                    break
            except OSError:
                return _got(client, sock, b"")  # the I/O thread sees the error too
    while True:
        if deadline is None:
            if client._rcvtimeo:
                _set_rcvtimeo(client, sock, 0.0)
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return b""
            timeo = client._rcvtimeo
            if not 0 < timeo <= remaining + _TIMEOUT_SLACK:
                _set_rcvtimeo(client, sock, remaining)
        try:
            data = sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            continue  # the receive timeout ran out: the deadline is checked again
        except OSError:
            data = b""  # the I/O thread sees the error too
        if data and len(data) < _RECV_SIZE:
            return data  # the usual answer: no call to `_got`
        return _got(client, sock, data)


def _got(client: BlockingIO, sock: socket.socket, data: bytes) -> bytes:
    """What one read of the socket gives the caller: b"" at its end (the end left to the I/O
    thread), a buffer's worth read on."""
    if not data:
        with client._lock:
            if client._sock is sock:
                client._sock = None  # the connection ends: the I/O thread's to handle
        return b""
    if len(data) == _RECV_SIZE:
        data = _read_on(sock, data)
    return data


def _set_rcvtimeo(client: BlockingIO, sock: socket.socket, seconds: float) -> None:
    """The socket's receive timeout (0: none), rounded up to the microsecond."""
    whole = int(seconds)
    micros = min(999_999, int((seconds - whole) * 1e6) + 1) if seconds else 0
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _TIMEVAL(whole, micros))
    except OSError:
        return  # the socket is gone: the read that follows says so
    client._rcvtimeo = seconds


def _read_on(sock: socket.socket, first: bytes) -> bytes:
    """More of a stream that filled the buffer, up to `_MAX_READ` bytes in all (what is
    left, and any error, is for the next read)."""
    chunks = [first]
    size = len(first)
    while size < _MAX_READ:
        try:
            data = sock.recv(_RECV_SIZE, DONTWAIT)
        except OSError:  # BlockingIOError: nothing more yet
            break
        if not data:
            break
        chunks.append(data)
        size += len(data)
        if len(data) < _RECV_SIZE:
            break
    return b"".join(chunks)
