"""TagValue options (reference §1.3, Appendix B): one class per tag, and their codec.

An appendage is a tuple of options, in wire order: ``(MinQty(100), Firm("ABCD"))``. Each
option class names its tag (``TAG``) and value size (``SIZE``); an element on the wire is
Length (= 1 + SIZE), the tag, then the value. Tags this edition does not define decode as
`UnknownOption` with the raw value bytes (unless strict), so a newer peer's options survive.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple

from ._enums import (
    BboWeightIndicator,
    CustomerType,
    HandleInst,
    PostOnly,
    PriceType,
    SharesLocated,
    TradeNow,
)
from ._errors import OuchEncodeError, TagValueError, TruncatedTag, UnknownTag

__all__ = [
    "OPTION_CLASSES",
    "BboWeight",
    "CustomerTypeOption",
    "DiscretionPegOffset",
    "DiscretionPrice",
    "DiscretionPriceType",
    "DisplayPrice",
    "DisplayQuantity",
    "ExpireTime",
    "Firm",
    "GroupID",
    "HandleInstOption",
    "MaxFloor",
    "MinQty",
    "Option",
    "PegOffset",
    "PostOnlyOption",
    "PriceTypeOption",
    "RandomReserves",
    "Route",
    "SecondaryOrdRefNum",
    "SharesLocatedOption",
    "TradeNowOption",
    "UnknownOption",
    "decode_appendage",
    "encode_appendage",
    "find_option",
]


class Option:
    """Base of the option classes: ``TAG`` and ``SIZE`` (bytes of the value) per class."""

    __slots__ = ()
    TAG: ClassVar[int]
    SIZE: ClassVar[int]


class _Int(NamedTuple):
    value: int


class _Str(NamedTuple):
    value: str


class SecondaryOrdRefNum(_Int, Option):
    """Tag 1 (Restated only): second reference number shown on market data."""

    __slots__ = ()
    TAG, SIZE = 1, 8


class Firm(_Str, Option):
    """Tag 2: entering firm's id, 4 upper-case letters; spaces mean the account's default."""

    __slots__ = ()
    TAG, SIZE = 2, 4


class MinQty(_Int, Option):
    """Tag 3: minimum quantity (a round lot); 0 means none."""

    __slots__ = ()
    TAG, SIZE = 3, 4


class CustomerTypeOption(_Str, Option):
    """Tag 4: `CustomerType`."""

    __slots__ = ()
    TAG, SIZE = 4, 1


class MaxFloor(_Int, Option):
    """Tag 5: shares to show (the displayed part); 0 means no max floor."""

    __slots__ = ()
    TAG, SIZE = 5, 4


class PriceTypeOption(_Str, Option):
    """Tag 6: `PriceType`."""

    __slots__ = ()
    TAG, SIZE = 6, 1


class PegOffset(_Int, Option):
    """Tag 7: signed offset in price ticks (4 implied decimals), two's complement (§6 A7)."""

    __slots__ = ()
    TAG, SIZE = 7, 4


class DiscretionPrice(_Int, Option):
    """Tag 9: discretion price in ticks (4 implied decimals)."""

    __slots__ = ()
    TAG, SIZE = 9, 8


class DiscretionPriceType(_Str, Option):
    """Tag 10: `PriceType` of the discretion price (L, P, M or R)."""

    __slots__ = ()
    TAG, SIZE = 10, 1


class DiscretionPegOffset(_Int, Option):
    """Tag 11: signed offset of the pegged discretion price, in ticks."""

    __slots__ = ()
    TAG, SIZE = 11, 4


class PostOnlyOption(_Str, Option):
    """Tag 12: `PostOnly`."""

    __slots__ = ()
    TAG, SIZE = 12, 1


class RandomReserves(_Int, Option):
    """Tag 13: shares to use for random reserve."""

    __slots__ = ()
    TAG, SIZE = 13, 4


class Route(_Str, Option):
    """Tag 14: routing instruction, 4 characters (left-justified, §6 R6)."""

    __slots__ = ()
    TAG, SIZE = 14, 4


class ExpireTime(_Int, Option):
    """Tag 15: seconds the order lives (< 86,400); required with TIF GTT."""

    __slots__ = ()
    TAG, SIZE = 15, 4


class TradeNowOption(_Str, Option):
    """Tag 16: `TradeNow`."""

    __slots__ = ()
    TAG, SIZE = 16, 1


class HandleInstOption(_Str, Option):
    """Tag 17: `HandleInst`."""

    __slots__ = ()
    TAG, SIZE = 17, 1


class BboWeight(_Str, Option):
    """Tag 18 (outbound only): `BboWeightIndicator`."""

    __slots__ = ()
    TAG, SIZE = 18, 1


class DisplayQuantity(_Int, Option):
    """Tag 22 (Restated only): new displayed quantity."""

    __slots__ = ()
    TAG, SIZE = 22, 4


class DisplayPrice(_Int, Option):
    """Tag 23 (Restated only): new displayed price in ticks."""

    __slots__ = ()
    TAG, SIZE = 23, 8


class GroupID(_Int, Option):
    """Tag 24: customer group id (u16); 0 means none."""

    __slots__ = ()
    TAG, SIZE = 24, 2


