"""Slowing down wrong passwords, per source address and username.

Layer 3 (server driver). 10,000 wrong passwords had been answered in 2.7 s (issue 15). Now
each (source address, username) gets `_FREE_FAILURES` failed logins answered at once; after
that, its attempts are checked one at a time, `_BASE_DELAY` apart, doubling with each
failure up to `_MAX_DELAY`, however many connections they come on. A success clears the
record; so does `_FORGET_AFTER` seconds without a failure.

The real user is not locked out: from another address it is not slowed at all; from the
attacker's own address its login waits at most for the attempts queued before it (an attempt
that would wait longer than `_MAX_WAIT` is closed unanswered, so a queue cannot grow without
bound). The check itself (`Credentials`) stays constant-time; the delay is not a secret.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LoginThrottle"]

_FREE_FAILURES: Final = 5
_BASE_DELAY: Final = 0.1
_MAX_DELAY: Final = 5.0
_MAX_WAIT: Final = 10.0
_FORGET_AFTER: Final = 300.0
_MAX_RECORDS: Final = 100_000


class _Record:
    __slots__ = ("failures", "last", "not_before")

    def __init__(self) -> None:
        self.failures = 0
        self.not_before = 0.0  # no attempt is checked before this time
        self.last = 0.0  # the last failure


class LoginThrottle:
    """Failed logins per (source address, normalized username), and the wait they earn."""

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], _Record] = {}

    def __len__(self) -> int:
        return len(self._records)

    def _record(self, key: tuple[str, str], now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last > _FORGET_AFTER:
            del self._records[key]
            return None
        return record

    def wait(self, source: str, user: str, now: float) -> float | None:
        """Seconds this attempt waits before its check (its turn is reserved), or None if
        it would wait longer than `_MAX_WAIT`: then it is not checked at all."""
        key = (source, user)
        record = self._record(key, now)
        if record is None or record.failures < _FREE_FAILURES:
            return 0.0
        at = max(now, record.not_before)
        if at - now > _MAX_WAIT:
            return None
        record.not_before = at + _delay(record.failures)
        return at - now

    def failed(self, source: str, user: str, now: float) -> None:
        key = (source, user)
        record = self._record(key, now)
        if record is None:
            if len(self._records) >= _MAX_RECORDS:
                del self._records[next(iter(self._records))]  # the oldest
            record = self._records[key] = _Record()
        else:
            self._records[key] = self._records.pop(key)  # the newest again
        record.failures += 1
        record.last = now
        if record.failures >= _FREE_FAILURES:
            record.not_before = max(record.not_before, now + _delay(record.failures))

    def succeeded(self, source: str, user: str) -> None:
        self._records.pop((source, user), None)


def _delay(failures: int) -> float:
    return min(_MAX_DELAY, _BASE_DELAY * 2.0 ** (failures - _FREE_FAILURES))
