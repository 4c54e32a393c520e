"""A deterministic synthetic feed of valid Nasdaq TotalView-ITCH 5.0 messages.

Every message follows from its sequence number alone (`synthetic_message` is a pure function
of it), so any receiver can check every byte without a copy of the feed, and
``--decode itch50`` shows a plausible market: the day opens with System Events, a Stock
Directory and Stock Trading Action for each of eight stocks, then repeats a cycle of 40 order
messages in the proportions of a real ITCH day (half adds, most orders deleted again, a few
executions, cancels and trades; about 30 bytes a message on average). Each order's
executions, cancel or delete refer to an order added earlier in the same cycle, with its
stock, shares and price.
"""

from __future__ import annotations

import functools
import struct
from typing import Final

__all__ = ["CYCLE", "PREAMBLE", "STOCKS", "synthetic_message", "synthetic_messages"]

#: (symbol, price in 1/10,000 dollars) of the stocks the feed trades; stock locate = index + 1.
STOCKS: Final = (
    ("AAPL", 1_892_500), ("MSFT", 4_151_000), ("AMZN", 1_785_500), ("NVDA", 1_204_000),
    ("GOOGL", 1_662_500), ("META", 5_054_000), ("TSLA", 2_479_000), ("QQQ", 4_853_500),
)  # fmt: skip

_HEAD = "!cHH HI"  # type, stock locate, tracking number, 48-bit timestamp as 16 + 32 bits
_SYSTEM_EVENT = struct.Struct(_HEAD + "c")
_STOCK_DIRECTORY = struct.Struct(_HEAD + "8sccIcc2scccccIc")
_TRADING_ACTION = struct.Struct(_HEAD + "8scc4s")
_ADD = struct.Struct(_HEAD + "QcI8sI")
_ADD_MPID = struct.Struct(_HEAD + "QcI8sI4s")
_EXECUTED = struct.Struct(_HEAD + "QIQ")
_EXECUTED_PRICE = struct.Struct(_HEAD + "QIQcI")
_CANCEL = struct.Struct(_HEAD + "QI")
_DELETE = struct.Struct(_HEAD + "Q")
_TRADE = struct.Struct(_HEAD + "QcI8sIQ")

_OPEN_NS: Final = 4 * 3600 * 10**9  # System Event "O" at 04:00, as Nasdaq starts its day
_MARKET_NS: Final = 9 * 3600 * 10**9 + 30 * 60 * 10**9  # the cycles from 09:30 on
_TRADING_DAY_NS: Final = 6 * 3600 * 10**9 + 30 * 60 * 10**9  # 09:30-16:00, then wrap around
_STEP_NS: Final = 2_750  # between messages: about 360k messages a second of market time
_SYMBOLS: Final = tuple(symbol.encode().ljust(8) for symbol, _ in STOCKS)


def _split(ns: int) -> tuple[int, int]:
    """A 48-bit timestamp as the 16 and 32 bits that struct can pack."""
    return ns >> 32, ns & 0xFFFFFFFF


def _preamble() -> tuple[bytes, ...]:
    out = [_SYSTEM_EVENT.pack(b"S", 0, 0, *_split(_OPEN_NS), b"O")]
    for locate, symbol in enumerate(_SYMBOLS, 1):
        out.append(_STOCK_DIRECTORY.pack(
            b"R", locate, 0, *_split(_OPEN_NS + locate), symbol, b"Q", b"N", 100, b"N",
            b"Q" if symbol.startswith(b"QQQ") else b"C", b"  ", b"P", b"N", b"N", b"1",
            b"Y" if symbol.startswith(b"QQQ") else b"N", 0, b"N",
        ))  # fmt: skip
    out.append(_SYSTEM_EVENT.pack(b"S", 0, 0, *_split(_OPEN_NS + 1000), b"S"))
    for locate, symbol in enumerate(_SYMBOLS, 1):
        out.append(_TRADING_ACTION.pack(
            b"H", locate, 0, *_split(_OPEN_NS + 2000 + locate), symbol, b"T", b" ", b"    "
        ))  # fmt: skip
    out.append(_SYSTEM_EVENT.pack(b"S", 0, 0, *_split(_MARKET_NS), b"Q"))
    return tuple(out)


_PREAMBLE_MESSAGES: Final = _preamble()
#: Messages before the order cycles start (sequence numbers 1 .. PREAMBLE).
PREAMBLE: Final = len(_PREAMBLE_MESSAGES)
_ORDERS: Final = 20  # orders added per cycle


