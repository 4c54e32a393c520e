"""Accepting connections: the listening socket, TLS handshakes, and admission under the caps.

Layer 3 (server driver). Plain TCP goes through `loop.create_server`. TLS is accepted here
rather than in `create_server`, whose protocol sees a connection only once its handshake is
done: a client that connects and never handshakes must count against the caps and meet the
login timeout like any other, so a handshake under way counts as a connection awaiting login.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl as _ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._config import Address, ServerConfig
from ._dispatch import EventDispatcher
from ._events import ConnectionRefused, TLSHandshakeFailed, refusal_cap

if TYPE_CHECKING:
    from ._protocol import ServerProtocol

__all__ = ["Admission", "Listener"]

log = logging.getLogger("soupbintcp.server")


class Admission:
    """The open connections, and whether one more may be served.

    When the connections awaiting login fill `max_pending_logins` (or all connections fill
    `max_connections`), the oldest connection that has not sent its Login Request yet is
    evicted to make room for the new one (as is one whose login the throttle holds back),
    rather than the new one refused: sockets that
    connect and trickle bytes can then hold a slot only until the next connection arrives,
    and an honest client, which sends its Login Request at once, always gets in (issue 15).
    Only when every connection awaiting login has a Login Request being answered is the new
    one refused."""

    __slots__ = ("_max_connections", "_max_pending", "closing", "connections", "evicted",
                 "handshaking", "pending")  # fmt: skip

    def __init__(self, config: ServerConfig) -> None:
        self._max_connections = config.max_connections
        self._max_pending = config.max_pending_logins
        #: Every open connection, logged in or not.
        self.connections: dict[ServerProtocol, None] = {}
        #: Admitted, not logged in yet: oldest first.
        self.pending: dict[ServerProtocol, None] = {}
        self.handshaking = 0  # TLS handshakes under way
        self.evicted = 0  # connections awaiting login closed to admit newer ones
        #: The server is closing: nothing more is admitted.
        self.closing = False

    @property
    def pending_logins(self) -> int:
        return len(self.pending)

    def serving(self) -> bool:
        return not self.closing

    def _full(self) -> str | None:
        if (
            self._max_connections is not None
            and len(self.connections) + self.handshaking >= self._max_connections
        ):
            return f"too many connections (max_connections {self._max_connections})"
        if (
            self._max_pending is not None
            and len(self.pending) + self.handshaking >= self._max_pending
        ):
            return f"too many connections awaiting login (max_pending_logins {self._max_pending})"
        return None

    def refusal(self) -> str | None:
        """Why one more connection may not be served, or None (room is made by evicting the
        oldest connection awaiting login that has not sent its Login Request).

        A TLS connection still in its handshake counts as a connection awaiting login."""
        if self.closing:
            return "the server is closing"
        full = self._full()
        while full is not None:
            victim = next((c for c in self.pending if c.login is None or c.login.waiting), None)
            if victim is None:
                return full
            self.evicted += 1
            victim.evict(f"evicted to admit a newer connection: {full}")
            full = self._full()
        return None

    def admit(self, conn: ServerProtocol, *, checked: bool = False) -> str | None:
        """Why `conn` may not be served, or None and it is registered. `checked`: the caps
        were applied when TCP accepted it (TLS)."""
        refusal = "the server is closing" if self.closing else None
        if not checked:
            refusal = self.refusal()
        if refusal is not None:
            return refusal
        self.connections[conn] = None
        self.pending[conn] = None
        return None

    def logged_in(self, conn: ServerProtocol) -> None:
        """`conn` no longer awaits login (it counts against `max_connections` only)."""
        self.pending.pop(conn, None)

    def forget(self, conn: ServerProtocol) -> None:
        self.connections.pop(conn, None)
        self.pending.pop(conn, None)


class Listener:
    """The listening socket(s) of a server, making one protocol per admitted connection."""

    __slots__ = ("_accepting", "_admission", "_events", "_handshakes", "_loop", "_make",
                 "_server", "_sock", "_tls_timeout")  # fmt: skip

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        admission: Admission,
        make: Callable[[bool], ServerProtocol],
        tls_timeout: float,
        events: EventDispatcher,
    ) -> None:
        self._loop = loop
        self._admission = admission
        self._events = events
        self._make = make  # make(admitted): admitted means the caps were applied already
        self._tls_timeout = tls_timeout
        self._server: asyncio.Server | None = None
        self._sock: socket.socket | None = None  # TLS: our own socket
        self._accepting: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> Address:
        """(host, port) actually bound (the first socket's, if several)."""
        if self._sock is not None:
            name = self._sock.getsockname()
        else:
            assert self._server is not None
            name = self._server.sockets[0].getsockname()
        return (str(name[0]), int(name[1]))

    async def listen(
        self, host: str | None, port: int, ssl: _ssl.SSLContext | None, backlog: int
    ) -> None:
        if ssl is None:
            self._server = await self._loop.create_server(
                lambda: self._make(False), host, port, backlog=backlog
            )
            return
        sock = socket.create_server((host or "", port), backlog=backlog)
        sock.setblocking(False)
        self._sock = sock
        self._accepting = self._loop.create_task(self._accept_tls(sock, ssl))

    async def _accept_tls(self, sock: socket.socket, ssl: _ssl.SSLContext) -> None:
        loop = self._loop
        admission = self._admission
        while admission.serving():
            try:
                conn, peer = await loop.sock_accept(sock)
            except OSError as exc:
                if not admission.serving():  # the listener was closed under us
                    return
                log.warning("accepting a connection failed: %s", exc)
                await asyncio.sleep(0.05)  # e.g. out of file descriptors: do not spin
                continue
            refusal = admission.refusal()
            if refusal is not None:
                conn.close()
                self._events.emit(
                    ConnectionRefused(
                        peer=(str(peer[0]), int(peer[1])), cap=refusal_cap(refusal), detail=refusal
                    )
                )
                continue
            admission.handshaking += 1
            task = loop.create_task(self._tls_handshake(conn, peer, ssl))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _tls_handshake(
        self, sock: socket.socket, peer: tuple[str, int], ssl: _ssl.SSLContext
    ) -> None:
        try:
            await self._loop.connect_accepted_socket(
                lambda: self._make(True), sock, ssl=ssl, ssl_handshake_timeout=self._tls_timeout
            )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            sock.close()
            self._events.emit(
                TLSHandshakeFailed(
                    peer=(str(peer[0]), int(peer[1])), detail=str(exc) or type(exc).__name__
                )
            )
        finally:
            self._admission.handshaking -= 1

    def close(self) -> None:
        """Stop listening and cancel the handshakes under way."""
        if self._server is not None:
            self._server.close()
        for task in (self._accepting, *self._handshakes):
            if task is not None:
                task.cancel()
        if self._sock is not None:
            self._sock.close()

    async def wait_closed(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
