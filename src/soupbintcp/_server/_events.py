"""What happens to the server's connections and session, as typed events, and their dispatch.

Layer 3 (server driver). Every point where something happens to a connection (admitted or
refused, logged in or rejected, timed out, stalled, a protocol error, closed) or to the
session (End of Session sent, the store flushed or failing) makes one `ServerEvent`. The
`EventDispatcher` then does three things with it, always in this order: counts it in the
server's `ServerStats` (what metrics read), writes the server's log line for it (made from
the event, so the log and the events never disagree), and hands it to the application's
`on_event` callback and to every `Server.events()` iterator (see `_dispatch`). Events happen
per connection and per flush, never per message, so none of this is on the publishing path.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import ClassVar, Final, TypedDict

from .._errors import RejectReason
from ._config import Address

__all__ = [
    "ConnectionAccepted",
    "ConnectionClosed",
    "ConnectionEvent",
    "ConnectionFields",
    "ConnectionRefused",
    "EndOfSessionSent",
    "HandlerFailed",
    "HeartbeatTimedOut",
    "LoggedIn",
    "LoggedOut",
    "LoginRefused",
    "LoginTimedOut",
    "ProtocolViolation",
    "ServerEvent",
    "SessionEnd",
    "SessionStarted",
    "Stalled",
    "StoreFlushFailed",
    "StoreFlushed",
    "TLSHandshakeFailed",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerEvent:
    """Something that happened to the server. `time` is wall-clock (`time.time()`) and is
    left out of comparisons, so a test can compare an event stream with an expected list."""

    LEVEL: ClassVar[int] = logging.DEBUG
    time: float = field(default_factory=time.time, compare=False, repr=False)

    def log_level(self) -> int:
        """The level of the server's log line for this event."""
        return self.LEVEL

    def describe(self) -> str:
        """The server's log line for this event."""
        return type(self).__name__


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionEvent(ServerEvent):
    """Something that happened to one connection: `connection` numbers the connections of
    one server from 1; `peer` is the client's (host, port); `user` its username once its
    Login Request arrived ("" before)."""

    connection: int
    peer: Address
    user: str = ""

    @property
    def who(self) -> str:
        """The client as log lines name it: address, and username once known."""
        host, port = self.peer
        return f"{host}:{port} ({self.user})" if self.user else f"{host}:{port}"


