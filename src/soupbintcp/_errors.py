"""The error family. Every failure a peer or data causes derives from `SoupBinTCPError`.

Misuse of an API raises ours too (`LocalProtocolError`, `ConfigurationError`), except where a
docstring names Python's own `TypeError`/`ValueError`; errors of the operating system (a
refused connection, a full disk) stay `OSError`.

Protocol errors split by who is at fault, as in h11: `LocalProtocolError` is our caller's
misuse (a username that does not fit, sending data before login), `RemoteProtocolError` is
the peer's (an unknown packet type, a malformed field).
"""

from __future__ import annotations

import enum

__all__ = [
    "ConfigurationError",
    "ConnectionLost",
    "HeartbeatTimeout",
    "LocalProtocolError",
    "LoginRejected",
    "LoginTimeout",
    "MoldUDP64Error",
    "MoldUDP64Fault",
    "MoldUDP64GapTimeout",
    "ProtocolError",
    "RejectReason",
    "RemoteProtocolError",
    "SequenceGap",
    "SessionEnded",
    "SessionMismatch",
    "SessionTimeout",
    "SoupBinTCPError",
]


class RejectReason(enum.StrEnum):
    """Reject Reason Code of a Login Rejected packet (spec 2.2.2)."""

    #: "A": invalid username and password combination.
    NOT_AUTHORIZED = "A"
    #: "S": the requested session was invalid or not available.
    SESSION_NOT_AVAILABLE = "S"

    @property
    def description(self) -> str:
        return _REJECT_DESCRIPTIONS[self]


_REJECT_DESCRIPTIONS = {
    RejectReason.NOT_AUTHORIZED: "not authorized",
    RejectReason.SESSION_NOT_AVAILABLE: "session not available",
}


class SoupBinTCPError(Exception):
    """Base of every error raised by soupbintcp."""


class ConfigurationError(SoupBinTCPError, ValueError):
    """An option given to `serve()` (or another constructor) is out of range or
    inconsistent: our caller's mistake, caught before anything is served. A `ValueError` too."""


class ProtocolError(SoupBinTCPError):
    """The SoupBinTCP protocol was broken, by us or by the peer."""


class LocalProtocolError(ProtocolError):
    """Our caller asked for something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class LoginRejected(SoupBinTCPError):
    """The server answered the Login Request with Login Rejected."""

    def __init__(self, reason: RejectReason) -> None:
        super().__init__(f"login rejected: {reason.description} ({reason.value!r})")
        self.reason = reason


class SessionTimeout(SoupBinTCPError, TimeoutError):
    """A protocol timer expired."""


class LoginTimeout(SessionTimeout):
    """No login exchange completed within the login timeout."""


class HeartbeatTimeout(SessionTimeout):
    """Nothing, not even a heartbeat, was received from the peer for too long."""


class SessionEnded(SoupBinTCPError):
    """The session is over: End of Session, logout or close. Carries the reason."""

    def __init__(self, reason: str = "session ended") -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectionLost(SoupBinTCPError, ConnectionError):
    """The TCP connection was lost and the session will not reconnect."""


class SequenceGap(SoupBinTCPError):
    """The server resumed beyond the next expected sequence number: messages were skipped."""

    def __init__(self, expected: int, offered: int) -> None:
        super().__init__(
            f"sequence gap: expected message {expected}, server resumed at {offered} "
            f"({offered - expected} message(s) cannot be recovered)"
        )
        self.expected = expected
        self.offered = offered


class SessionMismatch(RemoteProtocolError):
    """The server logged us into a different session from the one we were following."""

    def __init__(self, expected: str, offered: str) -> None:
        super().__init__(f"server accepted session {offered!r}, expected {expected!r}")
        self.expected = expected
        self.offered = offered


class MoldUDP64Fault(enum.StrEnum):
    """What is wrong with a malformed MoldUDP64 datagram (`MoldUDP64Error.fault`)."""

    #: Shorter than the 20-byte header (or a request that is not exactly 20 bytes long).
    SHORT_PACKET = "short packet"
    #: The blocks run past the end of the datagram: the count or a length lies high.
    BLOCK_OVERRUN = "block overrun"
    #: Bytes are left after the counted blocks: the count lies low.
    TRAILING_BYTES = "trailing bytes"
    #: The Session field is not alphanumeric ASCII padded with spaces.
    BAD_SESSION = "bad session"


class MoldUDP64Error(RemoteProtocolError):
    """A datagram that is not a well-formed MoldUDP64 packet. Listeners and re-request
    servers drop such datagrams and count them; they never deliver any of it."""

    def __init__(self, fault: MoldUDP64Fault, detail: str) -> None:
        super().__init__(f"malformed MoldUDP64 packet ({fault.value}): {detail}")
        self.fault = fault


class MoldUDP64GapTimeout(SessionTimeout):
    """A MoldUDP64 listener could not fill a gap: its requests went unanswered too often."""

    def __init__(self, expected: int, tries: int) -> None:
        super().__init__(
            f"gap at message {expected} not filled: {tries} request(s) went unanswered"
        )
        self.expected = expected
        self.tries = tries