class SharesLocatedOption(_Str, Option):
    """Tag 25: `SharesLocated`."""

    __slots__ = ()
    TAG, SIZE = 25, 1


class UnknownOption(NamedTuple):
    """A tag this edition does not define, kept with its raw value bytes."""

    tag: int
    value: bytes


#: Every Appendix B option class by tag number.
OPTION_CLASSES: dict[int, type[Option]] = {
    cls.TAG: cls
    for cls in (
        SecondaryOrdRefNum,
        Firm,
        MinQty,
        CustomerTypeOption,
        MaxFloor,
        PriceTypeOption,
        PegOffset,
        DiscretionPrice,
        DiscretionPriceType,
        DiscretionPegOffset,
        PostOnlyOption,
        RandomReserves,
        Route,
        ExpireTime,
        TradeNowOption,
        HandleInstOption,
        BboWeight,
        DisplayQuantity,
        DisplayPrice,
        GroupID,
        SharesLocatedOption,
    )
}

_ENUM_OF: dict[int, type[StrEnum]] = {
    4: CustomerType,
    6: PriceType,
    10: PriceType,
    12: PostOnly,
    16: TradeNow,
    17: HandleInst,
    18: BboWeightIndicator,
    25: SharesLocated,
}
_INT_FORMAT = {1: ">Q", 3: ">I", 5: ">I", 7: ">i", 9: ">Q", 11: ">i", 13: ">I", 15: ">I"}
_INT_FORMAT.update({22: ">I", 23: ">Q", 24: ">H"})


def _codec(tag: int) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """(value -> bytes, bytes -> value) for one tag."""
    size = OPTION_CLASSES[tag].SIZE
    if tag in _INT_FORMAT:
        packer = struct.Struct(_INT_FORMAT[tag])
        return packer.pack, lambda raw: packer.unpack(raw)[0]
    if tag in _ENUM_OF:
        enum = _ENUM_OF[tag]
        codes = {member: member.value.encode("ascii") for member in enum}
        if tag == 10:  # DiscretionPriceType: only the four base price types
            codes = {m: c for m, c in codes.items() if m.value in "LPMR"}
        members = {c: m for m, c in codes.items()}
        return codes.__getitem__, members.__getitem__

    def encode_text(value: str) -> bytes:
        raw = value.encode("ascii")
        if len(raw) > size:
            raise ValueError(f"{value!r} is longer than {size} characters")
        return raw.ljust(size)

    return encode_text, lambda raw: raw.decode("ascii").rstrip(" ")


_CODECS = {tag: _codec(tag) for tag in OPTION_CLASSES}
_HEADERS = {tag: bytes((cls.SIZE + 1, tag)) for tag, cls in OPTION_CLASSES.items()}

AppendageItem = Option | UnknownOption


def encode_appendage(options: Iterable[Any], allowed: frozenset[int], where: str) -> bytes:
    """The TagValue bytes of ``options``; each must be allowed in the message ``where``."""
    parts = []
    for option in options:
        if type(option) is UnknownOption:
            tag, raw = option
            if not 0 <= tag <= 255 or len(raw) > 254:
                raise OuchEncodeError(f"{where}: unknown option {option!r} does not fit")
            parts.append(bytes((len(raw) + 1, tag)) + raw)
            continue
        tag = getattr(option, "TAG", -1)
        if tag not in allowed:
            raise OuchEncodeError(f"{where} does not allow option {option!r}")
        try:
            parts.append(_HEADERS[tag] + _CODECS[tag][0](option[0]))
        except (KeyError, ValueError, struct.error, UnicodeEncodeError) as exc:
            raise OuchEncodeError(f"{where}: cannot encode {option!r}: {exc}") from None
    return b"".join(parts)


def decode_appendage(
    payload: bytes, start: int, end: int, allowed: frozenset[int], strict: bool
) -> tuple[AppendageItem, ...]:
    """The options in ``payload[start:end]``; offsets in errors count from the message start."""
    items: list[AppendageItem] = []
    at = start
    while at < end:
        length = payload[at]
        if length == 0 or at + 1 + length > end:
            raise TruncatedTag(f"TagValue element of length {length} runs past the end", at)
        tag = payload[at + 1]
        raw = bytes(payload[at + 2 : at + 1 + length])
        cls = OPTION_CLASSES.get(tag)
        if strict and (cls is None or tag not in allowed):
            raise UnknownTag(f"tag {tag} is not allowed here", at + 1)
        if cls is None:
            items.append(UnknownOption(tag, raw))
        else:
            if len(raw) != cls.SIZE:
                raise TagValueError(
                    f"tag {tag} ({cls.__name__}) has {len(raw)} value bytes, not {cls.SIZE}", at
                )
            try:
                value = _CODECS[tag][1](raw)
            except (KeyError, UnicodeDecodeError):
                raise TagValueError(
                    f"tag {tag} ({cls.__name__}): bad value {raw!r}", at + 2
                ) from None
            items.append(cls(value))  # type: ignore[call-arg]
        at += 1 + length
    return tuple(items)


def find_option(options: Iterable[Any], cls: type[Option]) -> Any:
    """The value of option ``cls`` in an appendage, or None when it is absent."""
    for option in options:
        if type(option) is cls:
            return option[0]  # type: ignore[index]
    return None
