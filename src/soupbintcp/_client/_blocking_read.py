"""The blocking client's direct read: the application thread waiting in `receive_msg()` /
`receive_batch()` reads the socket itself while nobody else does, instead of waiting for
the I/O thread to read it and wake it (a hand-off measured at ~100 µs each way).

Layer 3. `BlockingClient._await` claims the socket (with `_lock` held, taking `_read_lock`
and the socket out of the I/O thread's read set), calls `read_directly` without the lock,
then gives the socket back. Only data is handled here; the end of the connection (EOF, an
error, a protocol error) is the I/O thread's, as it would be without this path.
"""

from __future__ import annotations

import math
import select
import socket
import time
from typing import Final

from ._blocking_io import BlockingIO

__all__ = ["read_directly"]

_RECV_SIZE: Final = 64 * 1024


def read_directly(
    client: BlockingIO, sock: socket.socket, deadline: float | None, busy_poll: float
) -> None:
    """Read `sock` until some bytes were handed to the session, `deadline` passed, or the
    connection ends (then leave it to the I/O thread). With `busy_poll` > 0, spin on the
    non-blocking socket that many seconds before sleeping in `poll()` (for users who pin a
    core: it saves the wake-up, and costs a core while it spins)."""
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
                    return
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
            return
        err = client._received(data)
        if err is not None:
            with client._lock:
                client._sock = None
                client._handover_error = err
                client._wake()
        return
