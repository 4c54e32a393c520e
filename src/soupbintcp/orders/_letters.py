"""The application's code letters (side, time in force, ...) checked and turned into the OUCH
codec's members, before a UserRefNum is spent on a message that could not go.

Layer 4 (order client): split from `_core` so that each module stays small.
"""

from __future__ import annotations

import enum
from typing import Any

import soupbintcp.ouch as ouch

from ..ouch._fast import enter_order_codes

__all__ = ["CAPACITY", "CROSS", "DISPLAY", "ISO", "SIDE", "TIF", "enter_letters", "member"]


def _letters(kind: type[enum.StrEnum]) -> dict[str, Any]:
    """Letter -> member: a dict lookup checks a letter 20 times faster than `Enum(letter)`."""
    return {member.value: member for member in kind}


SIDE = _letters(ouch.Side)
TIF = _letters(ouch.TimeInForce)
DISPLAY = _letters(ouch.Display)
CAPACITY = _letters(ouch.Capacity)
ISO = _letters(ouch.IntermarketSweepEligibility)
CROSS = _letters(ouch.CrossType)


def member(table: dict[str, Any], value: str, what: str) -> Any:
    """The member for letter `value` (ValueError naming `what` and the letters allowed)."""
    try:
        return table[value]
    except KeyError:
        raise ValueError(f"{what} is one of {', '.join(table)}, not {value!r}") from None


#: Enter Order letters already checked -> their members (at most the product of the
#: tables' sizes, a few thousand: only valid combinations are kept).
ENTER_LETTERS: dict[tuple[str, ...], tuple[Any, ...]] = {}


def enter_letters(letters: tuple[str, str, str, str, str, str]) -> tuple[Any, ...]:
    """Enter Order's six letters (side, time in force, display, capacity, intermarket sweep,
    cross type) as members, and their bytes for `encode_enter_order` last (None: a value
    the codec refuses in Enter Order). Kept in `ENTER_LETTERS`: the next look-up is one step
    (six checks cost ~2 µs)."""
    side, time_in_force, display, capacity, intermarket_sweep, cross_type = letters
    members = (
        member(SIDE, side, "side"), member(TIF, time_in_force, "time_in_force"),
        member(DISPLAY, display, "display"), member(CAPACITY, capacity, "capacity"),
        member(ISO, intermarket_sweep, "intermarket_sweep"),
        member(CROSS, cross_type, "cross_type"),
    )  # fmt: skip
    out = (*members, enter_order_codes(*members))
    ENTER_LETTERS[letters] = out
    return out
