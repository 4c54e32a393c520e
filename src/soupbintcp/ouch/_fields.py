"""Field kinds of the message tables, the `Message` base, and exact prices (reference §1.2).

A message class lists its fields (after the type byte) as kinds in wire order; `_codec`
builds each class's encoder and decoder from that list once, at import. Prices travel as
integer ticks (4 implied decimals); `to_decimal` and `to_ticks` convert exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, Final, NamedTuple

from ._errors import OuchEncodeError

__all__ = [
    "MARKET_PRICE",
    "MAX_PRICE",
    "PRICE_SCALE",
    "Kind",
    "Message",
    "alpha",
    "code",
    "to_decimal",
    "to_ticks",
]

#: Ticks per dollar: prices have 4 implied decimals ($1.2345 is 12345).
PRICE_SCALE: Final = 10_000
#: The highest limit price, $199,999.9900.
MAX_PRICE: Final = 1_999_999_900
#: A market order for a cross: $214,748.3647 (0x7FFFFFFF) in the 8-byte field.
MARKET_PRICE: Final = 0x7FFFFFFF


def to_decimal(ticks: int) -> Decimal:
    """The exact dollar value of a price in ticks: ``to_decimal(12345) == Decimal("1.2345")``."""
    return Decimal(ticks).scaleb(-4)


def to_ticks(price: Decimal | str | int) -> int:
    """Ticks of a dollar price; raise `OuchEncodeError` unless it is a whole number of ticks."""
    scaled = Decimal(price).scaleb(4)
    if scaled != scaled.to_integral_value():
        raise OuchEncodeError(f"price {price} has more than 4 decimals")
    return int(scaled)


class Kind(NamedTuple):
    """How one fixed field is laid out: a struct code, a text width, or a code set."""

    struct_code: str
    text_width: int = 0
    #: raw struct value -> enumeration member (None: a plain number or text)
    codes: Mapping[Any, Enum] | None = None


U16: Final = Kind("H")
U32: Final = Kind("I")
U64: Final = Kind("Q")
PRICE: Final = Kind("Q")
TIMESTAMP: Final = Kind("Q")
USER_REF_NUM: Final = Kind("I")


def alpha(width: int) -> Kind:
    """Alpha text of ``width`` bytes: left-justified, right-padded with spaces."""
    return Kind(f"{width}s", width)


def code(enum: type[Enum], allowed: Iterable[str] | None = None) -> Kind:
    """One code of ``enum`` (only those in ``allowed`` if given): 1 byte, or u16 for ints."""
    members = [m for m in enum if allowed is None or m.value in allowed]
    if isinstance(members[0].value, int):
        return Kind("H", 0, {m.value: m for m in members})
    return Kind("c", 0, {m.value.encode("ascii"): m for m in members})


class Message:
    """Base of every OUCH message class (they are also named tuples of their fields).

    ``TYPE`` is the type letter, ``INBOUND`` the direction, ``KINDS`` the fixed fields after
    the type byte, ``TAGS`` the option tags allowed (None: no Appendage Length field),
    ``FIXED`` the fixed part's length in bytes.
    """

    __slots__ = ()
    TYPE: ClassVar[str]
    INBOUND: ClassVar[bool]
    KINDS: ClassVar[tuple[Kind, ...]]
    TAGS: ClassVar[frozenset[int] | None] = None
    FIXED: ClassVar[int]

    def encode(self) -> bytes:
        """The message's bytes (a SoupBinTCP payload); `OuchEncodeError` if a value won't fit."""
        raise NotImplementedError  # replaced per class by _codec at import
