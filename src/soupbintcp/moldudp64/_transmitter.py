"""The asyncio MoldUDP64 transmitter: a `MessageStore`'s messages out on a multicast group.

Layer 3 (drivers). The store is the only input: whatever is appended to it (by a SoupBinTCP
server publishing, a generator, an import) goes out once it is durable, so one journal
serves both protocols and sequence number n names the same message on both.

Each tick (1 ms by default) the transmitter reads what became durable and packs it into
as few datagrams as fit under `max_payload` bytes: a live stream is batched per tick, not
sent one datagram per message. A long backlog is sent `burst` datagrams per turn of the
event loop, so the loop (and the re-request server on it) keeps running. With nothing to
send it sends a Heartbeat every `heartbeat_interval`; after `end_session()`, End of Session
packets at the next sequence number instead.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Final, Self, TypedDict, Unpack

from .._errors import LocalProtocolError
from .._wire._moldudp64 import (
    DEFAULT_MAX_PAYLOAD,
    HEADER_LENGTH,
    encode_downstream,
    end_of_session,
    pack_downstream,
    session_field,
)
from ..store import MessageStore
from ._sockets import Address, sender_socket

__all__ = ["Transmitter", "TransmitterOptions", "session_of", "transmit"]

log = logging.getLogger("soupbintcp.moldudp64")

#: Messages read from the store at a time.
_READ_CHUNK: Final = 4096
#: End of Session is repeated this often while it lingers: listeners that lost one learn
#: of it soon from the next.
_END_INTERVAL: Final = 0.25
#: Errors of a full send buffer: the datagram goes again next tick. Any other error (no
#: route to the group, no such device) is a failure, said once at WARNING, then counted.
_TRANSIENT: Final = frozenset({errno.ENOBUFS, errno.EAGAIN, errno.EINTR})


def session_of(store: MessageStore, session_id: str | None) -> str:
    """The session to transmit: as given, or as the store records it."""
    session = session_id or store.session_id
    if not session:
        raise LocalProtocolError("a session id is needed: the store records none")
    session_field(session)  # checks it
    if store.session_id and session != store.session_id:
        raise LocalProtocolError(
            f"session {session!r} is not the store's session {store.session_id!r}"
        )
    return session


class Transmitter:
    """Sends a store's messages to a multicast group. Create it with `transmit()`.

    `first` is the first sequence number to send (default: the next one appended, so a
    restarted transmitter does not resend the journal; listeners ask for what they miss).
    """

    def __init__(
        self,
        store: MessageStore,
        group: Address,
        *,
        session_id: str | None = None,
        interface: str | None = None,
        ttl: int = 1,
        loopback: bool = True,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        heartbeat_interval: float = 1.0,
        tick: float = 0.001,
        burst: int = 256,
        first: int | None = None,
    ) -> None:
        if not HEADER_LENGTH + 2 < max_payload <= 65507:
            raise LocalProtocolError(f"max_payload must be 23..65507 bytes, not {max_payload}")
        if heartbeat_interval <= 0 or tick <= 0 or burst < 1:
            raise LocalProtocolError("heartbeat_interval, tick and burst must be positive")
        self._loop = asyncio.get_running_loop()
        self.store = store
        self.group = (group[0], group[1])
        self.session_id = session_of(store, session_id)
        self._field = session_field(self.session_id)
        self.max_payload = max_payload
        self.heartbeat_interval = heartbeat_interval
        self.tick = tick
        self.burst = burst
        self._next = store.durable_count + 1 if first is None else max(1, first)
        self._sock: socket.socket | None = sender_socket(interface, ttl, loopback)
        self._last_sent = -1e9
        self._handle: asyncio.Handle | None = None
        self._ended = False
        self._end_deadline = 0.0
        self._done: asyncio.Future[None] = self._loop.create_future()
        self.packets_sent = 0
        self.messages_sent = 0
        self.heartbeats_sent = 0
        #: Datagrams the socket refused (buffer full): they are sent again next tick.
        self.send_retries = 0
        #: Sends that failed otherwise (no route to the group, no such device...), and the
        #: last such error: said once at WARNING, then counted here.
        self.send_failures = 0
        self.last_error: OSError | None = None
        #: Datagrams the network took (data, heartbeats, End of Session).
        self.sends_ok = 0

    def __repr__(self) -> str:
        return (
            f"<Transmitter session={self.session_id!r} group={self.group[0]}:{self.group[1]} "
            f"next={self._next}>"
        )

    @property
    def next_sequence(self) -> int:
        """The number of the next message to be sent."""
        return self._next

    @property
    def ended(self) -> bool:
        """Whether End of Session has been sent."""
        return self._ended

    @property
    def address(self) -> Address:
        """Where the datagrams come from."""
        assert self._sock is not None
        host, port = self._sock.getsockname()[:2]
        return host, port

    def _start(self) -> None:
        self._handle = self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._handle = None
        sock = self._sock
        if sock is None:
            return
        store = self.store
        durable = store.durable_count
        now = self._loop.time()
        budget = self.burst
        blocked = False
        sent_before = self.packets_sent
        field = self._field
        dest = self.group
        maxp = self.max_payload
        while self._next <= durable and budget and not blocked:
            first = self._next
            messages = store.read(first, min(durable - first + 1, _READ_CHUNK))
            i = 0
            end = len(messages)
            while i < end and budget:
                datagram, n = pack_downstream(field, first + i, messages, i, maxp)
                try:
                    sock.sendto(datagram, dest)
                except OSError as exc:
                    blocked = True
                    self._send_failed(exc)
                    break
                self.sends_ok += 1
                i += n
                budget -= 1
            self._next = first + i
            self.messages_sent += i
            if i < end:
                break
        self.packets_sent += self.burst - budget
        if self.packets_sent > sent_before:
            self._last_sent = now
            self.last_error = None
        elif self._ended:
            if now >= self._last_sent + _END_INTERVAL:
                self._send_marker(end_of_session(field, self._next), now)
        elif now >= self._last_sent + self.heartbeat_interval:
            self._send_marker(encode_downstream(field, self._next, ()), now)
            self.heartbeats_sent += 1
        if self._ended and now >= self._end_deadline and not self._done.done():
            self._done.set_result(None)  # lingered long enough, whatever is left
        if self._next <= durable and not blocked:
            self._handle = self._loop.call_soon(self._pump)
        else:
            self._handle = self._loop.call_later(self.tick, self._pump)

    def _send_failed(self, exc: OSError) -> None:
        if isinstance(exc, BlockingIOError | InterruptedError) or exc.errno in _TRANSIENT:
            self.send_retries += 1  # the network is full: again next tick
            return
        if self.send_failures == 0:
            log.warning(
                "cannot send to the MoldUDP64 group %s:%s: %s (is there a route for multicast "
                "to it? give the interface to send from, --interface ADDR); retrying, and "
                "counting the failures",
                *self.group,
                exc.strerror or exc,
            )
        self.send_failures += 1
        self.last_error = exc

    @property
    def failing(self) -> bool:
        """Whether the last send failed for a reason other than a full buffer."""
        return self.last_error is not None

    def _send_marker(self, datagram: bytes, now: float) -> None:
        assert self._sock is not None
        try:
            self._sock.sendto(datagram, self.group)
        except OSError as exc:
            self._send_failed(exc)
            return
        self.sends_ok += 1
        self.last_error = None
        self._last_sent = now

    async def end_session(self, linger: float = 5.0) -> None:
        """Send everything the store holds, then End of Session packets (at the next
        sequence number) for `linger` seconds; returns then. Re-requests are answered
        meanwhile by the re-request server, which the caller closes afterwards.

        It never waits longer than about twice `linger`: sending what is left gets at most
        `linger` seconds, and none while sends fail (no route to the group): what was not
        sent then is for listeners to ask for."""
        if not self._ended:
            self.store.flush()
            deadline = self._loop.time() + linger
            while (
                self._next <= self.store.durable_count
                and self._sock is not None
                and not self.failing
                and self._loop.time() < deadline
            ):
                await asyncio.sleep(self.tick)
            self._ended = True
            self._end_deadline = self._loop.time() + linger
            self._last_sent = -1e9  # the first End of Session at once
        await asyncio.shield(self._done)

    async def close(self) -> None:
        """Stop sending (without End of Session: see `end_session`)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if not self._done.done():
            self._done.set_result(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class TransmitterOptions(TypedDict, total=False):
    """`Transmitter`'s keyword arguments, as `transmit()` takes them."""

    session_id: str | None
    interface: str | None
    ttl: int
    loopback: bool
    max_payload: int
    heartbeat_interval: float
    tick: float
    burst: int
    first: int | None


async def transmit(
    store: MessageStore, group: Address, **options: Unpack[TransmitterOptions]
) -> Transmitter:
    """Start transmitting `store` on multicast `group` ((address, port)).

    `options` are `Transmitter`'s: `session_id` defaults to the store's; `first` is the first
    number sent (default: the next one appended); `max_payload`, `heartbeat_interval`,
    `tick`, `burst` as described above. Multicast options: `interface` (the address of
    the interface to send from; None: the system's choice), `ttl` (0: this host only, 1:
    this network), `loopback` (listeners on this host receive it too).
    """
    transmitter = Transmitter(store, group, **options)
    transmitter._start()
    log.info("transmitting session %s on %s:%s", transmitter.session_id, *transmitter.group)
    return transmitter
