"""Decode one ITCH 5.0 message payload into its type, name and fields.

The layouts are ``itchfeed``'s (the optional ``itch`` extra); what this adds is the reading:
prices as exact `Decimal`, timestamps as a time of day, text fields trimmed, the published
length checked exactly (the native ``itchcpp`` backend of ``itchfeed`` accepts trailing bytes,
the pure one does not; both behave alike here), and never an exception for bad bytes from
`Decoder`, only a warning count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from .._errors import SoupBinTCPError
from ._layouts import LAYOUTS, Layout

__all__ = [
    "ItchDecodeError",
    "ItchMessage",
    "ItchNotInstalled",
    "TimeOfDay",
    "decode",
    "ensure_installed",
]

INSTALL_HINT: Final = "ITCH decoding needs the 'itch' extra: pip install 'soupbintcp[itch]'"
_NS_PER_DAY: Final = 86_400 * 10**9


class ItchDecodeError(SoupBinTCPError, ValueError):
    """The bytes are not a valid ITCH 5.0 message (unknown type, wrong length, bad text)."""


class ItchNotInstalled(SoupBinTCPError, ImportError):
    """The ``itchfeed`` library (the ``itch`` extra) is not installed."""

    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


@dataclass(frozen=True, slots=True, order=True)
class TimeOfDay:
    """A time of day to the nanosecond, as ITCH counts it: nanoseconds since midnight."""

    nanoseconds: int

    def __str__(self) -> str:
        """``HH:MM:SS.nnnnnnnnn`` (past 24 h the hour keeps counting: the data said so)."""
        seconds, ns = divmod(self.nanoseconds, 10**9)
        minutes, s = divmod(seconds, 60)
        h, m = divmod(minutes, 60)
        return f"{h:02d}:{m:02d}:{s:02d}.{ns:09d}"

    @property
    def within_a_day(self) -> bool:
        """Whether the value is a real time of day (ITCH timestamps are below 24 h)."""
        return 0 <= self.nanoseconds < _NS_PER_DAY


@dataclass(frozen=True, slots=True)
class ItchMessage:
    """One decoded message: its type letter, the specification's name for it, its fields.

    ``fields`` starts with ``stock_locate``, ``tracking_number`` and ``timestamp`` (a
    `TimeOfDay`) and goes on in wire order; its values are `int`, `str` (trimmed), `Decimal`
    (prices) or `TimeOfDay`. For bytes that did not decode (from `Decoder` only) ``name`` is
    ``"undecodable"``, ``fields`` holds ``hex`` and ``error``, and ``ok`` is false.
    """

    type: str
    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    ok: bool = True


def _message_classes() -> dict[bytes, Any]:
    try:
        from itch.messages import messages
    except ImportError:
        raise ItchNotInstalled() from None
    return dict(messages)


_classes: dict[bytes, Any] | None = None


def _alpha(value: Any) -> str:
    return bytes(value).decode("ascii").rstrip(" ")  # UnicodeDecodeError: said by the caller


_READERS: Final[dict[str, Any]] = {
    "alpha": _alpha,
    "int": int,
    "price4": lambda value: Decimal(value).scaleb(-4),
    "price8": lambda value: Decimal(value).scaleb(-8),
    "ns": TimeOfDay,
    "s": lambda value: TimeOfDay(value * 10**9),
}
# Per message type: (field name, itchfeed attribute, reader), resolved once.
_PLANS: Final = {
    letter: tuple((f.name, f.attribute, _READERS[f.kind]) for f in layout.fields)
    for letter, layout in LAYOUTS.items()
}


def _layout_of(payload: bytes) -> Layout:
    if not payload:
        raise ItchDecodeError("empty message")
    letter = chr(payload[0])
    layout = LAYOUTS.get(letter)
    if layout is None:
        raise ItchDecodeError(f"unknown ITCH 5.0 message type {payload[:1]!r}")
    if len(payload) != layout.size:
        raise ItchDecodeError(
            f"{layout.name} ({letter!r}) is {layout.size} bytes, this one {len(payload)}"
        )
    return layout


def ensure_installed() -> None:
    """Raise `ItchNotInstalled` (with the install hint) unless ``itchfeed`` can be used."""
    global _classes  # itchfeed is imported on first use: it is optional
    if _classes is None:
        _classes = _message_classes()


def decode(payload: bytes) -> ItchMessage:
    """Decode one ITCH 5.0 message; raise `ItchDecodeError` if it is not one."""
    if _classes is None:
        ensure_installed()
    assert _classes is not None
    payload = bytes(payload)
    layout = _layout_of(payload)
    letter = chr(payload[0])
    try:
        raw = _classes[payload[:1]](payload)
    except Exception as exc:  # itchfeed's own complaint, whatever its type: bad bytes
        raise ItchDecodeError(f"{layout.name} ({letter!r}): {exc}") from None
    fields: dict[str, Any] = {
        "stock_locate": int(raw.stock_locate),
        "tracking_number": int(raw.tracking_number),
        "timestamp": TimeOfDay(int(raw.timestamp)),
    }
    for name, attribute, read in _PLANS[letter]:
        value = getattr(raw, attribute)
        try:
            fields[name] = read(value)
        except UnicodeDecodeError:
            raise ItchDecodeError(
                f"{layout.name} {name}: not ASCII text: {bytes(value)!r}"
            ) from None
    return ItchMessage(letter, layout.name, fields)
