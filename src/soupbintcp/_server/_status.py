"""The server's figures: counters kept from its events, and a snapshot of its state.

Layer 3 (server driver). `ServerStats` counts the events the server emits (logins by result,
disconnects by reason, refusals by cap, flush durations): per connection and per flush,
never per message. `Server.status()` reads the rest (each connection's lag, send buffer and
figures, each stream's last and durable numbers) when asked, into a `ServerStatus`: the one
thing metrics, status lines and tests read, taken on the event loop's thread in one go.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ._config import Address
from ._events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionRefused,
    EndOfSessionSent,
    LoggedIn,
    LoginRejectedSent,
    ProtocolViolation,
    ServerEvent,
    StoreFlushed,
    StoreFlushFailed,
    TLSHandshakeFailed,
)

if TYPE_CHECKING:
    from ._stream import Stream

__all__ = [
    "FLUSH_BUCKETS",
    "ClientStatus",
    "DurationHistogram",
    "ServerStats",
    "ServerStatus",
    "StreamStatus",
    "status_line",
    "stream_status",
]

#: Upper bounds (seconds) of the flush-duration histogram's buckets; +Inf follows.
FLUSH_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


class DurationHistogram:
    """Durations in fixed buckets, as Prometheus histograms count them."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = FLUSH_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: over the highest bound
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.count += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or under it), ending with (inf, count)."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def copy(self) -> DurationHistogram:
        other = DurationHistogram(self.bounds)
        other.counts = list(self.counts)
        other.count = self.count
        other.sum = self.sum
        return other


class ServerStats:
    """Counters made from the server's events since it started (see `ServerEvent`).

    `logins`: by result, "accepted" or the reject reason's name ("not_authorized",
    "session_not_available"); `disconnects`: by `ConnectionClosed.reason`; `refusals`: by the
    cap that refused a connection at admission; `protocol_errors`: by kind. The messages and
    bytes sent by connections that closed are kept here so that totals never go back."""

    __slots__ = ("accepted", "closed_bytes_sent", "closed_messages_sent", "disconnects",
                 "end_of_session_sent", "flush", "flush_failures", "logins", "protocol_errors",
                 "refusals", "tls_failures")  # fmt: skip

    def __init__(self) -> None:
        self.accepted = 0
        self.refusals: Counter[str] = Counter()
        self.logins: Counter[str] = Counter()
        self.disconnects: Counter[str] = Counter()
        self.protocol_errors: Counter[str] = Counter()
        self.tls_failures = 0
        self.end_of_session_sent = 0
        self.closed_messages_sent = 0
        self.closed_bytes_sent = 0
        self.flush = DurationHistogram()
        self.flush_failures = 0

    def count(self, event: ServerEvent) -> None:
        counter = _COUNTERS.get(type(event))
        if counter is not None:
            counter(self, event)

    def copy(self) -> ServerStats:
        """A copy that the server's later events do not change."""
        other = ServerStats()
        for name in self.__slots__:
            value = getattr(self, name)
            setattr(other, name, value.copy() if hasattr(value, "copy") else value)
        return other


def _accepted(stats: ServerStats, event: ServerEvent) -> None:
    stats.accepted += 1


def _refused(stats: ServerStats, event: ServerEvent) -> None:
    assert isinstance(event, ConnectionRefused)
    stats.refusals[event.cap] += 1


def _logged_in(stats: ServerStats, event: ServerEvent) -> None:
    stats.logins["accepted"] += 1


def _login_refused(stats: ServerStats, event: ServerEvent) -> None:
    assert isinstance(event, LoginRejectedSent)
    stats.logins[event.reason.name.lower()] += 1


def _closed(stats: ServerStats, event: ServerEvent) -> None:
    assert isinstance(event, ConnectionClosed)
    stats.disconnects[event.reason] += 1
    stats.closed_messages_sent += event.messages_sent
    stats.closed_bytes_sent += event.bytes_sent


def _violation(stats: ServerStats, event: ServerEvent) -> None:
    assert isinstance(event, ProtocolViolation)
    stats.protocol_errors[event.kind] += 1


def _tls_failed(stats: ServerStats, event: ServerEvent) -> None:
    stats.tls_failures += 1


def _end_sent(stats: ServerStats, event: ServerEvent) -> None:
    stats.end_of_session_sent += 1


def _flushed(stats: ServerStats, event: ServerEvent) -> None:
    assert isinstance(event, StoreFlushed)
    stats.flush.observe(event.seconds)


def _flush_failed(stats: ServerStats, event: ServerEvent) -> None:
    stats.flush_failures += 1


