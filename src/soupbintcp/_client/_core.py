"""What both client drivers do the same way, whatever moves their bytes: the addresses and
failover, acting on the session's events, the end of the session, the timer tick and the
reconnect bookkeeping. The drivers add only the I/O (asyncio, or a socket and a thread).

Layer 3 (drivers), no I/O here.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from .._errors import (
    ConnectionLost,
    LocalProtocolError,
    LoginRejected,
    SequenceGap,
    SessionEnded,
    SoupBinTCPError,
)
from .._session._client import ClientSession, ClientState
from .._session._events import BatchItem, Event, FramesItem, NoMoreMessages
from .._wire._packets import Debug, EndOfSession, LoginAccepted, LoginReject
from ._inbox import Inbox
from ._options import Address, ClientConfig, OnStatus
from ._reconnect import (
    Attempts,
    CloseReason,
    Ending,
    as_session_error,
    close_reason_for,
    resumes,
    serves_another_session,
)

__all__ = ["LIVE_FOR_LOGOUT", "LOGGING_OUT", "ClientCore", "OnStatus", "log"]

log = logging.getLogger("soupbintcp.client")

#: States in which a Logout Request may be sent.
LIVE_FOR_LOGOUT: Final = frozenset(
    {ClientState.LOGGED_IN, ClientState.LOGIN_SENT, ClientState.ENDED}
)
#: A Logout Request is out: the driver reads whatever its queue holds, to see the close.
LOGGING_OUT: Final = frozenset({ClientState.LOGGING_OUT, ClientState.LOGOUT_BEFORE_ANSWER})


class ClientCore(Inbox):
    """The state both drivers keep, and what they do with it."""

    def _init_core(self, config: ClientConfig, session: ClientSession) -> None:
        self._config = config
        self._init_queue(config.max_queue)  # also `_end`: set once the session is over for good
        addresses = config.addresses
        #: Every address the client may use, in the order it tries them.
        self.addresses = addresses
        #: The address of the current (or last) connection attempt.
        self.address = addresses[0]
        self._address_index = 0
        self._logged_in_at: Address | None = None  # the address of the last login
        self._session = session
        self._reconnect = config.reconnect
        self._on_status = config.on_status
        self.close_reason: CloseReason | None = None
        #: Logins after the first, over all connections.
        self.reconnects = 0
        #: Logins at another address than the login before.
        self.failovers = 0
        #: Logins refused here because the server would have skipped messages (SequenceGap).
        self.gaps_refused = 0
        self._received_from: int | None = None  # next_sequence at the first login
        self._rate_sample = (time.monotonic(), 0)  # (when, messages_received) for the rate
        self._rate = 0.0

    # --- public state ----------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self._session.session_id

    @property
    def next_sequence(self) -> int:
        """Sequence number of the next sequenced message to arrive (received messages
        still queued for the application are counted as arrived)."""
        return self._session.next_sequence

    @property
    def state(self) -> ClientState:
        return self._session.state

    @property
    def is_closed(self) -> bool:
        return self._end is not None

    @property
    def messages_received(self) -> int:
        """Sequenced messages received since the first login (those still queued for the
        application included); read on demand, not counted per message."""
        start = self._received_from
        return 0 if start is None else self._session.next_sequence - start

    @property
    def receive_rate(self) -> float:
        """Messages received per second, over the time since this was last computed (at
        least a second: reading it more often gives the same figure until a second passed)."""
        now = time.monotonic()
        then, count = self._rate_sample
        if now - then >= 1.0:
            received = self.messages_received
            self._rate = (received - count) / (now - then)
            self._rate_sample = (now, received)
        return self._rate

    def _all_or_end(self) -> list[BatchItem]:
        """Everything queued ([] if there is nothing yet); raises once the session is over and
        every message received before its end has been handed out."""
        out = self._take_all()
        if not out and self._end is not None:
            raise self._end
        return out

    def _frames_or_end(self) -> list[FramesItem]:
        """As `_all_or_end`, as zero-copy items; the session hands runs over as
        `SequencedFrames` from now on."""
        self._session.frames_view = True
        out = self._take_frames()
        if not out and self._end is not None:
            raise self._end
        return out

    # --- the driver's side -----------------------------------------------------------------

    def _finish(self, reason: CloseReason, exc: SoupBinTCPError) -> None:
        """The session is over for good (the driver closes its I/O)."""
        raise NotImplementedError

    def _ended(self, reason: CloseReason, exc: SoupBinTCPError) -> bool:
        """Record the end of the session; False if it had ended already."""
        if self._end is not None:
            return False
        self._end = exc
        self.close_reason = reason
        log.info("session with %s:%s ended: %s", *self.address, exc)
        return True

    def _where(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def _next_address(self, attempt: Attempts) -> Address:
        """Where the next attempt goes: the first address for a first login's first
        attempt, else the one after the last tried."""
        if not (attempt.first and attempt.failures == 0):
            self._address_index = (self._address_index + 1) % len(self.addresses)
        self.address = self.addresses[self._address_index]
        return self.address

    def _act(self, events: list[Event]) -> SoupBinTCPError | None:
        """Act on the session's events other than messages; the error they mean, if any."""
        err: SoupBinTCPError | None = None
        for event in events:
            if type(event) is LoginAccepted:
                self._logged_in(event)
            elif type(event) is LoginReject:
                err = LoginRejected(event.reason)
            elif type(event) is EndOfSession:
                self._finish(CloseReason.END_OF_SESSION, SessionEnded("end of session"))
            elif type(event) is Debug:
                log.debug("debug packet from %s: %s", self._where(), event.text)
            elif type(event) is NoMoreMessages:
                log.debug("no more messages available at sequence %d", event.sequence)
        return err

    def _report(self, events: list[Event]) -> None:
        """Hand the events to `on_status` (the blocking driver: outside its lock)."""
        on_status = self._on_status
        if on_status is not None:
            for event in events:
                try:
                    on_status(event)
                except Exception:
                    log.exception("on_status callback failed")

    def _logged_in(self, accepted: LoginAccepted) -> None:
        session = self._session
        previous = self._logged_in_at
        self._logged_in_at = self.address
        if self._received_from is None:
            # What the first login starts from (the session may have taken messages after
            # the Login Accepted by now, from the same chunk of bytes).
            self._received_from = accepted.sequence
        if session.logins > 1:
            self.reconnects += 1
        if previous is not None and previous != self.address:
            self.failovers += 1
            log.warning(
                "failed over from %s:%s to %s (failover %d)",
                *previous,
                self._where(),
                self.failovers,
            )
        log.info(
            "logged in to %s, session %r; the server sends from sequence %d",
            self._where(),
            session.session_id,
            accepted.sequence,
        )

    def _attempt_failed(self, attempts: Attempts, exc: BaseException) -> Ending | None:
        """A connection attempt failed: None to try again (after `attempts.delay()`)."""
        if isinstance(exc, SequenceGap):
            self.gaps_refused += 1
        if len(self.addresses) > 1 and serves_another_session(exc):
            # That gateway serves another session: carry ours on at the next one.
            self._session = self._config.options.resume(self._session)
        ending = attempts.failed(exc, terminal=self._session.is_terminal)
        if ending is None:
            what = "connection attempt" if attempts.first else "reconnect attempt"
            log.warning("%s %d to %s failed: %s", what, attempts.failures, self._where(), exc)
        return ending

    def _end_or_resume(self, exc: BaseException) -> bool:
        """A logged-in connection failed with `exc`: True to reconnect, else the session
        ends here."""
        if isinstance(exc, SequenceGap):
            self.gaps_refused += 1
        if resumes(self._reconnect, exc, self._session.state):
            log.warning("connection to %s failed (%s); reconnecting", self._where(), exc)
            return True
        err = as_session_error(exc)
        self._finish(close_reason_for(err), err)
        return False

    def _lost_error(self, exc: BaseException | None) -> ConnectionLost:
        why = f": {exc}" if exc else ""
        return ConnectionLost(f"connection to {self._where()} lost{why}")

    def _now(self) -> float:
        raise NotImplementedError

    def _pause_io(self) -> bool:
        """Stop reading the connection; False if there is none."""
        raise NotImplementedError

    def _resume_io(self) -> None:
        raise NotImplementedError

    def _pause_reading(self) -> bool:
        if self._session.state in LOGGING_OUT or not self._pause_io():
            return False  # logging out: reading on is how the server's close is seen
        self._session.reading_paused(self._now())  # our silence, not the server's
        return True

    def _resume_reading(self) -> None:
        self._session.reading_resumed(self._now())
        self._resume_io()

    def _unpause(self) -> None:
        """Read again whatever the queue holds: on a new connection, and after a Logout
        Request (a full queue must not hide the server's close)."""
        if self._paused:
            self._paused = False
            self._resume_reading()

    def _check_send(self, live: bool) -> None:
        """Raise unless Unsequenced Data can be sent now."""
        if self._end is not None:
            raise self._end
        if not live or self._session.state is not ClientState.LOGGED_IN:
            raise LocalProtocolError(
                f"cannot send: the session is {self._session.state.value} (reconnecting?)"
            )
