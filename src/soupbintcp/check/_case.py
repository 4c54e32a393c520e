"""A conformance case as data: its id, how binding it is, what it sends and expects.

Layer 4. The catalogue is the list of `Case` objects the case modules register; the procedure
of each is a coroutine that raises `Failed` (one line, with the bytes involved) or
`NotApplicable`, or returns when the implementation under test behaved.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Case",
    "Failed",
    "Level",
    "NotApplicable",
    "Outcome",
    "Result",
    "Target",
    "shown",
]


class Level(enum.Enum):
    """How binding the rule is, in the spec's own word (or, where it is silent, what follows
    from a rule it states: such cases say so in their `quote`)."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class Target(enum.Enum):
    """What kind of implementation a case tests."""

    SERVER = "server"
    CLIENT = "client"
    MOLD_TRANSMITTER = "mold-transmitter"
    MOLD_LISTENER = "mold-listener"


class Outcome(enum.Enum):
    """How a case ended: passed, failed, or could not be judged here."""

    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    NOT_APPLICABLE = "n/a"


class Failed(Exception):
    """The implementation broke the case's rule; the message is the one-line reason."""


class NotApplicable(Exception):
    """The case cannot be judged against this implementation (the message says why)."""


@dataclass(frozen=True)
class Case:
    """One rule of the spec and the procedure that tests it."""

    id: str
    level: Level
    target: Target
    #: The spec's sentence (or the rule it follows from) that makes the case binding.
    quote: str
    sends: str
    expects: str
    run: Callable[[Any], Awaitable[None]] = field(repr=False, compare=False)
    #: "soupbintcp" or "omega": the dialects the case applies to.
    dialect: str = "soupbintcp"

    @property
    def section(self) -> str:
        """The spec version and section, e.g. ``4.10/2.3.1``."""
        return self.id.rsplit("/", 1)[0]


@dataclass(frozen=True)
class Result:
    """What one case found."""

    case: Case
    outcome: Outcome
    reason: str = ""
    seconds: float = 0.0

    @property
    def must_failed(self) -> bool:
        """Whether this is a failed MUST case (such a failure makes the exit status 1)."""
        return self.outcome is Outcome.FAIL and self.case.level is Level.MUST


def shown(data: bytes, limit: int = 40) -> str:
    """Bytes as a failure line shows them: their repr, cut at `limit` with the total length."""
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data):,} bytes)"
