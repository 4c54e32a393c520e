"""The options of `serve()`, checked once, and the session ids it may serve.

Layer 3 (server driver), no I/O. Everything else in the server reads its settings from one
frozen `ServerConfig`; nothing here changes while the server runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from .._errors import ConfigurationError
from .._wire._framing import Dialect
from .._wire._packets import LoginAccepted
from ..store import MessageStore
from ._auth import Authenticate, Credentials

if TYPE_CHECKING:
    from ._connection import Connection
    from ._events import ServerEvent

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_PENDING_LOGINS",
    "DEFAULT_REPLAY_CHUNK",
    "DEFAULT_WRITE_BUFFER_HIGH",
    "Address",
    "OnEvent",
    "OnUnsequenced",
    "ServerConfig",
    "UserStoreFactory",
    "session_id_for",
]

Address = tuple[str, int]
#: `on_unsequenced(connection, data)`: called with each Unsequenced Data packet a logged-in
#: client sends, in order per connection. May be a coroutine function.
OnUnsequenced = Callable[["Connection", bytes], Awaitable[None] | None]
#: `on_event(event)`: called with every `ServerEvent` (see `_events`). May be a coroutine
#: function: its calls are then awaited one after the other, in order.
OnEvent = Callable[["ServerEvent"], Awaitable[None] | None]
#: `user_store(username) -> MessageStore`: the store of one user's stream (per-user mode).
UserStoreFactory = Callable[[str], MessageStore]

DEFAULT_WRITE_BUFFER_HIGH: Final = 256 * 1024
DEFAULT_REPLAY_CHUNK: Final = 64 * 1024
#: The memory budget of the defaults (issue 15): a connection whose client does not read
#: holds at most its write buffer's high water plus one more write (a fan-out batch or a
#: replay chunk, `max_fanout`), 512 KiB with the defaults, until `stall_timeout`: about
#: 640 KiB of memory at most with the allocator's overhead (measured in
#: tests/test_attack_memory.py), so `DEFAULT_MAX_CONNECTIONS` of them hold at most some
#: 1.25 GiB, within a 1.5 GiB budget.
DEFAULT_MAX_CONNECTIONS: Final = 2000
#: Connections awaiting login; when full, the oldest that has not sent a Login Request is
#: evicted for the new one. A burst of this many clients logging in at once all get in.
DEFAULT_MAX_PENDING_LOGINS: Final = 1024
#: The listen backlog: connections the kernel completes before the loop accepts them. At
#: 100, a burst of 500 logins lost SYNs and waited for retransmits (p50 1.2 s, some 30 s).
DEFAULT_BACKLOG: Final = 1024
#: How long a closing server lets its logged-in clients finish (replay to the end, End of
#: Session) before it cuts them off.
DEFAULT_DRAIN_TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What `serve()` was given, checked when made, plus the limits derived from it.

    Options out of range or in conflict raise `ConfigurationError` (a `ValueError`)."""

    credentials: Credentials | None
    authenticate: Authenticate | None
    on_unsequenced: OnUnsequenced | None
    heartbeat_interval: float
    client_heartbeat_timeout: float
    login_timeout: float
    stall_timeout: float | None
    flush_interval: float
    max_connections: int | None
    max_pending_logins: int | None
    max_packet_length: int
    dialect: Dialect
    write_buffer_high: int
    replay_chunk: int
    end_of_session_linger: float
    #: How long `close()` lets logged-in clients finish what they are sent.
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    on_event: OnEvent | None = None
    #: Fan-out batches bigger than this are read back from the store instead, so no
    #: connection's buffer grows past high water by more than one such batch.
    max_fanout: int = field(init=False)
    #: Unsequenced Data to a client is dropped while its write buffer holds more than this.
    unsequenced_limit: int = field(init=False)

    def __post_init__(self) -> None:
        if self.credentials is None and self.authenticate is None:
            raise ConfigurationError(
                "give credentials= or authenticate= (authenticate=lambda *a: True lets everyone in)"
            )
        if self.credentials is not None and self.authenticate is not None:
            raise ConfigurationError("give credentials= or authenticate=, not both")
        for name in ("heartbeat_interval", "client_heartbeat_timeout", "login_timeout",
                     "flush_interval"):  # fmt: skip
            value = getattr(self, name)
            if not value > 0:
                raise ConfigurationError(f"{name} must be > 0, not {value!r}")
        if not self.drain_timeout >= 0:
            raise ConfigurationError(f"drain_timeout must be >= 0, not {self.drain_timeout!r}")
        stall = self.stall_timeout
        if stall is not None and not stall > 0:
            raise ConfigurationError(f"stall_timeout must be > 0 or None, not {stall!r}")
        if self.write_buffer_high < 1 or self.replay_chunk < 1:
            raise ConfigurationError("write_buffer_high and replay_chunk must be positive")
        if not 1 <= self.max_packet_length <= 0xFFFF:
            raise ConfigurationError(
                f"max_packet_length must be 1..65535, not {self.max_packet_length}"
            )
        # Frozen: the derived fields are set the way dataclasses set fields themselves.
        object.__setattr__(self, "max_fanout", max(self.write_buffer_high, self.replay_chunk))
        object.__setattr__(self, "unsequenced_limit", 4 * self.write_buffer_high)


def session_id_for(
    session_id: str | None, store: MessageStore | None, user_store: UserStoreFactory | None
) -> str:
    """The id of a session to serve from `store` or `user_store`, checked.

    `ConfigurationError` (a `ValueError`) if neither or both are given or the id is missing
    or contradicts the store; `TypeError` if `store` is not a `MessageStore`;
    `LocalProtocolError` if the id cannot go on the wire."""
    if (store is None) == (user_store is None):
        raise ConfigurationError(
            "give either store= (one shared feed) or user_store= (per-user streams)"
        )
    if store is not None:
        if not isinstance(store, MessageStore):
            raise TypeError(f"store must be a MessageStore, not {type(store).__name__}")
        if session_id is None:
            session_id = store.session_id
        elif store.session_id is not None and store.session_id != session_id:
            raise ConfigurationError(
                f"the store records session {store.session_id!r}, not {session_id!r}"
            )
    if not session_id:
        raise ConfigurationError("a session id is needed: 1 to 10 alphanumeric characters")
    LoginAccepted(session_id, 1).encode()  # raises LocalProtocolError if it cannot go on the wire
    return session_id
