"""The asyncio MoldUDP64 re-request server: answers listeners' Request packets from the store.

Layer 3 (drivers). Anyone can send it a datagram, and a 20-byte request can trigger a
1,400-byte answer, so everything it does is bounded:

- an answer is one datagram (what fits in `max_payload`), sent from the socket the request
  came in on to the address it came from (as Nassau does);
- each source (address and port) has a token bucket of `rate` answers per second (bursts of
  `burst`); by default 10,000/s, so a listener back-filling a whole session is not starved;
- the whole server reads at most `max_requests` datagrams per second: past that it stops
  reading until the next second begins and the kernel drops the excess, so a flood costs a
  bounded share of the event loop and never starves the transmitter on it;
- requests for other sessions, for messages that do not exist yet, and malformed ones are
  ignored and counted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Final, Self, TypedDict, Unpack

from .._errors import LocalProtocolError
from .._wire._moldudp64 import (
    DEFAULT_MAX_PAYLOAD,
    HEADER_LENGTH,
    REQUEST_LENGTH,
    pack_downstream,
    session_field,
    unpack_header,
)
from ..store import MessageStore
from ._sockets import Address, server_socket
from ._transmitter import session_of

__all__ = ["RequestServer", "RequestServerOptions", "serve_requests"]

log = logging.getLogger("soupbintcp.moldudp64")

#: Datagrams read per readable event before the loop gets its turn back.
_READS_PER_EVENT: Final = 64
#: Source buckets kept; past it the idle ones are forgotten (a spoofed flood of sources
#: cannot grow memory without bound).
_MAX_SOURCES: Final = 65536
_RECV_SIZE: Final = 2048


class RequestServer:
    """Answers Request packets for one session from `store`. Create it with
    `serve_requests()`. The counters say what it did with what it received."""

    def __init__(
        self,
        store: MessageStore,
        address: Address,
        *,
        session_id: str | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        rate: float = 10_000.0,
        burst: int = 1_000,
        max_requests: int = 20_000,
    ) -> None:
        if rate <= 0 or burst < 1 or max_requests < 1:
            raise LocalProtocolError("rate, burst and max_requests must be positive")
        if not HEADER_LENGTH + 2 < max_payload <= 65507:
            raise LocalProtocolError(f"max_payload must be 23..65507 bytes, not {max_payload}")
        self._loop = asyncio.get_running_loop()
        self.store = store
        self.session_id = session_of(store, session_id)
        self._field = session_field(self.session_id)
        self._stripped = self._field.strip(b" ")
        self.max_payload = max_payload
        self.rate = rate
        self.burst = burst
        self.max_requests = max_requests
        self._sock: socket.socket | None = server_socket(address)
        self._buckets: dict[Address, list[float]] = {}  # source -> [tokens, when]
        self._window = 0.0  # start of the current second of the global budget
        self._window_reads = 0
        self._resume: asyncio.TimerHandle | None = None
        self.requests = 0  # datagrams read
        self.answers = 0
        self.messages_answered = 0
        self.malformed = 0
        self.other_session = 0
        self.not_yet = 0  # for messages that do not exist (yet, or before the store's first)
        self.rate_limited = 0
        self.send_failed = 0
        self.paused = 0  # times the global budget stopped reading

    def __repr__(self) -> str:
        host, port = self.address
        return f"<RequestServer session={self.session_id!r} on {host}:{port}>"

    @property
    def address(self) -> Address:
        """The (host, port) the re-request server listens on."""
        assert self._sock is not None
        host, port = self._sock.getsockname()[:2]
        return host, port

    def _start(self) -> None:
        assert self._sock is not None
        self._loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        now = self._loop.time()
        if now >= self._window + 1.0:
            self._window = now
            self._window_reads = 0
        reads = min(_READS_PER_EVENT, self.max_requests - self._window_reads)
        for _ in range(reads):
            try:
                data, source = sock.recvfrom(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                log.debug("re-request socket: %s", exc)
                continue
            self._window_reads += 1
            self.requests += 1
            self._request(sock, data, source, now)
        if self._window_reads >= self.max_requests and self._resume is None:
            # The budget of this second is spent: the rest waits in (or overflows) the
            # kernel's buffer instead of taking the loop from the transmitter.
            self.paused += 1
            self._loop.remove_reader(sock.fileno())
            self._resume = self._loop.call_at(self._window + 1.0, self._resume_reading)

    def _resume_reading(self) -> None:
        self._resume = None
        if self._sock is not None:
            self._loop.add_reader(self._sock.fileno(), self._readable)

    def _request(self, sock: socket.socket, data: bytes, source: Address, now: float) -> None:
        if len(data) != REQUEST_LENGTH:
            self.malformed += 1
            return
        raw, sequence, count = unpack_header(data)
        if raw != self._field and raw.strip(b" ") != self._stripped:
            self.other_session += 1
            return
        if sequence == 0 or count == 0:
            self.malformed += 1  # messages are numbered from 1; nothing asked for
            return
        store = self.store
        if sequence > store.durable_count or sequence < getattr(store, "first_sequence", 1):
            # Not there (yet), or before a journal that starts later (a capture's).
            self.not_yet += 1
            return
        if not self._take_token(source, now):
            self.rate_limited += 1
            return
        # Frames are one byte longer than blocks (their type byte), so what read_frames
        # gives within the room always fits as blocks.
        _, n = store.read_frames(sequence, self.max_payload - HEADER_LENGTH)
        messages = store.read(sequence, min(n, count))
        datagram, n = pack_downstream(self._field, sequence, messages, 0, self.max_payload)
        try:
            sock.sendto(datagram, source)
        except OSError:
            self.send_failed += 1  # the listener asks again
            return
        self.answers += 1
        self.messages_answered += n

    def _take_token(self, source: Address, now: float) -> bool:
        buckets = self._buckets
        bucket = buckets.get(source)
        if bucket is None:
            if len(buckets) >= _MAX_SOURCES:
                self._forget_idle(now)
            buckets[source] = [self.burst - 1.0, now]
            return True
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets that have refilled (their sources have been quiet)."""
        full = self.burst / self.rate
        buckets = self._buckets
        for source in [s for s, b in buckets.items() if now - b[1] >= full]:
            del buckets[source]
        if len(buckets) >= _MAX_SOURCES:
            buckets.clear()  # all busy: a spoofed flood; the global budget still holds

    async def close(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        sock = self._sock
        if sock is not None:
            self._sock = None
            self._loop.remove_reader(sock.fileno())
            sock.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class RequestServerOptions(TypedDict, total=False):
    """`RequestServer`'s keyword arguments, as `serve_requests()` takes them."""

    session_id: str | None
    max_payload: int
    rate: float
    burst: int
    max_requests: int


async def serve_requests(
    store: MessageStore, address: Address, **options: Unpack[RequestServerOptions]
) -> RequestServer:
    """Answer MoldUDP64 requests on `address` ((host, port); port 0 picks a free one) from
    `store`. `rate`/`burst`: answers per second per source; `max_requests`: datagrams read
    per second in all."""
    server = RequestServer(store, address, **options)
    server._start()
    log.info("answering requests for session %s on %s:%s", server.session_id, *server.address)
    return server