def _cycle_plan() -> tuple[tuple[str, int], ...]:
    """The 40 slots of a cycle as (message type, order index within the cycle).

    Orders 0-1 are added with MPID attribution (F), the rest without (A). Orders 0-14 are
    deleted, 15-16 executed (E), 17 executed at a price (C), 18 partly cancelled (X); 19 rests.
    One more slot is a Trade (P) against a non-displayed order. An order's fate comes five
    slots of adds after it, so every reference is to an order the feed has already added.
    """
    fate = dict.fromkeys(range(15), "D") | {15: "E", 16: "E", 17: "C", 18: "X"}
    plan: list[tuple[str, int]] = []
    for i in range(_ORDERS):
        plan.append(("F" if i < 2 else "A", i))
        if i == 10:
            plan.append(("P", i))
        if i >= 5 and (i - 5) in fate:
            plan.append((fate[i - 5], i - 5))
    plan.extend((fate[i], i) for i in range(_ORDERS - 5, _ORDERS) if i in fate)
    return tuple(plan)


_PLAN: Final = _cycle_plan()
#: Messages in one order cycle.
CYCLE: Final = len(_PLAN)


def _order(cycle: int, index: int) -> tuple[int, int, bytes, int, int]:
    """(order reference number, stock locate, side, shares, price) of an order of a cycle."""
    reference = cycle * _ORDERS + index + 1
    locate = 1 + (reference * 5 + cycle) % len(STOCKS)
    side = b"B" if (reference * 7 + cycle) % 2 else b"S"
    mix = (reference * 2654435761) >> 8
    shares = 37 if mix % 11 == 0 else 100 * (1 + mix % 5)  # mostly round lots, some odd lots
    drift = (cycle % 200) - 100  # the price wanders up and down a dollar over 200 cycles
    price = STOCKS[locate - 1][1] + drift * 100 + (mix % 21 - 10) * 100
    return reference, locate, side, shares, price


@functools.lru_cache(maxsize=4096)  # 160k messages: a publisher and its checker both hit it
def _cycle(cycle: int) -> tuple[bytes, ...]:
    """The 40 messages of one order cycle, built together as their orders are shared."""
    orders = [_order(cycle, index) for index in range(_ORDERS)]
    first = cycle * CYCLE + 1  # position of the cycle's first message after the System Event
    out = []
    for slot, (kind, index) in enumerate(_PLAN):
        high, low = _split(_MARKET_NS + ((first + slot) * _STEP_NS) % _TRADING_DAY_NS)
        reference, locate, side, shares, price = orders[index]
        symbol = _SYMBOLS[locate - 1]
        match = first + slot  # unique per execution and trade
        if kind == "A":
            out.append(
                _ADD.pack(b"A", locate, 0, high, low, reference, side, shares, symbol, price)
            )
        elif kind == "F":
            out.append(_ADD_MPID.pack(
                b"F", locate, 0, high, low, reference, side, shares, symbol, price, b"NSDQ"
            ))  # fmt: skip
        elif kind == "D":
            out.append(_DELETE.pack(b"D", locate, 0, high, low, reference))
        elif kind == "E":
            out.append(_EXECUTED.pack(b"E", locate, 0, high, low, reference, shares, match))
        elif kind == "C":
            out.append(_EXECUTED_PRICE.pack(
                b"C", locate, 0, high, low, reference, shares, match, b"Y", price + 100
            ))  # fmt: skip
        elif kind == "X":
            out.append(_CANCEL.pack(b"X", locate, 0, high, low, reference, max(1, shares // 2)))
        else:  # P: a non-displayed order (reference 0, as Nasdaq sends it) trades at this price
            out.append(
                _TRADE.pack(b"P", locate, 0, high, low, 0, side, shares, symbol, price, match)
            )
    return tuple(out)


def synthetic_message(sequence: int) -> bytes:
    """The message with this sequence number (1-based): a pure function of it."""
    if sequence <= PREAMBLE:
        return _PREAMBLE_MESSAGES[sequence - 1]
    cycle, slot = divmod(sequence - PREAMBLE - 1, CYCLE)
    return _cycle(cycle)[slot]


def synthetic_messages(first: int, count: int) -> list[bytes]:
    """Messages ``first`` .. ``first + count - 1``."""
    return [synthetic_message(s) for s in range(first, first + count)]
