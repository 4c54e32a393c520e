"""What each Nasdaq TotalView-ITCH 5.0 message is called and how its fields read.

The byte layouts themselves (offsets and widths) come from the ``itchfeed`` library; this
table only names the fields in the specification's words and says how each one reads:
``alpha`` (space-padded ASCII, trimmed), ``int``, ``price4`` / ``price8`` (fixed point with 4
or 8 implied decimals), ``ns`` (nanoseconds since midnight) or ``s`` (seconds since midnight).
Every message starts with Message Type, Stock Locate, Tracking Number and Timestamp.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

__all__ = ["LAYOUTS", "Field", "Kind", "Layout"]

Kind = Literal["alpha", "int", "price4", "price8", "ns", "s"]


class Field(NamedTuple):
    name: str  # our name: the specification's field name in snake case
    attribute: str  # the itchfeed message attribute holding it
    kind: Kind


class Layout(NamedTuple):
    name: str  # the specification's message name
    size: int  # the published length in bytes, Message Type included
    fields: tuple[Field, ...]  # after the common header, in wire order


def _f(name: str, kind: Kind = "alpha", attribute: str | None = None) -> Field:
    return Field(name, attribute or name, kind)


_STOCK = _f("stock")
_ORDER = _f("order_reference_number", "int")
_MATCH = _f("match_number", "int")
_SIDE = _f("buy_sell_indicator")
_PRICE = _f("price", "price4")

LAYOUTS: Final[dict[str, Layout]] = {
    "S": Layout("System Event", 12, (_f("event_code"),)),
    "R": Layout("Stock Directory", 39, (
        _STOCK, _f("market_category"), _f("financial_status_indicator"),
        _f("round_lot_size", "int"), _f("round_lots_only"), _f("issue_classification"),
        _f("issue_sub_type"), _f("authenticity"), _f("short_sale_threshold_indicator"),
        _f("ipo_flag"), _f("luld_reference_price_tier", attribute="luld_ref"), _f("etp_flag"),
        _f("etp_leverage_factor", "int"), _f("inverse_indicator"),
    )),
    "H": Layout("Stock Trading Action", 25, (
        _STOCK, _f("trading_state"), _f("reserved"), _f("reason"),
    )),
    "Y": Layout("Reg SHO Short Sale Price Test Restricted Indicator", 20, (
        _STOCK, _f("reg_sho_action"),
    )),
    "L": Layout("Market Participant Position", 26, (
        _f("mpid"), _STOCK, _f("primary_market_maker"), _f("market_maker_mode"),
        _f("market_participant_state"),
    )),
    "V": Layout("MWCB Decline Level", 35, (
        _f("level_1", "price8", "level1_price"), _f("level_2", "price8", "level2_price"),
        _f("level_3", "price8", "level3_price"),
    )),
    "W": Layout("MWCB Status", 12, (_f("breached_level"),)),
    "K": Layout("IPO Quoting Period Update", 28, (
        _STOCK, _f("ipo_quotation_release_time", "s", "ipo_release_time"),
        _f("ipo_quotation_release_qualifier", attribute="ipo_release_qualifier"),
        _f("ipo_price", "price4"),
    )),
    "J": Layout("LULD Auction Collar", 35, (
        _STOCK, _f("auction_collar_reference_price", "price4"),
        _f("upper_auction_collar_price", "price4"), _f("lower_auction_collar_price", "price4"),
        _f("auction_collar_extension", "int", "auction_collar_extention"),
    )),
    "h": Layout("Operational Halt", 21, (
        _STOCK, _f("market_code"), _f("operational_halt_action"),
    )),
    "A": Layout("Add Order (No MPID Attribution)", 36, (
        _ORDER, _SIDE, _f("shares", "int"), _STOCK, _PRICE,
    )),
    "F": Layout("Add Order with MPID Attribution", 40, (
        _ORDER, _SIDE, _f("shares", "int"), _STOCK, _PRICE, _f("attribution"),
    )),
    "E": Layout("Order Executed", 31, (_ORDER, _f("executed_shares", "int"), _MATCH)),
    "C": Layout("Order Executed With Price", 36, (
        _ORDER, _f("executed_shares", "int"), _MATCH, _f("printable"),
        _f("execution_price", "price4"),
    )),
    "X": Layout("Order Cancel", 23, (_ORDER, _f("cancelled_shares", "int"))),
    "D": Layout("Order Delete", 19, (_ORDER,)),
    "U": Layout("Order Replace", 35, (
        _f("original_order_reference_number", "int", "order_reference_number"),
        _f("new_order_reference_number", "int"), _f("shares", "int"), _PRICE,
    )),
    "P": Layout("Trade (Non-Cross)", 44, (
        _ORDER, _SIDE, _f("shares", "int"), _STOCK, _PRICE, _MATCH,
    )),
    "Q": Layout("Cross Trade", 40, (
        _f("shares", "int"), _STOCK, _f("cross_price", "price4"), _MATCH, _f("cross_type"),
    )),
    "B": Layout("Broken Trade", 19, (_MATCH,)),
    "I": Layout("Net Order Imbalance Indicator", 50, (
        _f("paired_shares", "int"), _f("imbalance_shares", "int"), _f("imbalance_direction"),
        _STOCK, _f("far_price", "price4"), _f("near_price", "price4"),
        _f("current_reference_price", "price4"), _f("cross_type"),
        _f("price_variation_indicator", attribute="variation_indicator"),
    )),
    "N": Layout("Retail Price Improvement Indicator", 20, (_STOCK, _f("interest_flag"))),
    "O": Layout("Direct Listing with Capital Raise Price Discovery", 48, (
        _STOCK, _f("open_eligibility_status"), _f("minimum_allowable_price", "price4"),
        _f("maximum_allowable_price", "price4"), _f("near_execution_price", "price4"),
        _f("near_execution_time", "int"), _f("lower_price_range_collar", "price4"),
        _f("upper_price_range_collar", "price4"),
    )),
}  # fmt: skip
