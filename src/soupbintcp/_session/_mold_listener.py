"""The MoldUDP64 listener as a sans-IO state machine: datagrams in, messages out in order,
exactly once, and the Request packets that fill the gaps.

Layer 2: no sockets, no event loop, no clock reads. The driver passes every datagram it
reads (multicast or a re-request answer) to `receive_datagram(data, now)`, sends whatever
`take_requests()` returns to the re-request server, and calls `handle_timer(now)` once `now`
reaches `next_timer()`.

The bookkeeping of the gaps and of the requests that fill them is `_mold_gaps`'s.
"""

from __future__ import annotations

import enum

from .._errors import LocalProtocolError, MoldUDP64Error, MoldUDP64GapTimeout, SoupBinTCPError
from .._wire._moldudp64 import (
    END_OF_SESSION_COUNT,
    HEADER_LENGTH,
    HEARTBEAT_COUNT,
    MAX_MESSAGE_COUNT,
    decode_blocks,
    parse_session,
    session_field,
    unpack_header,
)
from ._events import SequencedMessages
from ._mold_gaps import GapBook

__all__ = ["ListenerState", "MoldListener"]


class ListenerState(enum.Enum):
    """Where a `MoldListener` is: waiting for the first packet, following, ended."""

    WAITING = "waiting"  # no packet of the session seen yet
    LISTENING = "listening"
    ENDED = "ended"  # End of Session seen and every message before it delivered
    ERROR = "error"  # a gap could not be filled: the stream cannot go on in order


