"""What both client drivers do the same way, whatever moves their bytes: the addresses and
failover, acting on the session's events, the end of the session, the inbox and the
reconnect bookkeeping. The drivers add only the I/O (asyncio, or a socket and a thread).

Layer 3 (drivers), no I/O here. Composed, not inherited: each client owns a `ClientCore`,
which owns the session and the `Inbox`, and talks to its driver only through the callbacks
it was handed (`now`, `pause_io`, `resume_io`, `finish`), as websockets' `Assembler` takes
`pause=` / `resume=`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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

__all__ = ["LIVE_FOR_LOGOUT", "LOGGING_OUT", "ClientCore", "Finish", "OnStatus", "log"]

log = logging.getLogger("soupbintcp.client")

#: States in which a Logout Request may be sent.
LIVE_FOR_LOGOUT: Final = frozenset(
    {ClientState.LOGGED_IN, ClientState.LOGIN_SENT, ClientState.ENDED}
)
#: A Logout Request is out: the driver reads whatever its queue holds, to see the close.
LOGGING_OUT: Final = frozenset({ClientState.LOGGING_OUT, ClientState.LOGOUT_BEFORE_ANSWER})

#: `finish(reason, error)`: the session is over for good; the driver closes its I/O.
Finish = Callable[[CloseReason, SoupBinTCPError], None]


class ClientCore:
    """The state both drivers keep, and what they do with it.

    The driver hands it `now()` (its clock), `pause_io()` / `resume_io()` (stop and start
    reading the connection; `pause_io` returns False if there is none) and `finish` (called
    once the session is over, after `ended` recorded why).
    """

    def __init__(
        self,
        config: ClientConfig,
        session: ClientSession,
        *,
        now: Callable[[], float],
        pause_io: Callable[[], bool],
        resume_io: Callable[[], None],
        finish: Finish,
    ) -> None:
        self.config = config
        self._now = now
        self._pause_io = pause_io
        self._resume_io = resume_io
        self._finish = finish
        #: The received messages waiting for the application; its `_end` is set once the
        #: session is over for good.
        self.inbox = Inbox(config.max_queue, pause=self._pause_reading, resume=self._resume_reading)
        addresses = config.addresses
        #: Every address the client may use, in the order it tries them.
        self.addresses = addresses
        #: The address of the current (or last) connection attempt.
        self.address = addresses[0]
        self._address_index = 0
        self._logged_in_at: Address | None = None  # the address of the last login
        #: The session: replaced by a fresh one that carries it on when a gateway serves
        #: another session.
        self.session = session
        self.reconnect = config.reconnect
        self.on_status = config.on_status
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
        """The session's id (as the server's Login Accepted gave it)."""
        return self.session.session_id

    @property
    def next_sequence(self) -> int:
        """Sequence number of the next sequenced message to arrive (received messages
        still queued for the application are counted as arrived)."""
        return self.session.next_sequence

    @property
    def state(self) -> ClientState:
        """Where the session is in its life (`ClientState`)."""
        return self.session.state

    @property
    def end(self) -> SoupBinTCPError | None:
        """Why the session is over for good; None while it is not."""
        return self.inbox._end

    @property
    def is_closed(self) -> bool:
        """Whether the session is over for good."""
        return self.inbox._end is not None

    @property
    def messages_received(self) -> int:
        """Sequenced messages received since the first login (those still queued for the
        application included); read on demand, not counted per message."""
        start = self._received_from
        return 0 if start is None else self.session.next_sequence - start

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

    def all_or_end(self) -> list[BatchItem]:
        """Everything queued ([] if there is nothing yet); raises once the session is over and
        every message received before its end has been handed out."""
        out = self.inbox.take_all()
        if not out and self.inbox._end is not None:
            raise self.inbox._end
        return out

    def frames_or_end(self) -> list[FramesItem]:
        """As `all_or_end`, as zero-copy items; the session hands runs over as
        `SequencedFrames` from now on."""
        self.session.frames_view = True
        out = self.inbox.take_frames()
        if not out and self.inbox._end is not None:
            raise self.inbox._end
        return out

    # --- the driver's side -----------------------------------------------------------------

    def ended(self, reason: CloseReason, exc: SoupBinTCPError) -> bool:
        """Record the end of the session; False if it had ended already."""
        if self.inbox._end is not None:
            return False
        self.inbox._end = exc
        self.close_reason = reason
        log.info("session with %s:%s ended: %s", *self.address, exc)
        return True

    def where(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def next_address(self, attempt: Attempts) -> Address:
        """Where the next attempt goes: the first address for a first login's first
        attempt, else the one after the last tried."""
        if not (attempt.first and attempt.failures == 0):
            self._address_index = (self._address_index + 1) % len(self.addresses)
        self.address = self.addresses[self._address_index]
        return self.address

    def act(self, events: list[Event]) -> SoupBinTCPError | None:
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
                log.debug("debug packet from %s: %s", self.where(), event.text)
            elif type(event) is NoMoreMessages:
                log.debug("no more messages available at sequence %d", event.sequence)
        return err

    def report(self, events: list[Event]) -> None:
        """Hand the events to `on_status` (the blocking driver: outside its lock)."""
        on_status = self.on_status
        if on_status is not None:
            for event in events:
                try:
                    on_status(event)
                except Exception:
                    log.exception("on_status callback failed")

    def _logged_in(self, accepted: LoginAccepted) -> None:
        session = self.session
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
                self.where(),
                self.failovers,
            )
        log.info(
            "logged in to %s, session %r; the server sends from sequence %d",
            self.where(),
            session.session_id,
            accepted.sequence,
        )

    def attempt_failed(self, attempts: Attempts, exc: BaseException) -> Ending | None:
        """A connection attempt failed: None to try again (after `attempts.delay()`)."""
        if isinstance(exc, SequenceGap):
            self.gaps_refused += 1
        if len(self.addresses) > 1 and serves_another_session(exc):
            # That gateway serves another session: carry ours on at the next one.
            self.session = self.config.options.resume(self.session)
        ending = attempts.failed(exc, terminal=self.session.is_terminal)
        if ending is None:
            what = "connection attempt" if attempts.first else "reconnect attempt"
            log.warning("%s %d to %s failed: %s", what, attempts.failures, self.where(), exc)
        return ending

    def end_or_resume(self, exc: BaseException) -> bool:
        """A logged-in connection failed with `exc`: True to reconnect, else the session
        ends here."""
        if isinstance(exc, SequenceGap):
            self.gaps_refused += 1
        if resumes(self.reconnect, exc, self.session.state):
            log.warning("connection to %s failed (%s); reconnecting", self.where(), exc)
            return True
        err = as_session_error(exc)
        self._finish(close_reason_for(err), err)
        return False

    def lost_error(self, exc: BaseException | None) -> ConnectionLost:
        why = f": {exc}" if exc else ""
        return ConnectionLost(f"connection to {self.where()} lost{why}")

    def _pause_reading(self) -> bool:
        if self.session.state in LOGGING_OUT or not self._pause_io():
            return False  # logging out: reading on is how the server's close is seen
        self.session.reading_paused(self._now())  # our silence, not the server's
        return True

    def _resume_reading(self) -> None:
        self.session.reading_resumed(self._now())
        self._resume_io()

    def unpause(self) -> None:
        """Read again whatever the queue holds: on a new connection, and after a Logout
        Request (a full queue must not hide the server's close)."""
        inbox = self.inbox
        if inbox._paused:
            inbox._paused = False
            self._resume_reading()

    def check_send(self, live: bool) -> None:
        """Raise unless Unsequenced Data can be sent now."""
        end = self.inbox._end
        if end is not None:
            raise end
        if not live or self.session.state is not ClientState.LOGGED_IN:
            raise LocalProtocolError(
                f"cannot send: the session is {self.session.state.value} (reconnecting?)"
            )
