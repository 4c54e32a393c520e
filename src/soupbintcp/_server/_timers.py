"""A connection's clocks: its one lazy timer and the read budget of bytes nobody consumes.

Layer 3 (server driver). Both belong to a `ServerProtocol` and call it back through its
public methods (`close`, `write`, `pause_reading`, `resume_reading`, `about`).

The timer is lazy: one `call_at` per connection, rescheduled when it fires (heartbeats, the
client's heartbeat timeout, the login timeout, the stall timeout, the end-of-session linger),
never per write.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from .._errors import LoginTimeout, SessionTimeout
from ._connection import buffered, unacknowledged
from ._events import HeartbeatTimedOut, LoginTimedOut, Stalled

if TYPE_CHECKING:
    from ._protocol import ServerProtocol

__all__ = ["ConnectionTimer", "EndLinger", "NoiseBudget"]

# A lazily rescheduled timer that fired a hair early must not spin.
_TIMER_SLACK: Final = 0.001
# Bytes nobody consumes (Debug packets, heartbeats, Unsequenced Data with no handler) are
# read at this rate at most, with this burst: past it the connection stops being read until
# its credit is back, so such a flood costs the loop a bounded share (issue 15).
_NOISE_RATE: Final = 64 * 1024
_NOISE_BURST: Final = 256 * 1024
_NOISE_HOLD: Final = "noise"


class ConnectionTimer:
    """The one timer of a connection: the session's next deadline, the stall timeout while
    writes are paused, the end-of-session linger, whichever comes first."""

    __slots__ = ("_end", "_end_deadline", "_paused_since", "_proto", "handle")

    def __init__(self, proto: ServerProtocol) -> None:
        self._proto = proto
        self.handle: asyncio.TimerHandle | None = None
        self._paused_since: float | None = None
        self._end_deadline: float | None = None  # the next look at `_end`
        self._end: EndLinger | None = None

    def writes_paused(self, now: float | None) -> None:
        """Writes paused at `now` (the stall clock runs), or resumed (None)."""
        self._paused_since = now

    def end_by(self, now: float, linger: float) -> None:
        """End of Session went out at `now`: close `linger` seconds later if the client has
        not, and only once it has what was sent (see `EndLinger`)."""
        self._end = EndLinger(now, linger)
        self._end_deadline = now + linger / 4

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def schedule(self, earliest: float = 0.0) -> None:
        proto = self._proto
        deadline = proto.session.next_timer()
        since = self._paused_since
        stall = proto.config.stall_timeout
        if (
            since is not None
            and stall is not None
            and (deadline is None or since + stall < deadline)
        ):
            deadline = since + stall
        end = self._end_deadline
        if end is not None and (deadline is None or end < deadline):
            deadline = end
        if deadline is None:
            return
        deadline = max(deadline, earliest)
        timer = self.handle
        if timer is not None:
            if timer.when() <= deadline:
                return  # it fires first and reschedules itself
            timer.cancel()
        self.handle = proto.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self.handle = None
        proto = self._proto
        if proto.closed:
            return
        now = proto.loop.time()
        since = self._paused_since
        stall = proto.config.stall_timeout
        if since is not None and stall is not None and now >= since + stall:
            waiting = proto.connection.write_buffer_size
            proto.events.emit(Stalled(**proto.about(), seconds=now - since, buffered=waiting))
            proto.close(
                "stalled",
                f"stalled: the client read nothing for {now - since:.3g} s "
                f"(stall_timeout {stall:g} s), {waiting} bytes waiting",
                logging.WARNING,
                abort=True,
            )
            return
        end = self._end
        if end is not None and self._end_deadline is not None and now >= self._end_deadline:
            transport = proto.transport
            if end.over(now, buffered(transport) + unacknowledged(transport)):
                proto.close("end_of_session", "end of session", logging.INFO)
                return
            self._end_deadline = now + end.step
        try:
            out = proto.session.handle_timer(now)
        except SessionTimeout as exc:
            if isinstance(exc, LoginTimeout):
                proto.events.emit(LoginTimedOut(**proto.about(), detail=str(exc)))
                proto.close("login_timeout", str(exc), logging.WARNING, abort=True)
            else:
                proto.events.emit(HeartbeatTimedOut(**proto.about(), detail=str(exc)))
                proto.close("heartbeat_timeout", str(exc), logging.WARNING, abort=True)
            return
        if out:
            proto.write(out)
        self.schedule(now + _TIMER_SLACK)


class EndLinger:
    """When to close a connection that End of Session went out on and that the client has
    not closed: not before `linger` seconds, and not while the client is still taking what
    was sent.

    Closing while End of Session is unread loses it: the client's next heartbeat reaches a
    closed socket, which answers with a reset; that drops whatever our kernel had not sent
    yet, and a client whose write then fails with "Broken pipe" gives up on the connection
    before it reads what its own kernel holds (issue 22: a loaded client failed over after
    End of Session). So the connection is looked at every quarter linger; it is closed
    once everything sent (the transport's buffer and the kernel's unacknowledged bytes) has
    been acknowledged for at least three quarters of a linger, or when the client took
    nothing for a whole linger (stuck: as before, it is not waited for)."""

    __slots__ = ("_acked_since", "_linger", "_progress", "_start", "_unsent", "step")

    def __init__(self, now: float, linger: float) -> None:
        self._start = now
        self._linger = linger
        self.step = linger / 4
        self._acked_since: float | None = None  # everything acknowledged since this look
        self._progress = now  # the last look that found less unsent than the one before
        self._unsent: int | None = None

    def over(self, now: float, unsent: int) -> bool:
        """Whether to close now, `unsent` bytes not yet acknowledged by the client."""
        last = self._unsent
        self._unsent = unsent
        if last is None or unsent < last:
            self._progress = now
        if unsent:
            self._acked_since = None
        elif self._acked_since is None:
            self._acked_since = now
        linger = self._linger
        slack = linger / 100  # the looks come a hair late, never early
        if now + slack < self._start + linger:
            return False
        if unsent:
            return now + slack - self._progress >= linger
        assert self._acked_since is not None
        return now + slack - self._acked_since >= 0.75 * linger


class NoiseBudget:
    """What a connection may send that nobody consumes: a token bucket of `_NOISE_RATE`
    bytes a second; past it, reading stops until the credit is back."""

    __slots__ = ("_credit", "_handle", "_proto", "_time")

    def __init__(self, proto: ServerProtocol, now: float) -> None:
        self._proto = proto
        self._credit = float(_NOISE_BURST)
        self._time = now
        self._handle: asyncio.TimerHandle | None = None

    def spend(self, size: int) -> None:
        """Charge `size` bytes nobody consumes."""
        loop = self._proto.loop
        now = loop.time()
        credit = min(float(_NOISE_BURST), self._credit + (now - self._time) * _NOISE_RATE)
        credit -= size
        self._credit = credit
        self._time = now
        if credit < 0 and self._handle is None:
            self._proto.pause_reading(_NOISE_HOLD)
            self._handle = loop.call_later(-credit / _NOISE_RATE, self._paid)

    def _paid(self) -> None:
        self._handle = None
        self._proto.resume_reading(_NOISE_HOLD)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
