"""The replicated log's format, and the fold every gateway applies to it.

Layer 4 (integrations on the public API). A feed is one JetStream stream with one subject.
Each entry is one of (header ``Soup-Entry``):

- ``session``: the first entry of the stream; ``Soup-Session`` is the SoupBinTCP session id
  every gateway answers with, and its writer (``Soup-Writer``) holds the log from there.
- ``claim``: a writer takes the log over; from here on only its entries count.
- ``batch``: Sequenced Data frames exactly as on the wire, back to back (``Soup-Count`` of
  them), numbered from ``Soup-First``.
- ``alive``: the writer is alive but had nothing to say (so that a second one stays out).
- ``release``: the writer stopped cleanly; the next may claim at once.
- ``end``: End of Session.

Every append carries ``Nats-Expected-Last-Sequence``, so JetStream refuses an append that
was not made with the whole log in view: two writers cannot both extend the log. On top of
that, `LogState.apply` — the same pure function on every gateway — counts a batch only if
its writer holds the log and it continues the numbering exactly (``Soup-First`` is the next
number). An entry that fails either test (a fenced writer's leftover, a resent copy) is
skipped by every gateway alike. So SoupBinTCP message *n* is the same bytes everywhere.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from .._errors import SoupBinTCPError

__all__ = [
    "CacheUnwritable",
    "EntryKind",
    "LogAddress",
    "LogError",
    "LogState",
    "LogUnavailable",
    "WriterFenced",
    "parse_log_address",
]

ENTRY: Final = "Soup-Entry"
WRITER: Final = "Soup-Writer"
SESSION: Final = "Soup-Session"
FIRST: Final = "Soup-First"
COUNT: Final = "Soup-Count"
EXPECTED_LAST: Final = "Nats-Expected-Last-Sequence"
#: JetStream's error code for a failed Nats-Expected-Last-Sequence check.
WRONG_LAST_SEQUENCE: Final = 10071


class LogError(SoupBinTCPError):
    """The replicated log cannot do what was asked (a stream that is not a feed, a session
    that does not match)."""


class LogUnavailable(LogError):
    """No log node answers."""


class CacheUnwritable(LogError):
    """The gateway's cache refused a write (a full disk): the follower keeps the entry and
    tries it again later."""


class WriterFenced(LogError):
    """Another writer holds the log: this one must stop (the log never forks)."""


class EntryKind(enum.Enum):
    """What one entry of the log is: the session's start, a writer's claim or heartbeat
    (alive) or release, a batch of messages, or the end of the session."""

    SESSION = "session"
    CLAIM = "claim"
    BATCH = "batch"
    ALIVE = "alive"
    RELEASE = "release"
    END = "end"


@dataclass(frozen=True)
class LogAddress:
    """Where a feed's log is: the nodes to try (the client learns the others from the
    cluster) and the stream."""

    servers: tuple[str, ...]
    stream: str

    @property
    def subject(self) -> str:
        """The NATS subject the stream's entries are published on."""
        return f"soupbintcp.{self.stream}"

    def __str__(self) -> str:
        hosts = ",".join(s.removeprefix("nats://") for s in self.servers)
        return f"nats://{hosts}/{self.stream}"


_STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse_log_address(url: str) -> LogAddress:
    """``nats://HOST:PORT[,HOST:PORT...]/STREAM`` (``tls://`` for TLS to the log;
    ``user:password@`` before a host as NATS itself takes it)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("nats", "tls"):
        raise ValueError(f"{url!r} is not nats://HOST:PORT[,HOST:PORT...]/STREAM")
    hosts, slash, stream = rest.partition("/")
    if not slash or not _STREAM_NAME.match(stream):
        raise ValueError(f"{url!r} names no stream: nats://HOST:PORT/STREAM (letters, digits, _-)")
    servers = tuple(f"{scheme}://{h.strip()}" for h in hosts.split(",") if h.strip())
    if not servers:
        raise ValueError(f"{url!r} names no log node")
    return LogAddress(servers, stream)


@dataclass(frozen=True)
class Batch:
    first: int
    count: int
    frames: bytes


@dataclass
class LogState:
    """What the log says so far: the fold of its entries 1..`log_seq`.

    `count` is how many SoupBinTCP messages the valid batches hold; a batch is valid when
    its writer holds the log (`holder`) and its first number is `count + 1`.
    """

    session_id: str | None = None
    holder: str | None = None
    count: int = 0
    log_seq: int = 0
    ended: bool = False
    skipped: int = 0
    #: The writer of each of the last entries, for `describe`.
    last_writer: str | None = field(default=None, compare=False)

    def apply(self, seq: int, headers: Mapping[str, str] | None, data: bytes) -> Batch | None:
        """Fold entry `seq` in; return the batch to append to the cache, if it is one that
        counts. Entries must come in order, each once (`LogError` otherwise)."""
        if seq != self.log_seq + 1:
            raise LogError(f"log entry {seq} where {self.log_seq + 1} was due")
        self.log_seq = seq
        headers = headers or {}
        kind = headers.get(ENTRY)
        writer = headers.get(WRITER)
        self.last_writer = writer
        if kind == EntryKind.SESSION.value and self.session_id is None:
            self.session_id = headers.get(SESSION) or None
            self.holder = writer
            return None
        if self.session_id is None or self.ended:
            self.skipped += 1
            return None
        if kind == EntryKind.CLAIM.value:
            self.holder = writer
            return None
        if writer is None or writer != self.holder:
            self.skipped += 1
            return None
        if kind == EntryKind.RELEASE.value:
            self.holder = None
        elif kind == EntryKind.END.value:
            self.ended = True
        elif kind == EntryKind.BATCH.value:
            try:
                first, count = int(headers[FIRST]), int(headers[COUNT])
            except (KeyError, ValueError):
                self.skipped += 1
                return None
            if first != self.count + 1 or count < 1:
                self.skipped += 1
                return None
            self.count += count
            return Batch(first, count, data)
        return None


def describe_writer(token: str | None) -> str:
    """A writer token (``host:pid:random``) as a person reads it."""
    if not token:
        return "no writer"
    host, _, rest = token.partition(":")
    pid, _, _ = rest.partition(":")
    return f"writer {token} (host {host}, pid {pid})" if pid else f"writer {token}"
