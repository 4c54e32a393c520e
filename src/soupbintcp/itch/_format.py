"""Reading decoded messages: a `Decoder` that never raises, one text line, one JSON line."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from typing import Any, Final

from ._decode import ItchDecodeError, ItchMessage, TimeOfDay, decode

__all__ = ["Decoder", "to_json", "to_jsonable", "to_text"]


class Decoder:
    """Decodes message after message; bytes that are not ITCH 5.0 count as a warning.

    `decode` never raises for bad bytes: it returns an `ItchMessage` with ``ok`` false,
    ``name`` ``"undecodable"`` and the bytes as hex, and adds one to `warnings`. (A missing
    ``itch`` extra still raises `ItchNotInstalled`, at the first call: that is no data fault.)
    """

    __slots__ = ("warnings",)

    def __init__(self) -> None:
        self.warnings = 0

    def decode(self, payload: bytes) -> ItchMessage:
        """The message decoded, or an undecodable one (``ok`` false) counted as a warning."""
        try:
            return decode(payload)
        except ItchDecodeError as exc:
            self.warnings += 1
            letter = chr(payload[0]) if payload else ""
            fields = {"hex": bytes(payload).hex(), "error": str(exc)}
            return ItchMessage(letter, "undecodable", fields, ok=False)


def to_jsonable(message: ItchMessage) -> dict[str, Any]:
    """``type``, ``name`` and the fields in one flat dict; times as ``HH:MM:SS.nnnnnnnnn``.

    Prices stay `Decimal` so nothing is rounded: `to_json` writes them as exact JSON numbers
    (``json.dumps(d, default=str)`` would write them as strings).
    """
    out: dict[str, Any] = {"type": message.type, "name": message.name}
    for key, value in message.fields.items():
        out[key] = str(value) if isinstance(value, TimeOfDay) else value
    return out


# Decimals are written by swapping each for a token json.dumps leaves alone, then the token
# for the exact number: one json.dumps call a message (five times faster than one a field).
# The nonce keeps a text field that happens to look like a token from ever being one.
_NONCE: Final = secrets.token_hex(8)


def to_json(message: ItchMessage) -> str:
    """One line of JSON (no newline), prices as exact decimal numbers."""
    out = to_jsonable(message)
    exact: list[str] = []
    for key, value in out.items():
        if isinstance(value, Decimal):
            out[key] = f"\x00{_NONCE}{len(exact)}\x00"
            exact.append(str(value))  # Decimal('189.2500') is written 189.2500, exactly
    line = json.dumps(out)
    for i, number in enumerate(exact):
        line = line.replace(f'"\\u0000{_NONCE}{i}\\u0000"', number, 1)
    return line


def to_text(message: ItchMessage) -> str:
    """One line for people: type, name, time of day, then ``field=value`` in wire order."""
    if not message.ok:
        fields = message.fields
        return f"{message.type or '-'} undecodable ({fields['error']}): {fields['hex']}"
    fields = dict(message.fields)
    timestamp = fields.pop("timestamp")
    rest = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{message.type} {message.name} at {timestamp}: {rest}"
