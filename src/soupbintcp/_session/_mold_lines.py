"""A/B arbitration: one MoldUDP64 session received on several redundant lines.

Layer 2 (sans-IO). Venues send each MoldUDP64 packet on two (or more) multicast groups; a
feed handler takes both and keeps the first copy of every sequence number. `LineArbiter`
feeds one `MoldListener` from all the lines, so the first copy wins and later ones are
duplicates by construction; the listener's `request_delay` lets a gap on one line be filled
by another before anything is asked of the re-request server, so that only what every line
missed is re-requested. What the arbiter adds is the account, per line (`LineCounters`):

- `first`: messages this line delivered before any other line;
- `missed`: messages this line's own numbering skipped (its losses);
- `covered`: of those, the ones another line delivered (so they needed no re-request).

A message a line missed is covered either already when the line skips it (another line
delivered it or it is held) or later, when another line delivers it first; each is counted
once. Answers of the re-request server are fed with line -1 and counted by no line.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from operator import itemgetter
from typing import Final

from .._errors import LocalProtocolError
from .._wire import END_OF_SESSION_COUNT, HEADER_LENGTH, HEARTBEAT_COUNT, unpack_header
from ._events import SequencedMessages
from ._mold_listener import MoldListener

__all__ = ["DEFAULT_LINE_WAIT", "LineArbiter", "LineCounters"]

#: How long a gap on one line waits for another line before it is re-requested: a copy on
#: the other line of a pair normally comes within microseconds to a millisecond.
DEFAULT_LINE_WAIT: Final = 0.02
_start: Final = itemgetter(0)


@dataclass
class LineCounters:
    """What one line did (see the module's account)."""

    name: str
    packets: int = 0
    first: int = 0
    duplicates: int = 0
    missed: int = 0
    covered: int = 0
    #: One past the highest number this line has shown (0: nothing yet).
    next_sequence: int = 0


class LineArbiter:
    """Feeds `listener` from `len(names)` lines and keeps `LineCounters` for each."""

    def __init__(self, listener: MoldListener, names: list[str]) -> None:
        if not names:
            raise LocalProtocolError("at least one line")
        self.listener = listener
        self.lines = [LineCounters(name) for name in names]

    def receive_datagram(self, data: bytes, now: float, line: int) -> list[SequencedMessages]:
        """The datagram received on `line` (-1: an answer of the re-request server)."""
        listener = self.listener
        if line < 0 or len(data) < HEADER_LENGTH:
            return listener.receive_datagram(data, now)
        counters = self.lines[line]
        _, sequence, count = unpack_header(data)
        n = 0 if count in (HEARTBEAT_COUNT, END_OF_SESSION_COUNT) else count
        end = sequence + n
        counters.packets += 1
        seen = counters.next_sequence
        if seen and sequence > seen:
            counters.missed += sequence - seen
            counters.covered += (sequence - seen) - self._missing(seen, sequence)
        if end > seen:
            counters.next_sequence = end
        if not n:
            return listener.receive_datagram(data, now)
        duplicates, malformed = listener.duplicates, listener.malformed
        events = listener.receive_datagram(data, now)
        if listener.malformed != malformed:
            return events
        new = n - (listener.duplicates - duplicates)
        counters.first += new
        counters.duplicates += n - new
        if new:
            for other in self.lines:
                if other is not counters and other.next_sequence > sequence:
                    other.covered += min(new, min(end, other.next_sequence) - sequence)
        return events

    def _missing(self, a: int, b: int) -> int:
        """How many of numbers a..b-1 the listener neither delivered nor holds."""
        listener = self.listener
        a = max(a, listener.next_sequence)
        if a >= b:
            return 0
        high = listener.high
        missing = max(0, b - max(a, high))  # beyond anything shown: not had
        holes = listener._holes
        i = max(0, bisect_right(holes, a, key=_start) - 1)
        stop = min(b, high)
        while i < len(holes) and holes[i][0] < stop:
            lo, hi = max(holes[i][0], a), min(holes[i][1], stop)
            if hi > lo:
                missing += hi - lo
            i += 1
        return missing
