"""The UDP sockets of MoldUDP64: a multicast sender, a multicast receiver joined to a group,
a unicast request socket, and the kernel's count of datagrams it dropped for a socket.

Layer 3 (drivers). Everything here is plain `socket` calls, non-blocking.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Sequence
from typing import Final

__all__ = [
    "Address",
    "groups_of",
    "kernel_drops",
    "receiver_socket",
    "request_socket",
    "sender_socket",
]

Address = tuple[str, int]

#: Receive buffer asked for: a burst of a fast feed while the application is busy. The
#: kernel caps it at net.core.rmem_max unless the process may force it.
DEFAULT_RCVBUF: Final = 16 * 1024 * 1024
_SNDBUF: Final = 4 * 1024 * 1024


def _any(interface: str | None) -> str:
    return interface or "0.0.0.0"


def sender_socket(interface: str | None, ttl: int, loopback: bool) -> socket.socket:
    """A socket that sends to multicast groups out of `interface` (None: the default one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if interface:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(loopback))
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
        sock.bind((_any(interface), 0))
    except BaseException:
        sock.close()
        raise
    return sock


def set_rcvbuf(sock: socket.socket, size: int) -> None:
    """As large a receive buffer as allowed, up to `size`."""
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    if force is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
            return
        except OSError:
            pass  # not privileged: the plain option, capped by rmem_max
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def groups_of(group: Address | Sequence[Address]) -> list[Address]:
    """One group `(host, port)`, or several: the lines of an A/B pair."""
    if isinstance(group[0], str):
        return [group]  # type: ignore[list-item]
    groups = [(str(g[0]), int(g[1])) for g in group]  # type: ignore[index]
    if not groups:
        raise ValueError("no multicast group")
    return groups


def receiver_socket(group: Address, interface: str | None, rcvbuf: int) -> socket.socket:
    """A socket joined to multicast `group` on `interface`, several per host allowed."""
    host, port = group
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        set_rcvbuf(sock, rcvbuf)
        try:
            # Bound to the group, the socket gets that group's datagrams only (Linux).
            sock.bind((host, port))
        except OSError:
            sock.bind(("", port))
        membership = socket.inet_aton(host) + socket.inet_aton(_any(interface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    except BaseException:
        sock.close()
        raise
    return sock


def request_socket(server: Address, interface: str | None, rcvbuf: int) -> socket.socket:
    """The socket a listener sends requests from and reads the answers on: connected to the
    re-request server, so nothing else reaches it. A socket of its own rather than the
    multicast one, so several listeners on one host each get their own answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        set_rcvbuf(sock, rcvbuf)
        sock.bind((_any(interface), 0))
        sock.connect(server)
    except BaseException:
        sock.close()
        raise
    return sock


def server_socket(address: Address) -> socket.socket:
    """The re-request server's socket: requests in, answers out to their sources."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        set_rcvbuf(sock, 4 * 1024 * 1024)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def kernel_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for `sock` (its receive buffer was full), where the
    operating system reports it (Linux: the drops column of /proc/net/udp); None elsewhere."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
        with open("/proc/net/udp", encoding="ascii") as table:
            for line in table:
                fields = line.split()
                if len(fields) > 12 and fields[9] == inode:
                    return int(fields[12])
    except (OSError, ValueError):
        return None
    return None
