"""`Connection`: what the application sees of one client connection.

Layer 3 (server driver). Handed to `on_unsequenced` and listed by `Server.connections`:
the figures, read on demand, and the calls an application makes. The machinery behind it
(asyncio callbacks, login, replay, timers, closing) is its `ServerProtocol`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .._errors import LocalProtocolError
from .._session._server import ServerState
from ._config import Address
from ._status import ClientStatus

if TYPE_CHECKING:
    from ._protocol import ServerProtocol
    from ._stream import Stream

try:  # asking the kernel what the peer has not acknowledged yet: POSIX only
    import fcntl
    import termios
except ImportError:  # pragma: no cover - Windows
    fcntl = termios = None  # type: ignore[assignment]

__all__ = ["Connection", "buffered", "unacknowledged"]


class Connection:
    """One client connection, from accept to close.

    Handed to `on_unsequenced` and listed by `Server.connections`. Its figures (`username`,
    `address`, `login_time`, `messages_sent`, `bytes_sent`, `next_sequence`, `lag`) are read
    on demand; the server logs them in one line when the connection closes.
    """

    __slots__ = ("_link", "address", "login_time", "unsequenced_dropped", "username")

    def __init__(self, link: ServerProtocol) -> None:
        self._link = link
        #: (host, port) of the client.
        self.address: Address = ("", 0)
        #: The username: as configured in `credentials`, else as the client sent it; before
        #: login, the one it asked for ("" until its Login Request arrives).
        self.username = ""
        #: Wall-clock time (`time.time()`) of the Login Accepted, None before.
        self.login_time: float | None = None
        #: Unsequenced Data dropped because the client was not reading (best effort).
        self.unsequenced_dropped = 0

    def __repr__(self) -> str:
        host, port = self.address
        return f"<Connection {host}:{port} user={self.username!r} {self.state.value}>"

    # --- figures ---------------------------------------------------------------------------

    @property
    def id(self) -> int:
        """This connection's number among the server's (1, 2, 3, ...): what events say."""
        return self._link.id

    @property
    def state(self) -> ServerState:
        """The state of this connection's session machine (`ServerState`)."""
        return self._link.session.state

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (or closing)."""
        return self._link.closed

    @property
    def close_reason(self) -> str | None:
        """Why the connection closed, as its closing log line says (None while open)."""
        return self._link.close_reason

    @property
    def logged_in(self) -> bool:
        """Whether the client has logged in on this connection."""
        return self.login_time is not None

    @property
    def session_id(self) -> str:
        """The session logged into ("" before login)."""
        return self._link.session_id

    @property
    def stream(self) -> Stream | None:
        """The stream this connection follows (None before login)."""
        return self._link.stream

    @property
    def next_sequence(self) -> int:
        """Sequence number of the next Sequenced Data this connection will send."""
        return self._link.session.next_sequence

    @property
    def messages_sent(self) -> int:
        """Sequenced messages sent on this connection."""
        first = self._link.first_sequence
        return self._link.session.next_sequence - first if first else 0

    @property
    def bytes_sent(self) -> int:
        """Bytes written to this connection (every packet)."""
        return self._link.bytes_sent

    @property
    def lag(self) -> int:
        """Messages the store holds durably that this connection has not sent yet."""
        stream = self._link.stream
        if stream is None:
            return 0
        return max(0, stream.store.durable_count - self._link.session.next_sequence + 1)

    @property
    def paused(self) -> bool:
        """Whether the transport's write buffer is over its high-water mark."""
        return self._link.paused

    @property
    def write_buffer_size(self) -> int:
        """Bytes written to the transport and not yet sent to the client."""
        transport = self._link.transport
        return buffered(transport) if transport is not None else 0

    def status(self) -> ClientStatus:
        """All the figures above at once."""
        link = self._link
        logged_in = self.login_time is not None
        return ClientStatus(
            connection=link.id,
            peer=self.address,
            user=self.username,
            session=link.session_id,
            logged_in=logged_in,
            next_sequence=self.next_sequence if logged_in else 0,
            lag=self.lag,
            send_buffer=self.write_buffer_size,
            messages_sent=self.messages_sent,
            bytes_sent=link.bytes_sent,
            paused=link.paused,
            up=link.loop.time() - link.opened,
        )

    # What the tests look at inside: the one lazy timer (not rescheduled per write), the
    # transport (TCP_NODELAY set) and whether reading stopped for a slow handler.
    @property
    def _timer(self) -> asyncio.TimerHandle | None:
        return self._link.timer.handle

    @property
    def _transport(self) -> asyncio.Transport:
        return self._link.transport

    @property
    def _reading_paused(self) -> bool:
        inbox = self._link.inbox
        return inbox is not None and inbox.paused

    # --- API -------------------------------------------------------------------------------

    def send_unseq_data(self, data: bytes) -> None:
        """Send an Unsequenced Data packet to this client alone.

        Best effort, as the protocol says: dropped (and counted in `unsequenced_dropped`)
        if the connection is closed, ended or not reading.
        """
        link = self._link
        session = link.session
        if link.closed or session.state is not ServerState.LOGGED_IN:
            self.unsequenced_dropped += 1
            return
        transport = link.transport
        if transport.get_write_buffer_size() > link.config.unsequenced_limit:
            self.unsequenced_dropped += 1
            return
        out = session.send_unsequenced(data, link.loop.time())
        transport.write(out)
        link.bytes_sent += len(out)

    def publish(self, data: bytes) -> int:
        """Publish a message into the stream this connection follows: the user's own
        stream with per-user streams (it reaches the user on every connection, now or at
        the next login), the shared feed otherwise. Returns the sequence number."""
        stream = self._link.stream
        if stream is None:
            raise LocalProtocolError("cannot publish for a connection that is not logged in")
        return stream.publish(data)

    def publish_many(self, messages: Iterable[bytes]) -> int:
        """`publish` for several messages; returns the first sequence number."""
        stream = self._link.stream
        if stream is None:
            raise LocalProtocolError("cannot publish for a connection that is not logged in")
        return stream.publish_many(messages)

    def close(self, why: str | None = None) -> None:
        """Close this connection (what was written still goes out); `why` is the reason
        logged (default: closed by the server application)."""
        self._link.close("application", why or "closed by the server application", logging.INFO)


def buffered(transport: asyncio.WriteTransport) -> int:
    """Bytes waiting in `transport`'s write buffer (0 once a TLS transport is gone)."""
    try:
        return transport.get_write_buffer_size()
    except AttributeError:  # a TLS transport whose connection is gone has no buffer
        return 0


def unacknowledged(transport: asyncio.BaseTransport) -> int:
    """Bytes in the kernel's send queue of the transport's socket not yet acknowledged by
    the peer (Linux: SIOCOUTQ); 0 where that cannot be asked."""
    sock = transport.get_extra_info("socket")
    if sock is None or termios is None or not hasattr(termios, "TIOCOUTQ"):
        return 0
    try:
        out = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int.from_bytes(out, sys.byteorder, signed=True)
