"""A messages-per-second limit that queues rather than fails: a token bucket, sans-IO.

The time is passed in (`now`, seconds on any monotonic clock), so tests drive it by hand.
"""

from __future__ import annotations

__all__ = ["Throttle"]


class Throttle:
    """At most `rate` messages per second on average, in bursts of at most `burst`.

    `rate` None: no limit. The burst defaults to a tenth of a second's worth (at least 1):
    a venue counting per second sees at most `rate` in any second.
    """

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float | None, burst: int | None = None, now: float = 0.0) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"the rate must be positive, not {rate}")
        self._rate = rate
        self._burst = float(burst if burst is not None else max(1, int((rate or 0) / 10)))
        self._tokens = self._burst
        self._last = now

    @property
    def rate(self) -> float | None:
        return self._rate

    def _refill(self, now: float) -> None:
        assert self._rate is not None
        if now > self._last:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now

    def take(self, now: float, wanted: int) -> int:
        """How many of `wanted` messages may go now (they are counted as gone)."""
        if self._rate is None:
            return wanted
        self._refill(now)
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    def delay(self, now: float) -> float:
        """Seconds until the next message may go (0.0: now)."""
        if self._rate is None:
            return 0.0
        self._refill(now)
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self._rate