class ConnectionFields(TypedDict):
    """The fields every `ConnectionEvent` has, as the server fills them in."""

    connection: int
    peer: Address
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionAccepted(ConnectionEvent):
    """Admitted under the caps: it now has `login_timeout` to log in."""

    def describe(self) -> str:
        return f"connection {self.who} accepted"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionRefused(ServerEvent):
    """Refused at admission: `cap` names the limit that was full (`max_connections`,
    `max_pending_logins`, ...) or `closing` (the server is closing)."""

    LEVEL: ClassVar[int] = logging.WARNING
    peer: Address
    cap: str
    detail: str

    def describe(self) -> str:
        host, port = self.peer
        return f"connection {host}:{port} refused: {self.detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSHandshakeFailed(ServerEvent):
    """A TLS client that did not complete its handshake (it was never a connection)."""

    LEVEL: ClassVar[int] = logging.WARNING
    peer: Address
    detail: str

    def describe(self) -> str:
        host, port = self.peer
        return f"connection {host}:{port} closed: TLS handshake failed: {self.detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedIn(ConnectionEvent):
    """Login Accepted: `requested_sequence` is what the Login Request asked for (0: only new
    messages), `sequence` the next one the server sends, `head` the stream's last number."""

    LEVEL: ClassVar[int] = logging.INFO
    session: str
    requested_sequence: int
    sequence: int
    head: int

    def describe(self) -> str:
        return (
            f"connection {self.peer[0]}:{self.peer[1]} logged in as {self.user} to session "
            f"{self.session} at sequence {self.sequence} (head {self.head})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginRejectedSent(ConnectionEvent):
    """Login Rejected went to this client, with `reason` ("A" not authorized, "S" session not
    available). Was `LoginRefused`."""

    reason: RejectReason
    detail: str

    def describe(self) -> str:
        return f"connection {self.who} login rejected: {self.detail} ({self.reason.value!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedOut(ConnectionEvent):
    """The client sent a Logout Request."""

    def describe(self) -> str:
        return f"connection {self.who} logged out"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginTimedOut(ConnectionEvent):
    """No Login Request (or no answer to it) within `login_timeout`."""

    detail: str

    def describe(self) -> str:
        return f"connection {self.who} login timeout: {self.detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatTimedOut(ConnectionEvent):
    """A logged-in client fell silent for longer than its heartbeat timeout."""

    detail: str

    def describe(self) -> str:
        return f"connection {self.who} heartbeat timeout: {self.detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Stalled(ConnectionEvent):
    """A client that read nothing for `stall_timeout`: it is dropped. `buffered` is what
    waited for it in the server's write buffer."""

    seconds: float
    buffered: int

    def describe(self) -> str:
        return (
            f"connection {self.who} stalled for {self.seconds:.3g} s with "
            f"{self.buffered} bytes waiting; dropping it"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolViolation(ConnectionEvent):
    """The client broke the protocol: `kind` is one of `PROTOCOL_FAULTS`."""

    kind: str
    detail: str

    def describe(self) -> str:
        return f"connection {self.who} protocol error ({self.kind}): {self.detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerFailed(ConnectionEvent):
    """The application's `what` (on_unsequenced, authenticate, user_store) raised `error`
    for this connection, which is then closed. Logged with the traceback. With
    `session_ended` (on_unsequenced, once the session has ended) it is not cut off: it still
    gets the rest of its stream and End of Session, and what it sends is dropped."""

    LEVEL: ClassVar[int] = logging.ERROR
    what: str
    error: BaseException = field(compare=False)
    session_ended: bool = False

    def describe(self) -> str:
        if self.session_ended:
            return (
                f"{self.what} raised for {self.who} after its session ended; it still gets "
                "End of Session, and what it sends is dropped"
            )
        return f"{self.what} raised for {self.who}; closing that connection"


@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfSessionSent(ConnectionEvent):
    """End of Session went to this client after message `sequence - 1` (the Omega dialect,
    which has no such packet, closes the connection instead)."""

    session: str
    sequence: int

    def describe(self) -> str:
        return f"connection {self.who} sent End of Session at sequence {self.sequence}"


#: What `ConnectionClosed.reason` may be: a short, stable name per way a connection ends.
CONNECTION_CLOSED_REASONS: Final = (
    "refused",  # not admitted (see ConnectionRefused): never in a ConnectionClosed
    "logout",
    "closed_by_client",
    "truncated_packet",
    "connection_lost",
    "login_rejected",
    "login_throttled",  # too many failed logins for this user from this address: not checked
    "login_timeout",
    "heartbeat_timeout",
    "stalled",
    "protocol_error",
    "handler_failed",
    "replay_failed",
    "journal_corrupt",  # its replay reached a record of the journal that failed its check
    "end_of_session",
    "server_closing",  # closed before login, or before draining was asked for
    "drained",  # the server closed it once everything was sent (close() drains)
    "drain_timeout",  # the server was closing and it had not received everything in time
    "application",
    "evicted",  # closed before login to admit a newer connection
    "prelogin_limit",  # sent too much before logging in
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed(ConnectionEvent):
    """The connection is gone. `reason` is one of `CONNECTION_CLOSED_REASONS`, `detail` says it
    for a person; the figures are the connection's at the end (`session` "" and the figures 0 for
    one that never logged in). `up` is seconds since it was accepted."""

    reason: str
    detail: str
    logged_in: bool
    session: str = ""
    messages_sent: int = 0
    bytes_sent: int = 0
    next_sequence: int = 0
    lag: int = 0
    up: float = field(default=0.0, compare=False)
    level: int = field(default=logging.INFO, compare=False, repr=False)

    def log_level(self) -> int:
        return self.level

    def describe(self) -> str:
        if not self.logged_in:
            return f"connection {self.who} closed before login: {self.detail}"
        return (
            f"connection {self.who} closed: {self.detail}; session {self.session}, "
            f"{self.messages_sent} messages / {self.bytes_sent} bytes sent, "
            f"next sequence {self.next_sequence}, lag {self.lag}, up {self.up:.1f} s"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStarted(ServerEvent):
    """The server serves `session` from now on (at `serve()` and at `start_session()`)."""

    LEVEL: ClassVar[int] = logging.INFO
    session: str

    def describe(self) -> str:
        return f"session {self.session} started"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnding(ServerEvent):
    """The session is ending (`end_session()`): End of Session goes to every client once it
    has all the messages, `head` of them in the shared feed (0 with per-user streams); each
    one is an `EndOfSessionSent`. Was `SessionEnd`."""

    LEVEL: ClassVar[int] = logging.INFO
    session: str
    head: int

    def describe(self) -> str:
        return f"session {self.session} ended"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreFlushed(ServerEvent):
    """A stream's store was flushed: `durable` messages are now held, in `seconds`.
    `user` names a per-user stream (None: the shared feed)."""

    session: str
    user: str | None
    durable: int
    seconds: float = field(compare=False)

    def describe(self) -> str:
        name = "the feed" if self.user is None else f"user {self.user!r}"
        return f"store of {name} flushed to {self.durable} in {self.seconds * 1e3:.3g} ms"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreFlushFailed(ServerEvent):
    """Writing to a stream's store raised `error`: a flush (the server retries) or, with
    `publishing`, an append (`publish` raised it to its caller). Logged with the traceback,
    or in one line for an error of the operating system (a full disk)."""

    LEVEL: ClassVar[int] = logging.ERROR
    session: str
    user: str | None
    error: BaseException = field(compare=False)
    publishing: bool = False

    def describe(self) -> str:
        name = "the feed" if self.user is None else f"user {self.user!r}"
        if self.publishing:
            return (
                f"writing to the store of {name} (session {self.session}) failed: "
                f"{self.error}; publish raised it, nothing was appended"
            )
        return (
            f"flushing the store of {name} (session {self.session}) failed: {self.error}; retrying"
        )


#: What `ProtocolViolation.kind` may be.
PROTOCOL_FAULTS: Final = (
    "empty packet",
    "packet too long",
    "unknown packet type",
    "unexpected packet",
    "malformed packet",
)


def refusal_cap(detail: str) -> str:
    """The cap an admission refusal names: "... (max_connections 25)" is `max_connections`;
    "the server is closing" is `closing`."""
    match = re.search(r"\((max_\w+)", detail)
    if match is not None:
        return match.group(1)
    return "closing" if "closing" in detail else "other"


def protocol_fault(detail: str) -> str:
    """The kind of protocol fault an error message from the decoder or the session names."""
    if "packet length 0" in detail:
        return "empty packet"
    if "exceeds the limit" in detail:
        return "packet too long"
    if "unexpected packet type" in detail:
        return "unknown packet type"
    if "received in state" in detail:
        return "unexpected packet"
    return "malformed packet"


# The 0.1 names (issue 23 renamed them), kept for code written against them.
LoginRefused = LoginRejectedSent
SessionEnd = SessionEnding
CLOSE_REASONS = CONNECTION_CLOSED_REASONS