class MoldListener(GapBook):
    """One listener's view of one MoldUDP64 session.

    `sequence`: 1 for the whole session (what came before the first packet is requested),
    n to start at n, 0 for whatever the next packet carries. `session_id`: the session to
    follow (None: the first one seen); packets of any other session are dropped and counted.

    Limits: at most `max_held` messages received early are kept (beyond that they are
    dropped and requested again once the gap before them is filled), at most
    `max_outstanding` requests are in flight, each for at most `max_request_count` messages,
    answered in time or sent again, at most `max_retries` times;
    then the gap is given up (`MoldUDP64GapTimeout`, state ERROR). "In time" is four times
    the smoothed round trip of the answers so far (as TCP estimates its retransmission
    timeout), at least `min_request_timeout` and at most `request_timeout`, which is also
    the first guess. `request_delay`: how long a gap waits before it is asked for (0: at
    once); a listener fed by several lines (A/B, `LineArbiter`) waits so that a copy on the
    other line fills it first.
    """

    def __init__(
        self,
        *,
        session_id: str | None = None,
        sequence: int = 1,
        request_timeout: float = 0.25,
        min_request_timeout: float = 0.005,
        max_retries: int = 20,
        max_outstanding: int = 64,
        max_request_count: int = 256,
        max_held: int = 100_000,
        request_delay: float = 0.0,
    ) -> None:
        if sequence < 0:
            raise LocalProtocolError(f"sequence must be 0 or more, not {sequence}")
        if request_delay < 0:
            raise LocalProtocolError(f"request_delay must be 0 or more, not {request_delay}")
        if request_timeout <= 0 or max_retries < 0 or max_outstanding < 1 or max_held < 0:
            raise LocalProtocolError("request_timeout, max_outstanding must be > 0")
        if not 1 <= max_request_count <= MAX_MESSAGE_COUNT:
            raise LocalProtocolError(f"max_request_count must be 1..65534: {max_request_count}")
        self._init_gaps(
            request_timeout=request_timeout,
            min_request_timeout=min_request_timeout,
            max_retries=max_retries,
            max_outstanding=max_outstanding,
            max_request_count=max_request_count,
            max_held=max_held,
            request_delay=request_delay,
        )
        self._session: str | None = None
        self._field = b""  # the Session field as this session's packets carry it
        self._stripped = b""
        if session_id is not None:
            self._field = session_field(session_id)
            self._stripped = self._field.strip(b" ")
            self._session = session_id
        self._state = ListenerState.WAITING
        self._next = sequence  # 0: set by the first packet
        self._high = sequence
        self._end: int | None = None  # End of Session's number, once seen
        self._error: SoupBinTCPError | None = None
        #: Datagrams received, of this session and well-formed.
        self.packets = 0
        self.heartbeats = 0
        #: Messages dropped because they had been received already.
        self.duplicates = 0
        #: Datagrams dropped: malformed, or of another session.
        self.malformed = 0
        self.other_session = 0
        self.request_retries = 0

    # --- what the listener knows ---------------------------------------------------------

    @property
    def state(self) -> ListenerState:
        """Where the listener is in its life (`ListenerState`)."""
        return self._state

    @property
    def session_id(self) -> str | None:
        """The session followed: as asked for, or the first one seen (None until then)."""
        return self._session

    @property
    def next_sequence(self) -> int:
        """The number of the next message to be delivered (0 until the first packet, when
        starting at the next packet)."""
        return self._next

    @property
    def high(self) -> int:
        """One past the highest sequence number any packet has shown."""
        return self._high

    @property
    def end_sequence(self) -> int | None:
        """The number End of Session named (one past the last message), once seen."""
        return self._end

    @property
    def missing(self) -> int:
        """Messages known to exist and neither delivered nor held."""
        return sum(hole[1] - hole[0] for hole in self._holes)

    @property
    def held(self) -> int:
        """Messages held out of order, waiting for a gap before them to be filled."""
        return self._held_count

    @property
    def outstanding(self) -> int:
        """Re-requests sent and not yet answered."""
        return len(self._requests)

    @property
    def error(self) -> SoupBinTCPError | None:
        """The error that ended the listener, if one did."""
        return self._error

    # --- receiving -----------------------------------------------------------------------

    def receive_datagram(self, data: bytes, now: float) -> list[SequencedMessages]:
        """The messages this datagram makes deliverable, in order (often none or one run).
        A malformed datagram or one of another session is dropped and counted."""
        if self._error is not None:
            raise self._error
        if self._state is ListenerState.ENDED:
            return []
        if len(data) < HEADER_LENGTH:
            self.malformed += 1
            return []
        raw, sequence, count = unpack_header(data)
        if raw != self._field and not self._adopt(raw):
            return []
        if count in (HEARTBEAT_COUNT, END_OF_SESSION_COUNT):
            if len(data) != HEADER_LENGTH:
                self.malformed += 1
                return []
            self.packets += 1
            return self._marker(sequence, count == END_OF_SESSION_COUNT, now)
        if sequence + count <= self._next:
            # Every message of it was delivered already (the other line's copy, a late
            # answer): dropped without cutting it into messages.
            self.packets += 1
            self.duplicates += count
            return []
        try:
            messages = decode_blocks(data, count)
        except MoldUDP64Error:
            self.malformed += 1
            return []
        self.packets += 1
        nxt = self._next
        if sequence == nxt and nxt == self._high and self._end is None:
            # The hot path: in order, nothing missing.
            self._next = self._high = sequence + count
            if self._state is ListenerState.WAITING:
                self._state = ListenerState.LISTENING
            return [SequencedMessages(sequence, messages)]
        return self._data(sequence, messages, now)

    def take_requests(self) -> list[bytes]:
        """Request packets to send to the re-request server now (each one datagram)."""
        out = self._outbox
        self._outbox = []
        return out

    def _adopt(self, raw: bytes) -> bool:
        stripped = raw.strip(b" ")
        if self._session is not None:
            if stripped == self._stripped:
                return True  # the same session padded otherwise
            self.other_session += 1
            return False
        try:
            self._session = parse_session(raw)
        except MoldUDP64Error:
            self.malformed += 1
            return False
        self._field = raw
        self._stripped = stripped
        return True

    def _marker(self, sequence: int, end: bool, now: float) -> list[SequencedMessages]:
        """A heartbeat or End of Session: `sequence` is the transmitter's next number."""
        if end:
            if self._end is None or sequence < self._end:
                self._end = sequence
        else:
            self.heartbeats += 1
        if self._next == 0:
            self._next = self._high = sequence
        elif sequence > self._high:
            self._add_hole(self._high, sequence, now)
            self._high = sequence
            self._plan(now)
        if self._state is ListenerState.WAITING:
            self._state = ListenerState.LISTENING
        self._check_end()
        return []

    def _data(self, s: int, messages: list[bytes], now: float) -> list[SequencedMessages]:
        if self._state is ListenerState.WAITING:
            self._state = ListenerState.LISTENING
        if self._next == 0:
            self._next = self._high = s
        e = s + len(messages)
        if self._end is not None and e > self._end:
            # Nothing is numbered at or past End of Session: a transmitter that sends it is
            # broken; keep what came before and drop the rest.
            self.malformed += 1
            e = max(s, self._end)
            messages = messages[: e - s]
        nxt = self._next
        if e <= nxt:
            self.duplicates += len(messages)
            return self._deliver()
        if s < nxt:
            self.duplicates += nxt - s
            messages = messages[nxt - s :]
            s = nxt
        high = self._high
        changed = False
        if s < high:
            changed = self._fill(s, messages, min(e, high), now)
            if e > high:
                messages = messages[high - s :]
                s = high
        if e > high:
            if s > high:
                self._add_hole(high, s, now)
                changed = True
            if not self._hold(s, messages):
                self._add_hole(s, e, now)  # no room: asked for again later
            self._high = e
        events = self._deliver()
        if changed:
            self._plan(now)
        self._check_end()
        return events

    def _deliver(self) -> list[SequencedMessages]:
        held = self._held
        events: list[SequencedMessages] = []
        nxt = self._next
        while held:
            run = held.pop(nxt, None)
            if run is None:
                break
            del self._keys[0]  # the smallest key: nothing held lies before the next number
            self._held_count -= len(run)
            events.append(SequencedMessages(nxt, run))
            nxt += len(run)
        self._next = nxt
        return events

    def _check_end(self) -> None:
        if self._end is not None and self._next >= self._end:
            self._state = ListenerState.ENDED
            self._holes.clear()
            self._requests.clear()
            self._held.clear()
            self._keys.clear()
            self._held_count = 0

    # --- requests and their timers -------------------------------------------------------

    def next_timer(self) -> float | None:
        """When `handle_timer` must next be called: the first request deadline, or when a
        hole has waited out `request_delay`, if any."""
        ripening = self._ripening() if self.request_delay else None
        if not self._requests:
            return ripening
        deadline = min(r[1] for r in self._requests.values())
        return deadline if ripening is None else min(deadline, ripening)

    def handle_timer(self, now: float) -> None:
        """Send again the requests not answered in time; raises `MoldUDP64GapTimeout` (and
        the listener is then in ERROR) once one has been sent `max_retries` times more."""
        if self._error is not None:
            raise self._error
        for start, request in list(self._requests.items()):
            end, deadline, tries, _ = request
            if deadline > now:
                continue
            if tries >= self.max_retries:
                self._state = ListenerState.ERROR
                self._error = MoldUDP64GapTimeout(start, int(tries) + 1)
                self._requests.clear()
                self._outbox.clear()
                raise self._error
            # Backed off: a loaded server or network answers late, not never.
            request[1] = now + min(self.request_timeout, self._timeout * 2 ** (tries + 1))
            request[2] = tries + 1
            self.request_retries += 1
            self._send(start, self._clip(start, int(end)))
        self._plan(now)
