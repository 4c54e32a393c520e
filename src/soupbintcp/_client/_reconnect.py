"""The one reconnect decision of both client drivers: the policy, when a failed connection
attempt is tried again (and where), and why a session ended.

Layer 3 (drivers), no I/O here.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from .._errors import (
    ConnectionLost,
    HeartbeatTimeout,
    LoginRejected,
    LoginTimeout,
    ProtocolError,
    RejectReason,
    SequenceGap,
    SessionEnded,
    SessionMismatch,
    SoupBinTCPError,
)
from .._session._client import ClientState

__all__ = [
    "Attempts",
    "CloseReason",
    "Ending",
    "ReconnectPolicy",
    "as_session_error",
    "close_reason_for",
    "ended_by",
    "is_recoverable",
    "reconnect_policy",
    "resumes",
    "serves_another_session",
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
        """Whether to stop reconnecting after `failures` failed attempts in a row."""
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


def as_session_error(exc: BaseException) -> SoupBinTCPError:
    return exc if isinstance(exc, SoupBinTCPError) else ConnectionLost(str(exc))


def serves_another_session(exc: BaseException) -> bool:
    """Whether the gateway does not serve our session: it accepted another one
    (`SessionMismatch`) or said ours is not available (Login Rejected "S"). Another gateway
    of the list may."""
    return isinstance(exc, SessionMismatch) or (
        isinstance(exc, LoginRejected) and exc.reason is RejectReason.SESSION_NOT_AVAILABLE
    )


def resumes(policy: ReconnectPolicy | None, exc: BaseException, state: ClientState) -> bool:
    """Whether a logged-in connection that failed with `exc` is followed by reconnecting."""
    return policy is not None and is_recoverable(exc) and state is ClientState.DISCONNECTED


@dataclass(frozen=True, slots=True)
class Ending:
    """Attempts are over: the session ends with `reason` and `error`; a first login raises
    `raised` (the original exception, e.g. the `OSError` of an unreachable address)."""

    reason: CloseReason
    error: SoupBinTCPError
    raised: BaseException


class Attempts:
    """One run of connection attempts over `n` addresses: the first login (`first`), or a
    resume after a logged-in connection was lost.

    A first login tries each address once, at once; with a policy, a login that timed out
    is then tried again under it (an unreachable or refusing address still fails
    `connect()` quickly). A resume waits `policy.delay(failures)` before each attempt, each
    at the next address, until `policy.max_attempts` consecutive failures. A gateway that
    answers with another session (`SessionMismatch`) is skipped for the next one.
    """

    __slots__ = ("failures", "first", "n", "policy")

    def __init__(self, policy: ReconnectPolicy | None, n: int, *, first: bool) -> None:
        self.policy = policy
        self.n = n
        self.first = first
        self.failures = 0  # consecutive failed attempts

    def delay(self) -> float:
        """Seconds to wait before the next attempt."""
        if self.first:
            if self.failures < self.n or self.policy is None:
                return 0.0
            return self.policy.delay(self.failures - self.n)
        assert self.policy is not None
        return self.policy.delay(self.failures)

    def failed(self, exc: BaseException, *, terminal: bool) -> Ending | None:
        """The attempt failed with `exc`: None to try again (after `delay()`), else the end."""
        self.failures += 1
        err = as_session_error(exc)
        skip = self.n > 1 and serves_another_session(exc)
        if not skip and (terminal or not is_recoverable(exc)):
            return Ending(close_reason_for(err), err, exc)
        policy = self.policy
        if self.first:
            if self.failures < self.n:
                return None  # the next address
            if policy is None or policy.gives_up(self.failures):
                return Ending(close_reason_for(err), err, exc)
            if isinstance(exc, LoginTimeout) or skip:
                return None
            return Ending(close_reason_for(err), err, exc)
        assert policy is not None
        if policy.gives_up(self.failures):
            lost = ConnectionLost(f"gave up after {self.failures} reconnect attempts: {exc}")
            return Ending(CloseReason.CONNECTION_LOST, lost, lost)
        return None
