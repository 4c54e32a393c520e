"""The fourteen outbound messages (host -> client, reference §3), as named tuples.

Every one starts with ``timestamp``: nanoseconds since midnight. Field order is wire order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from ._enums import (
    BrokenTradeReason,
    CancelReason,
    Capacity,
    CrossType,
    Display,
    EventCode,
    IntermarketSweepEligibility,
    LiquidityFlag,
    OrderState,
    RejectReason,
    RestatedReason,
    Side,
    TimeInForce,
)
from ._fields import PRICE, TIMESTAMP, U32, U64, USER_REF_NUM, Message, alpha, code, to_decimal

__all__ = [
    "AccountQueryResponse",
    "AiqCanceled",
    "BrokenTrade",
    "CancelPending",
    "CancelReject",
    "OrderAccepted",
    "OrderCanceled",
    "OrderExecuted",
    "OrderModified",
    "OrderPriorityUpdate",
    "OrderReplaced",
    "OrderRestated",
    "Rejected",
    "SystemEvent",
]

_ACCEPTED_TAGS = frozenset({2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 24, 25})
_REPLACED_TAGS = frozenset({2, 3, 5, 6, 12, 15, 16, 17, 18})
_RESTATED_TAGS = frozenset({1, 22, 23})
_ISE = IntermarketSweepEligibility


class _SystemEvent(NamedTuple):
    timestamp: int
    event_code: EventCode


class SystemEvent(_SystemEvent, Message):
    """``S`` System Event (§3.1): start or end of day."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "S", False, 10
    KINDS = (TIMESTAMP, code(EventCode))


class _OrderAccepted(NamedTuple):
    timestamp: int
    user_ref_num: int
    side: Side
    quantity: int
    symbol: str
    price: int
    time_in_force: TimeInForce
    display: Display
    order_reference_number: int
    capacity: Capacity
    intermarket_sweep_eligibility: IntermarketSweepEligibility
    cross_type: CrossType
    order_state: OrderState
    cl_ord_id: str
    appendage: tuple[Any, ...] = ()


class OrderAccepted(_OrderAccepted, Message):
    """``A`` Order Accepted (§3.2): 64 bytes, then the appendage."""

    __slots__ = ()
    TYPE, INBOUND, FIXED, TAGS = "A", False, 64, _ACCEPTED_TAGS
    KINDS = (
        TIMESTAMP,
        USER_REF_NUM,
        code(Side),
        U32,
        alpha(8),
        PRICE,
        code(TimeInForce),
        code(Display),
        U64,
        code(Capacity),
        code(_ISE),
        code(CrossType),
        code(OrderState),
        alpha(14),
    )

    @property
    def price_decimal(self) -> Decimal:
        """The accepted price in dollars, exactly."""
        return to_decimal(self.price)


class _OrderReplaced(NamedTuple):
    timestamp: int
    orig_user_ref_num: int
    user_ref_num: int
    side: Side
    quantity: int
    symbol: str
    price: int
    time_in_force: TimeInForce
    display: Display
    order_reference_number: int
    capacity: Capacity
    intermarket_sweep_eligibility: IntermarketSweepEligibility
    cross_type: CrossType
    order_state: OrderState
    cl_ord_id: str
    appendage: tuple[Any, ...] = ()


class OrderReplaced(_OrderReplaced, Message):
    """``U`` Order Replaced (§3.3): 68 bytes, then the appendage. ``quantity`` is open shares."""

    __slots__ = ()
    TYPE, INBOUND, FIXED, TAGS = "U", False, 68, _REPLACED_TAGS
    KINDS = (
        TIMESTAMP,
        USER_REF_NUM,
        USER_REF_NUM,
        code(Side),
        U32,
        alpha(8),
        PRICE,
        code(TimeInForce),
        code(Display),
        U64,
        code(Capacity),
        code(_ISE),
        code(CrossType),
        code(OrderState),
        alpha(14),
    )

    @property
    def price_decimal(self) -> Decimal:
        """The replacement's accepted price in dollars, exactly."""
        return to_decimal(self.price)


class _OrderCanceled(NamedTuple):
    timestamp: int
    user_ref_num: int
    quantity: int
    reason: CancelReason


