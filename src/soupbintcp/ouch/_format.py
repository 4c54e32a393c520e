"""Reading OUCH messages: their fields as plain values, one text line, one JSON line.

Codes are shown as their letters (``side=B``), prices as exact dollars (``price=100.0000``),
timestamps as ``HH:MM:SS.nnnnnnnnn``, options by their names (``MinQty=100``).
"""

from __future__ import annotations

import json
from decimal import Decimal
from enum import Enum
from typing import Any, cast

from ._fields import Message, to_decimal
from ._options import (
    DiscretionPegOffset,
    DiscretionPrice,
    DisplayPrice,
    PegOffset,
    UnknownOption,
)

__all__ = ["describe", "to_json", "to_text"]

_PRICES = frozenset({"price", "execution_price"})
_PRICE_OPTIONS = (DiscretionPrice, DisplayPrice, PegOffset, DiscretionPegOffset)


def _time(ns: int) -> str:
    seconds, fraction = divmod(ns, 10**9)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{fraction:09d}"


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    return value


def describe(message: Message) -> dict[str, Any]:
    """``type``, ``name`` and the fields in wire order as plain values (prices `Decimal`)."""
    out: dict[str, Any] = {"type": message.TYPE, "name": type(message).__name__}
    values = cast("tuple[Any, ...]", message)
    for name, value in zip(type(message)._fields, values, strict=True):  # type: ignore[attr-defined]
        if name == "appendage":
            for option in value:
                if type(option) is UnknownOption:
                    out[f"tag{option.tag}"] = option.value.hex()
                elif isinstance(option, _PRICE_OPTIONS):
                    out[type(option).__name__] = to_decimal(option[0])
                else:
                    out[type(option).__name__] = _plain(option[0])
        elif name == "timestamp":
            out[name] = _time(value)
        elif name in _PRICES:
            out[name] = to_decimal(value)
        else:
            out[name] = _plain(value)
    return out


def to_text(message: Message) -> str:
    """One line for people: type, name, time, then ``field=value`` in wire order."""
    fields = describe(message)
    letter, name = fields.pop("type"), fields.pop("name")
    at = fields.pop("timestamp", None)
    rest = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{letter} {name}{f' at {at}' if at else ''}: {rest}".rstrip(": ")


def to_json(message: Message) -> str:
    """One line of JSON (no newline); prices are exact decimal numbers."""
    fields = describe(message)
    exact = {k: str(v) for k, v in fields.items() if isinstance(v, Decimal)}
    for k in exact:
        fields[k] = f"\x00{k}\x00"
    line = json.dumps(fields)
    for k, number in exact.items():
        line = line.replace(json.dumps(f"\x00{k}\x00"), number, 1)
    return line
