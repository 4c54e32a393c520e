"""The blocking client's connect: a non-blocking socket connected (and TLS-established)
within `connect_timeout`, waiting through the I/O thread's selector so that a session that
ends meanwhile stops it (`Stopped`).

Layer 3 (drivers). Used by `_blocking`'s connection attempts; the wait is `wait_io`, through
the client's selector, and the backoff between attempts `sleep_unless_stopped`.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import ssl as _ssl
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Final

from ._options import Address, ClientConfig

if TYPE_CHECKING:
    from ._blocking_io import BlockingIO

__all__ = ["Stopped", "WaitIO", "open_for", "open_socket", "sleep_unless_stopped", "wait_io"]

#: connect_ex() results meaning "connected" or "in progress" (10035: Windows' WSAEWOULDBLOCK).
_CONNECTING: Final = frozenset(
    {0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY, 10035}
)

#: Wait until the socket is ready for the selector events; TimeoutError at the deadline,
#: `Stopped` if the session ends meanwhile.
WaitIO = Callable[[socket.socket, int, float], None]


class Stopped(Exception):
    """The session ended while the I/O thread was connecting or waiting to reconnect."""


def open_socket(
    address: Address, config: ClientConfig, hostname: str, wait_io: WaitIO
) -> socket.socket:
    """A connected (and, with `config.ssl`, TLS-established) non-blocking socket to `address`;
    `hostname` is the TLS server name unless `config.server_hostname` says otherwise."""
    host, port = address
    deadline = time.monotonic() + config.connect_timeout
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
                wait_io(sock, selectors.EVENT_WRITE, deadline)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, os.strerror(code))  # e.g. ConnectionRefusedError
        except (TimeoutError, Stopped):
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            errors.append(exc)
            continue
        except BaseException:
            sock.close()
            raise
        if config.ssl is None:
            return sock
        return _start_tls(sock, config, hostname, deadline, wait_io)
    if not errors:
        raise OSError(f"no address found for {host}:{port}")
    if len({str(e) for e in errors}) == 1:
        raise errors[0]
    raise OSError(f"Multiple exceptions: {', '.join(str(e) for e in errors)}")


def _start_tls(
    sock: socket.socket, config: ClientConfig, hostname: str, deadline: float, wait_io: WaitIO
) -> socket.socket:
    assert config.ssl is not None
    try:
        tls = config.ssl.wrap_socket(
            sock,
            server_hostname=config.server_hostname or hostname,
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
                wait_io(tls, selectors.EVENT_READ, deadline)
            except _ssl.SSLWantWriteError:
                wait_io(tls, selectors.EVENT_WRITE, deadline)
    except BaseException:
        tls.close()
        raise


# --- waiting through the I/O thread's selector ---------------------------------------------


def sleep_unless_stopped(client: BlockingIO, delay: float) -> bool:
    """Wait `delay` seconds before a reconnect; False if the session ended meanwhile."""
    deadline = time.monotonic() + delay
    while not client._stopping():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return True
        if client._selector.select(remaining):
            client._drain_wake()
    return False


def wait_io(client: BlockingIO, sock: socket.socket, events: int, deadline: float) -> None:
    """Wait until `sock` is ready for `events`; TimeoutError at `deadline`, `Stopped` if
    the session ends meanwhile."""
    selector = client._selector
    selector.register(sock, events)
    try:
        while True:
            if client._stopping():
                raise Stopped
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            for key, _ in selector.select(remaining):
                if key.fileobj is sock:
                    return
                client._drain_wake()
    finally:
        selector.unregister(sock)


def open_for(client: BlockingIO, address: Address) -> socket.socket:
    """A connected (and, with `ssl`, TLS-established) non-blocking socket."""
    config = client._core.config
    return open_socket(address, config, client._core.address[0], partial(wait_io, client))