class OrderCanceled(_OrderCanceled, Message):
    """``C`` Order Canceled (§3.4): 18 bytes; ``quantity`` is this event's decrement."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "C", False, 18
    KINDS = (TIMESTAMP, USER_REF_NUM, U32, code(CancelReason))


class _AiqCanceled(NamedTuple):
    timestamp: int
    user_ref_num: int
    decrement_shares: int
    reason: CancelReason
    quantity_prevented_from_trading: int
    execution_price: int
    liquidity_flag: LiquidityFlag
    aiq_strategy: str


class AiqCanceled(_AiqCanceled, Message):
    """``D`` AIQ Canceled (§3.5): 32 bytes. ``reason`` is always ``Q`` (self-match prevention)."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "D", False, 32
    KINDS = (
        TIMESTAMP,
        USER_REF_NUM,
        U32,
        code(CancelReason, "Q"),
        U32,
        PRICE,
        code(LiquidityFlag),
        alpha(1),
    )


class _OrderExecuted(NamedTuple):
    timestamp: int
    user_ref_num: int
    quantity: int
    price: int
    liquidity_flag: LiquidityFlag
    match_number: int
    appendage: tuple[Any, ...] = ()


class OrderExecuted(_OrderExecuted, Message):
    """``E`` Order Executed (§3.6): 36 bytes, then an appendage (no tags listed, §6 A5)."""

    __slots__ = ()
    TYPE, INBOUND, FIXED, TAGS = "E", False, 36, frozenset()
    KINDS = (TIMESTAMP, USER_REF_NUM, U32, PRICE, code(LiquidityFlag), U64)

    @property
    def price_decimal(self) -> Decimal:
        """The execution price in dollars, exactly."""
        return to_decimal(self.price)


class _BrokenTrade(NamedTuple):
    timestamp: int
    user_ref_num: int
    match_number: int
    reason: BrokenTradeReason
    cl_ord_id: str


class BrokenTrade(_BrokenTrade, Message):
    """``B`` Broken Trade (§3.7): 36 bytes."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "B", False, 36
    KINDS = (TIMESTAMP, USER_REF_NUM, U64, code(BrokenTradeReason), alpha(14))


class _Rejected(NamedTuple):
    timestamp: int
    user_ref_num: int
    reason: RejectReason
    cl_ord_id: str


class Rejected(_Rejected, Message):
    """``J`` Rejected (§3.8): 29 bytes; the UserRefNum it names is used up."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "J", False, 29
    KINDS = (TIMESTAMP, USER_REF_NUM, code(RejectReason), alpha(14))


class _UserRefNumEvent(NamedTuple):
    timestamp: int
    user_ref_num: int


class CancelPending(_UserRefNumEvent, Message):
    """``P`` Cancel Pending (§3.9): 13 bytes."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "P", False, 13
    KINDS = (TIMESTAMP, USER_REF_NUM)


class CancelReject(_UserRefNumEvent, Message):
    """``I`` Cancel Reject (§3.10): 13 bytes."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "I", False, 13
    KINDS = (TIMESTAMP, USER_REF_NUM)


class _OrderPriorityUpdate(NamedTuple):
    timestamp: int
    user_ref_num: int
    price: int
    display: Display
    order_reference_number: int


class OrderPriorityUpdate(_OrderPriorityUpdate, Message):
    """``T`` Order Priority Update (§3.11): 30 bytes; a new Order Reference Number."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "T", False, 30
    KINDS = (TIMESTAMP, USER_REF_NUM, PRICE, code(Display), U64)

    @property
    def price_decimal(self) -> Decimal:
        """The order's limit price in dollars, exactly."""
        return to_decimal(self.price)


class _OrderModified(NamedTuple):
    timestamp: int
    user_ref_num: int
    side: Side
    quantity: int


class OrderModified(_OrderModified, Message):
    """``M`` Order Modified (§3.12): 18 bytes; ``quantity`` is the shares now open."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "M", False, 18
    KINDS = (TIMESTAMP, USER_REF_NUM, code(Side), U32)


class _OrderRestated(NamedTuple):
    timestamp: int
    user_ref_num: int
    reason: RestatedReason
    appendage: tuple[Any, ...] = ()


class OrderRestated(_OrderRestated, Message):
    """``R`` Order Restated (§3.13): 16 bytes, then the appendage (tags 1, 22, 23)."""

    __slots__ = ()
    TYPE, INBOUND, FIXED, TAGS = "R", False, 16, _RESTATED_TAGS
    KINDS = (TIMESTAMP, USER_REF_NUM, code(RestatedReason))


class _AccountQueryResponse(NamedTuple):
    timestamp: int
    next_user_ref_num: int


class AccountQueryResponse(_AccountQueryResponse, Message):
    """``Q`` Account Query Response (§3.14): 13 bytes."""

    __slots__ = ()
    TYPE, INBOUND, FIXED = "Q", False, 13
    KINDS = (TIMESTAMP, USER_REF_NUM)
