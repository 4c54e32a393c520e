"""The OUCH 5.0 code sets (reference §4), one enumeration per field, in the spec's words.

Each one-character code is a `StrEnum` member, so ``Side.BUY == "B"`` and a member can be
written wherever the code letter can. Reject reasons (Appendix D) are binary, an `IntEnum`.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = [
    "BboWeightIndicator",
    "BrokenTradeReason",
    "CancelReason",
    "Capacity",
    "CrossType",
    "CustomerType",
    "Display",
    "EventCode",
    "HandleInst",
    "IntermarketSweepEligibility",
    "LiquidityFlag",
    "OrderState",
    "PostOnly",
    "PriceType",
    "RejectReason",
    "RestatedReason",
    "SharesLocated",
    "Side",
    "TimeInForce",
    "TradeNow",
]


class Side(StrEnum):
    """Side of an order (§4.5). Modify may only move among the three sell sides."""

    BUY = "B"
    SELL = "S"
    SELL_SHORT = "T"
    SELL_SHORT_EXEMPT = "E"  # the Rust model says "U" (§6 R3); the spec says "E"


class TimeInForce(StrEnum):
    """Time In Force; mirrors FIX tag 59. ``AFTER_HOURS`` is for Enter Order only."""

    DAY = "0"
    IOC = "3"
    GTX = "5"
    GTT = "6"
    AFTER_HOURS = "E"


class Display(StrEnum):
    """Display. ``CONFORMANT`` appears only outbound (Accepted, Replaced)."""

    VISIBLE = "Y"
    HIDDEN = "N"
    ATTRIBUTABLE = "A"
    CONFORMANT = "Z"


class Capacity(StrEnum):
    """Capacity of the entering firm."""

    AGENCY = "A"
    PRINCIPAL = "P"
    RISKLESS = "R"
    OTHER = "O"


class IntermarketSweepEligibility(StrEnum):
    """InterMarket Sweep Eligibility."""

    ELIGIBLE = "Y"
    NOT_ELIGIBLE = "N"


class CrossType(StrEnum):
    """CrossType: continuous market, or the cross the order is for."""

    CONTINUOUS = "N"
    OPENING = "O"
    CLOSING = "C"
    HALT_IPO = "H"
    SUPPLEMENTAL = "S"
    EXTENDED_LIFE = "E"
    AFTER_HOURS_CLOSE = "A"
    RETAIL = "R"  # BX only


class OrderState(StrEnum):
    """Order State in Accepted and Replaced: ``DEAD`` means nothing more will come for it."""

    LIVE = "L"
    DEAD = "D"


class EventCode(StrEnum):
    """System Event Code."""

    START_OF_DAY = "S"
    END_OF_DAY = "E"


class CancelReason(StrEnum):
    """Appendix C: why an Order Canceled took shares off (AIQ Canceled always uses ``Q``)."""

    REGULATORY_RESTRICTION = "D"
    CLOSED = "E"
    POST_ONLY_REG_NMS = "F"
    POST_ONLY_DISPLAYED = "G"
    HALTED = "H"
    IMMEDIATE_OR_CANCEL = "I"
    MARKET_COLLARS = "K"
    SELF_MATCH_PREVENTION = "Q"
    SUPERVISORY = "S"
    TIMEOUT = "T"
    USER_REQUESTED = "U"
    OPEN_PROTECTION = "X"
    SYSTEM_CANCEL = "Z"
    DIRECT_LISTING_EXCESS = "e"


class RejectReason(IntEnum):
    """Appendix D: the binary (u16) reason of a Rejected message."""

    QUOTE_UNAVAILABLE = 0x01
    DESTINATION_CLOSED = 0x02
    INVALID_DISPLAY = 0x03
    INVALID_MAX_FLOOR = 0x04
    INVALID_PEG_TYPE = 0x05
    FAT_FINGER = 0x06
    HALTED = 0x07
    ISO_NOT_ALLOWED = 0x08
    INVALID_SIDE = 0x09
    PROCESSING_ERROR = 0x0A
    CANCEL_PENDING = 0x0B
    FIRM_NOT_AUTHORIZED = 0x0C
    INVALID_MIN_QUANTITY = 0x0D
    NO_CLOSING_REFERENCE_PRICE = 0x0E
    OTHER = 0x0F
    CANCEL_NOT_ALLOWED = 0x10
    PEGGING_NOT_ALLOWED = 0x11
    CROSSED_MARKET = 0x12
    INVALID_QUANTITY = 0x13
    INVALID_CROSS_ORDER = 0x14
    REPLACE_NOT_ALLOWED = 0x15
    ROUTING_NOT_ALLOWED = 0x16
    INVALID_SYMBOL = 0x17
    TEST = 0x18
    LATE_LOC_TOO_AGGRESSIVE = 0x19
    RETAIL_NOT_ALLOWED = 0x1A
    INVALID_MIDPOINT_POST_ONLY_PRICE = 0x1B
    INVALID_DESTINATION = 0x1C
    INVALID_PRICE = 0x1D
    SHARES_EXCEED_THRESHOLD = 0x1E
    EXCEEDS_MAXIMUM_ALLOWED_NOTIONAL_VALUE = 0x1F
    RISK_AGGREGATE_EXPOSURE_EXCEEDED = 0x20
    RISK_MARKET_IMPACT = 0x21
    RISK_RESTRICTED_STOCK = 0x22
    RISK_SHORT_SELL_RESTRICTED = 0x23
    RISK_ORDER_TYPE_RESTRICTED = 0x24
    RISK_EXCEEDS_ADV_LIMIT = 0x25
    RISK_FAT_FINGER = 0x26
    RISK_LOCATE_REQUIRED = 0x27
    RISK_SYMBOL_MESSAGE_RATE_RESTRICTION = 0x28
    RISK_PORT_MESSAGE_RATE_RESTRICTION = 0x29
    RISK_DUPLICATE_MESSAGE_RATE_RESTRICTION = 0x2A


class LiquidityFlag(StrEnum):
    """Appendix E: liquidity flags of Executed and AIQ Canceled (case-sensitive)."""

    ADDED = "A"
    CLOSING_CROSS = "C"
    RETAIL_ADDED_DISPLAYED = "e"
    HALT_IPO_CROSS = "H"
    AFTER_HOURS_CLOSING_CROSS = "i"
    ADDED_NON_DISPLAYED = "J"
    RPI_PROVIDED = "j"
    ADDED_MIDPOINT = "k"
    HALT_CROSS = "K"
    CLOSING_CROSS_IMBALANCE_ONLY = "L"
    OPENING_CROSS_IMBALANCE_ONLY = "M"
    REMOVED_MIDPOINT = "m"
    PASSIVE_MIDPOINT = "N"
    MIDPOINT_EXTENDED_LIFE = "n"
    OPENING_CROSS = "O"
    REMOVED_PRICE_IMPROVING_NON_DISPLAYED = "p"
    RMO_REMOVED_NON_RPI_MIDPOINT = "q"
    REMOVED = "R"
    RETAIL_REMOVED_RPI = "r"
    RETAIL_REMOVED_PRICE_IMPROVING_NON_DISPLAYED = "t"
    ADDED_NON_DISPLAYED_RESERVE = "u"
    SUPPLEMENTAL = "0"
    DISPLAYED_IMPROVED_NBBO = "7"
    DISPLAYED_SET_QBBO_JOINING_NBBO = "8"
    RPI_PROVIDED_NO_RPII = "1"


class BrokenTradeReason(StrEnum):
    """Why a trade was broken."""

    ERRONEOUS = "E"
    CONSENT = "C"
    SUPERVISORY = "S"
    EXTERNAL = "X"


class RestatedReason(StrEnum):
    """Why the system restated an order."""

    REFRESH = "R"
    PRICE_UPDATE = "P"


class CustomerType(StrEnum):
    """Option 4 CustomerType."""

    RETAIL = "R"
    NOT_RETAIL = "N"
    PORT_DEFAULT = " "


class PriceType(StrEnum):
    """Options 6 PriceType and 10 DiscretionPriceType (which uses L, P, M, R only)."""

    LIMIT = "L"
    MARKET_PEG = "P"
    MIDPOINT_PEG = "M"
    PRIMARY_PEG = "R"
    MARKET_MAKER_PEG = "Q"
    MIDPOINT = "m"  # §6 A8: read as its own code, distinct from "M"


class PostOnly(StrEnum):
    """Option 12 PostOnly."""

    POST_ONLY = "P"
    NO = "N"


class TradeNow(StrEnum):
    """Option 16 TradeNow."""

    YES = "Y"
    NO = "N"
    PORT_DEFAULT = " "


class HandleInst(StrEnum):
    """Option 17 HandleInst."""

    IMBALANCE_ONLY = "I"
    RETAIL_ORDER_TYPE_1 = "O"
    RETAIL_ORDER_TYPE_2 = "T"
    RETAIL_PRICE_IMPROVEMENT = "Q"
    RETAIL_PRICE_IMPROVEMENT_HIDDEN = "R"
    EXTENDED_LIFE_CONTINUOUS = "B"
    DIRECT_LISTING_CAPITAL_RAISE = "D"
    NO_INSTRUCTIONS = " "


class BboWeightIndicator(StrEnum):
    """Option 18 BBO Weight Indicator (outbound only)."""

    UP_TO_0_2_PERCENT = "0"
    UP_TO_1_PERCENT = "1"
    UP_TO_2_PERCENT = "2"
    OVER_2_PERCENT = "3"
    UNSPECIFIED = " "
    SET_QBBO_JOINING_NBBO = "S"
    IMPROVED_NBBO = "N"


class SharesLocated(StrEnum):
    """Option 25 SharesLocated (short sales)."""

    YES = "Y"
    NO = "N"