_COUNTERS: Final[dict[type[ServerEvent], Callable[[ServerStats, ServerEvent], None]]] = {
    ConnectionAccepted: _accepted,
    ConnectionRefused: _refused,
    LoggedIn: _logged_in,
    LoginRejectedSent: _login_refused,
    ConnectionClosed: _closed,
    ProtocolViolation: _violation,
    TLSHandshakeFailed: _tls_failed,
    EndOfSessionSent: _end_sent,
    StoreFlushed: _flushed,
    StoreFlushFailed: _flush_failed,
}


@dataclass(frozen=True, slots=True)
class ClientStatus:
    """One open connection, when the status was taken. `lag`: messages the store holds
    durably that it has not been sent; `send_buffer`: bytes written to it and not yet taken
    by the kernel; `next_sequence` 0 and the figures 0 before login."""

    connection: int
    peer: Address
    user: str
    session: str
    logged_in: bool
    next_sequence: int
    lag: int
    send_buffer: int
    messages_sent: int
    bytes_sent: int
    paused: bool
    up: float


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """One stream: `last` is the store's last sequence number (`count`), `durable` the last
    it holds durably (`durable_count`), `head` the last released to clients. `user` names
    a per-user stream (None: the shared feed). `corrupt_from` is the sequence number from
    which its journal failed a check (0: none found), when a replay read it or when the
    store's check ahead found it (`FileStore.corruption`), the earlier of the two: nothing
    from there on is sent."""

    session: str
    user: str | None
    last: int
    durable: int
    head: int
    followers: int
    ended: bool
    corrupt_from: int = 0


def stream_status(stream: Stream) -> StreamStatus:
    store = stream.store
    return StreamStatus(
        session=stream.session_id,
        user=stream.user,
        last=store.count,
        durable=store.durable_count,
        head=stream.head,
        followers=len(stream.connections),
        ended=stream.ended,
        corrupt_from=corrupt_from(stream),
    )


def corrupt_from(stream: Stream) -> int:
    """Where the stream's journal is damaged from (0: nowhere found yet)."""
    found = (stream.corrupt, getattr(stream.store, "corruption", None))  # only FileStore's
    return min((error.sequence for error in found if error is not None), default=0)


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """The whole server at one moment (`Server.status()`); `time` is the loop's clock.
    `messages_sent` / `bytes_sent` add the open connections' figures to those of the
    connections that closed (they never go back)."""

    time: float
    session: str
    clients: tuple[ClientStatus, ...]
    streams: tuple[StreamStatus, ...]
    pending_logins: int
    queued_bytes: int
    messages_sent: int
    bytes_sent: int
    stats: ServerStats

    @classmethod
    def of(
        cls,
        now: float,
        session: str,
        clients: list[ClientStatus],
        streams: list[StreamStatus],
        pending_logins: int,
        queued_bytes: int,
        stats: ServerStats,
    ) -> ServerStatus:
        """The status made of these figures (a copy of `stats`), with the totals."""
        copy = stats.copy()
        return cls(
            time=now,
            session=session,
            clients=tuple(clients),
            streams=tuple(streams),
            pending_logins=pending_logins,
            queued_bytes=queued_bytes,
            messages_sent=copy.closed_messages_sent + sum(c.messages_sent for c in clients),
            bytes_sent=copy.closed_bytes_sent + sum(c.bytes_sent for c in clients),
            stats=copy,
        )

    @property
    def logged_in(self) -> tuple[ClientStatus, ...]:
        """The clients that have logged in (the others await login)."""
        return tuple(client for client in self.clients if client.logged_in)

    @property
    def worst(self) -> ClientStatus | None:
        """The logged-in client furthest behind, if any."""
        return max(self.logged_in, key=lambda client: client.lag, default=None)


def status_line(current: ServerStatus, previous: ServerStatus | None = None) -> str:
    """One line for a log: the clients, the rates since `previous` (a status taken one
    interval before), the journal and the worst lag."""
    elapsed = current.time - previous.time if previous is not None else 0.0

    def rate(now: int, then: int) -> float:
        return (now - then) / elapsed if elapsed > 0 else 0.0

    clients = current.logged_in
    sent = rate(current.messages_sent, previous.messages_sent) if previous else 0.0
    sent_bytes = rate(current.bytes_sent, previous.bytes_sent) if previous else 0.0
    last = sum(stream.last for stream in current.streams)
    durable = sum(stream.durable for stream in current.streams)
    before = sum(stream.last for stream in previous.streams) if previous else last
    parts = [
        f"{len(clients)} clients ({current.pending_logins} awaiting login)",
        f"sending {sent:,.0f} msg/s ({sent_bytes / 1e6:,.1f} MB/s)",
        f"journal at {last:,} (durable {durable:,}, {rate(last, before):+,.0f} msg/s)",
    ]
    worst = current.worst
    if worst is not None:
        host, port = worst.peer
        parts.append(f"worst lag {worst.lag:,} ({worst.user} at {host}:{port})")
    return "status: " + ", ".join(parts)
