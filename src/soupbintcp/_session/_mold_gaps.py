"""The MoldUDP64 listener's bookkeeping of what is missing: the holes, the messages held
out of order, and the Request packets that fill the holes, with their round-trip estimate.

Layer 2 (sans-IO). `GapBook` is the part of `MoldListener` (`_mold_listener`) that keeps
these; the listener's delivery state machine calls it and owns the public API.

The bookkeeping, one invariant: every number in `[next_sequence, high)` is either in exactly
one held piece (received early, keyed by its first number) or in exactly one hole (missing);
`high` is one past the highest number any packet has shown (data, heartbeat or End of
Session). A packet's messages that are neither in a hole nor at or beyond `high` were seen
already and are dropped. Requests are keyed by their first number; one whose first number is
filled counts as answered, and what it asked for beyond the answer is asked for again (the
server answers with what fits in one datagram).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from operator import itemgetter
from typing import Final

from .._wire._moldudp64 import encode_request

__all__ = ["GapBook"]

_start: Final = itemgetter(0)


class GapBook:
    """Holes, held pieces and requests in flight; see the module's invariant."""

    # The listener's, read here: the next number to deliver, the Session field to put in
    # requests, and the count of messages seen twice.
    _next: int
    _field: bytes
    duplicates: int

    def _init_gaps(
        self,
        *,
        request_timeout: float,
        min_request_timeout: float,
        max_retries: int,
        max_outstanding: int,
        max_request_count: int,
        max_held: int,
        request_delay: float = 0.0,
    ) -> None:
        self.request_timeout = request_timeout
        #: How long a hole waits before it is asked for: another line (A/B) may fill it.
        self.request_delay = request_delay
        self._planned = 0.0  # when _plan last ran
        self.min_request_timeout = min(min_request_timeout, request_timeout)
        self._timeout = request_timeout
        self._srtt: float | None = None
        self.max_retries = max_retries
        self.max_outstanding = max_outstanding
        self.max_request_count = max_request_count
        self.max_held = max_held
        # [start, end, found at (ns)] each: [start, end) sorted, disjoint
        self._holes: list[list[int]] = []
        self._held: dict[int, list[bytes]] = {}
        self._keys: list[int] = []  # of _held, sorted
        self._evicted: list[tuple[int, int]] = []  # dropped from _held, to become holes
        self._held_count = 0
        # start -> [end, deadline, tries, sent at]
        self._requests: dict[int, list[float]] = {}
        self._outbox: list[bytes] = []
        self.gaps = 0  # holes found
        self.requests_sent = 0

    # --- holes and held pieces -----------------------------------------------------------

    def _fill(self, s: int, messages: list[bytes], e: int, now: float) -> bool:
        """Keep what of messages `s .. e-1` falls in holes; whether any did."""
        holes = self._holes
        i = bisect_right(holes, s, key=_start) - 1
        if i < 0 or holes[i][1] <= s:
            i += 1
        found = 0
        while i < len(holes) and holes[i][0] < e:
            hole = holes[i]
            a0, b0 = hole[0], hole[1]
            a = max(a0, s)
            b = min(b0, e)
            if not self._hold(a, messages[a - s : b - s]):
                i += 1  # no room: the hole stays, to be asked for again
                continue
            found += b - a
            self._answered(a, b, now)
            if a0 < a and b < b0:
                hole[1] = a
                holes.insert(i + 1, [b, b0, hole[2]])
                i += 2
            elif a0 < a:
                hole[1] = a
                i += 1
            elif b < b0:
                hole[0] = b
                i += 1
            else:
                del holes[i]
        self.duplicates += (e - s) - found
        for a, b in self._evicted:
            self._insert_hole(a, b)
        self._evicted.clear()
        return found > 0

    def _hold(self, a: int, piece: list[bytes]) -> bool:
        """Keep `piece` (messages from `a` on) until its turn, if there is room. Room is made
        by dropping pieces further ahead: what is nearer the next number is kept, so that
        filling a gap always makes progress."""
        n = len(piece)
        keys = self._keys
        if a != self._next and self._held_count + n > self.max_held:
            held = self._held
            while keys and keys[-1] > a and self._held_count + n > self.max_held:
                k = keys.pop()
                dropped = held.pop(k)
                self._held_count -= len(dropped)
                self._evicted.append((k, k + len(dropped)))
            if self._held_count + n > self.max_held:
                return False
        self._held[a] = piece
        self._held_count += n
        if not keys or keys[-1] < a:
            keys.append(a)
        else:
            insort(keys, a)
        return True

    def _answered(self, a: int, b: int, now: float) -> None:
        requests = self._requests
        if requests:
            for key in [k for k in requests if a <= k < b]:
                request = requests.pop(key)
                if not request[2]:  # a first try: its round trip is unambiguous (Karn)
                    self._sampled(now - request[3])

    def _sampled(self, rtt: float) -> None:
        srtt = rtt if self._srtt is None else self._srtt + (rtt - self._srtt) / 8
        self._srtt = srtt
        self._timeout = min(self.request_timeout, max(self.min_request_timeout, 4 * srtt))

    def _add_hole(self, a: int, b: int, now: float) -> None:
        holes = self._holes
        self.gaps += 1
        if holes and holes[-1][1] == a and not self.request_delay:
            holes[-1][1] = b
        else:
            # With a request delay each hole keeps its own age: one found later waits its
            # own delay, not what is left of an older neighbour's.
            holes.append([a, b, int(now * 1e9)])

    def _insert_hole(self, a: int, b: int) -> None:
        """Make `[a, b)` a hole again (its messages were dropped), merging neighbours."""
        holes = self._holes
        i = bisect_right(holes, a, key=_start)
        if i and holes[i - 1][1] == a:
            holes[i - 1][1] = b
            if i < len(holes) and holes[i][0] == b:
                holes[i - 1][1] = holes[i][1]
                del holes[i]
        elif i < len(holes) and holes[i][0] == b:
            holes[i][0] = a
        else:
            holes.insert(i, [a, b, 0])  # received once already: asked for without delay

    # --- requests ----------------------------------------------------------------------

    def _send(self, start: int, end: int) -> None:
        self._outbox.append(encode_request(self._field, start, end - start))
        self.requests_sent += 1

    def _plan(self, now: float) -> None:
        """Ask for the holes no request covers yet, earliest first, within the limits."""
        requests = self._requests
        self._planned = now
        budget = self.max_outstanding - len(requests)
        if budget <= 0 or not self._holes or not self._field:
            return
        # Holes found after `ripe` still wait for another line to fill them.
        ripe = int((now - self.request_delay) * 1e9) if self.request_delay else None
        keys = sorted(requests)
        nk = len(keys)
        ki = 0
        chunk = self.max_request_count
        deadline = now + self._timeout
        # Ask only for what there is room to hold: answers further ahead would be dropped.
        horizon = self._next + max(self.max_held, chunk)
        for hole in self._holes:
            a, b = hole[0], hole[1]
            if a >= horizon:
                return
            if ripe is not None and hole[2] > ripe:
                continue
            b = min(b, horizon)
            while ki < nk and keys[ki] < a:
                ki += 1
            cursor = a
            while cursor < b:
                if ki < nk and keys[ki] <= cursor:
                    cursor = max(cursor, int(requests[keys[ki]][0]))
                    ki += 1
                    continue
                limit = keys[ki] if ki < nk and keys[ki] < b else b
                end = min(limit, cursor + chunk)
                requests[cursor] = [end, deadline, 0, now]
                self._send(cursor, end)
                budget -= 1
                if not budget:
                    return
                cursor = end

    def _ripening(self) -> float | None:
        """When the first hole still waiting out the request delay may be asked for."""
        if not self.request_delay or not self._holes:
            return None
        after = int((self._planned - self.request_delay) * 1e9)
        waiting = [h[2] for h in self._holes if h[2] > after]
        # a microsecond late rather than early: the nanosecond ages are rounded down
        return min(waiting) / 1e9 + self.request_delay + 1e-6 if waiting else None

    def _clip(self, start: int, end: int) -> int:
        """`end` cut at the end of the hole `start` lies in (its tail may be filled now)."""
        holes = self._holes
        i = bisect_right(holes, start, key=_start) - 1
        if i >= 0 and holes[i][0] <= start < holes[i][1]:
            return min(end, holes[i][1])
        return end
