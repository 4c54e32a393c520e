"""The five inbound messages (client -> host, reference §2), as named tuples of their fields.

Field order is wire order; ``KINDS`` repeats the spec's table for the codec. Prices are
integer ticks (``price_decimal`` gives the exact dollars); text fields are `str` without
their padding; an appendage is a tuple of options (`soupbintcp.ouch.MinQty` ...).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from ._enums import (
    Capacity,
    CrossType,
    Display,
    IntermarketSweepEligibility,
    Side,
    TimeInForce,
)
from ._fields import PRICE, U32, USER_REF_NUM, Message, alpha, code, to_decimal

__all__ = [
    "AccountQueryRequest",
    "CancelOrderRequest",
    "EnterOrder",
    "ModifyOrderRequest",
    "ReplaceOrderRequest",
]

_ENTER_TAGS = frozenset({2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 24, 25})
_REPLACE_TAGS = _ENTER_TAGS - {2, 14}  # not Firm, not Route


class _EnterOrder(NamedTuple):
    user_ref_num: int
    side: Side
    quantity: int
    symbol: str
    price: int
    time_in_force: TimeInForce = TimeInForce.DAY
    display: Display = Display.VISIBLE
    capacity: Capacity = Capacity.AGENCY
    intermarket_sweep_eligibility: IntermarketSweepEligibility = (
        IntermarketSweepEligibility.NOT_ELIGIBLE
    )
    cross_type: CrossType = CrossType.CONTINUOUS
    cl_ord_id: str = ""
    appendage: tuple[Any, ...] = ()


class EnterOrder(_EnterOrder, Message):
    """``O`` Enter Order (§2.1): 47 bytes, then the appendage."""

    __slots__ = ()
    TYPE, INBOUND, FIXED, TAGS = "O", True, 47, _ENTER_TAGS
    KINDS = (
        USER_REF_NUM,
        code(Side),
        U32,
        alpha(8),
        PRICE,
        code(TimeInForce),
        code(Display, "YNA"),
        code(Capacity),
        code(IntermarketSweepEligibility),
        code(CrossType),
        alpha(14),
    )

    @property
    def price_decimal(self) -> Decimal:
        """The limit price in dollars, exactly."""
        return to_decimal(self.price)


class _ReplaceOrderRequest(NamedTuple):
    orig_user_ref_num: int
    user_ref_num: int
    quantity: int
    price: int
    time_in_force: TimeInForce = TimeInForce.DAY
    display: Display = Display.VISIBLE
    intermarket_sweep_eligibility: IntermarketSweepEligibility = (
        IntermarketSweepEligibility.NOT_ELIGIBLE
    )
    cl_ord_id: str = ""
    appendage: tuple[Any, ...] = ()


class ReplaceOrderRequest(_ReplaceOrderRequest, Message):
    """``U`` Replace Order Request (§2.2): 40 bytes, then the appendage.

    ``quantity`` is the chain's whole liability, executed shares included (§5.3).
    """

    __slots__ = ()
    TYPE, INBOUND, FIXED, TAGS = "U", True, 40, _REPLACE_TAGS
    KINDS = (
        USER_REF_NUM,
        USER_REF_NUM,
        U32,
        PRICE,
        code(TimeInForce, "0356"),
        code(Display, "YNA"),
        code(IntermarketSweepEligibility),
        alpha(14),
    )

    @property
    def price_decimal(self) -> Decimal:
        """The replacement's price in dollars, exactly."""
        return to_decimal(self.price)


class _CancelOrderRequest(NamedTuple):
    user_ref_num: int
    quantity: int = 0


class CancelOrderRequest(_CancelOrderRequest, Message):
    """``X`` Cancel Order Request (§2.3): 9 bytes. ``quantity`` is the intended remaining size."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "X", True, 9
    KINDS = (USER_REF_NUM, U32)


class _ModifyOrderRequest(NamedTuple):
    user_ref_num: int
    side: Side
    quantity: int


class ModifyOrderRequest(_ModifyOrderRequest, Message):
    """``M`` Modify Order Request (§2.4): 10 bytes; new side (among sells) and size."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "M", True, 10
    KINDS = (USER_REF_NUM, code(Side), U32)


class _AccountQueryRequest(NamedTuple):
    pass


class AccountQueryRequest(_AccountQueryRequest, Message):
    """``Q`` Account Query Request (§2.5): the type byte alone."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "Q", True, 1
    KINDS = ()
