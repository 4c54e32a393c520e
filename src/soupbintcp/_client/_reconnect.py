"""What the client drivers share: the reconnect policy and why a session ended.

Layer 3 (drivers), no I/O here.
"""

from __future__ import annotations

import enum
import random
import ssl as _ssl
from dataclasses import dataclass

from .._errors import (
    ConnectionLost,
    HeartbeatTimeout,
    LoginRejected,
    LoginTimeout,
    ProtocolError,
    SequenceGap,
    SessionEnded,
    SoupBinTCPError,
)
from .._session._client import ClientState

__all__ = [
    "CloseReason",
    "ReconnectPolicy",
    "close_reason_for",
    "ended_by",
    "is_recoverable",
    "reconnect_policy",
    "ssl_context",
]


class CloseReason(enum.Enum):
    """Why a client session ended for good."""

    END_OF_SESSION = "end of session"
    LOGOUT = "logout"
    CLOSED = "closed by the application"
    REJECTED = "login rejected"
    LOGIN_TIMEOUT = "login timeout"
    HEARTBEAT_TIMEOUT = "heartbeat timeout"
    CONNECTION_LOST = "connection lost"
    SEQUENCE_GAP = "sequence gap"
    PROTOCOL_ERROR = "protocol error"


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Exponential backoff with jitter between reconnect attempts.

    `max_attempts` counts consecutive failed attempts (None: keep trying); a successful
    login resets the count.
    """

    initial_delay: float = 0.05
    max_delay: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.1
    max_attempts: int | None = None

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (0 for the first)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier**attempt)
        return base * (1.0 + self.jitter * random.random())

    def gives_up(self, failures: int) -> bool:
        return self.max_attempts is not None and failures >= self.max_attempts


def is_recoverable(exc: BaseException) -> bool:
    """Whether a reconnect may cure it: the link failed, the session did not."""
    return isinstance(exc, ConnectionLost | HeartbeatTimeout | LoginTimeout | OSError) and not (
        isinstance(exc, ProtocolError)
    )


def close_reason_for(exc: SoupBinTCPError) -> CloseReason:
    if isinstance(exc, SessionEnded):
        return CloseReason.END_OF_SESSION
    if isinstance(exc, LoginRejected):
        return CloseReason.REJECTED
    if isinstance(exc, LoginTimeout):
        return CloseReason.LOGIN_TIMEOUT
    if isinstance(exc, HeartbeatTimeout):
        return CloseReason.HEARTBEAT_TIMEOUT
    if isinstance(exc, SequenceGap):
        return CloseReason.SEQUENCE_GAP
    if isinstance(exc, ConnectionLost):
        return CloseReason.CONNECTION_LOST
    return CloseReason.PROTOCOL_ERROR


def ended_by(state: ClientState) -> tuple[CloseReason, SessionEnded] | None:
    """Why the end of a connection in `state` ends the session for good, if it does."""
    if state is ClientState.CLOSED:
        return CloseReason.LOGOUT, SessionEnded("logged out")
    if state is ClientState.ENDED:
        return CloseReason.END_OF_SESSION, SessionEnded("end of session")
    return None


def reconnect_policy(value: bool | ReconnectPolicy | None) -> ReconnectPolicy | None:
    """The `reconnect=` argument of the clients: True for the default policy."""
    return ReconnectPolicy() if value is True else (value or None)


def ssl_context(value: _ssl.SSLContext | bool | None) -> _ssl.SSLContext | None:
    """The `ssl=` argument of the clients: True for the system's default trust."""
    return _ssl.create_default_context() if value is True else (value or None)
