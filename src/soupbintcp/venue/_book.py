"""One symbol's order book with price-time priority (sans-IO, no messages).

Each side keeps its price levels in a sorted list (the best first: bids are stored negated)
and each level its orders in arrival order in an insertion-ordered dict keyed by Order
Reference Number, so the oldest order at a price is the first key and any order can be
removed in O(1). The engine (`_engine`) turns what happens here into OUCH and ITCH.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from typing import Any

__all__ = ["Book", "Order"]


class Order:
    """A live order: its owner, its current UserRefNum, and what is left of it."""

    __slots__ = (
        "account",
        "buy",
        "capacity",
        "cl_ord_id",
        "cross_type",
        "display",
        "executed",
        "intermarket_sweep_eligibility",
        "open",
        "price",
        "ref",
        "side",
        "symbol",
        "time_in_force",
        "user_ref_num",
        "visible",
    )

    def __init__(
        self,
        ref: int,
        account: str,
        user_ref_num: int,
        side: Any,
        quantity: int,
        symbol: str,
        price: int,
        time_in_force: Any,
        display: Any,
        capacity: Any,
        intermarket_sweep_eligibility: Any,
        cross_type: Any,
        cl_ord_id: str,
    ) -> None:
        self.ref = ref  # Order Reference Number, also the ITCH order's
        self.account = account
        self.user_ref_num = user_ref_num
        self.side = side
        self.buy = side == "B"
        self.open = quantity  # shares that may still execute
        self.executed = 0  # shares the whole chain executed (Replace quantities count them)
        self.symbol = symbol
        self.price = price
        self.time_in_force = time_in_force
        self.display = display
        self.visible = display != "N"  # hidden orders never appear in the market data
        self.capacity = capacity
        self.intermarket_sweep_eligibility = intermarket_sweep_eligibility
        self.cross_type = cross_type
        self.cl_ord_id = cl_ord_id

    def __repr__(self) -> str:
        side = "buy" if self.buy else "sell"
        return (
            f"<Order {self.ref} {self.account}#{self.user_ref_num} {side} {self.open}@{self.price}>"
        )


class _Side:
    """One side of a book: sorted level keys (best first) and the orders at each level."""

    __slots__ = ("keys", "levels", "sign")

    def __init__(self, buy: bool) -> None:
        self.sign = -1 if buy else 1  # key = sign * price: the best level is keys[0]
        self.keys: list[int] = []
        self.levels: dict[int, dict[int, Order]] = {}

    def add(self, order: Order) -> None:
        key = self.sign * order.price
        level = self.levels.get(key)
        if level is None:
            self.levels[key] = level = {}
            insort(self.keys, key)
        level[order.ref] = order

    def remove(self, order: Order) -> None:
        key = self.sign * order.price
        level = self.levels[key]
        del level[order.ref]
        if not level:
            del self.levels[key]
            del self.keys[bisect_left(self.keys, key)]

    def best_price(self) -> int | None:
        return self.sign * self.keys[0] if self.keys else None

    def orders(self) -> Iterator[Order]:
        """Every order, in priority order: price, then time."""
        for key in self.keys:
            yield from self.levels[key].values()


class Book:
    """Resting orders of one symbol."""

    __slots__ = ("asks", "bids", "locate", "symbol")

    def __init__(self, symbol: str, locate: int) -> None:
        self.symbol = symbol
        self.locate = locate  # ITCH Stock Locate
        self.bids = _Side(buy=True)
        self.asks = _Side(buy=False)

    def side(self, buy: bool) -> _Side:
        """The bids (``buy``) or the asks."""
        return self.bids if buy else self.asks

    def add(self, order: Order) -> None:
        """Rest ``order`` at the back of its price level."""
        (self.bids if order.buy else self.asks).add(order)

    def remove(self, order: Order) -> None:
        """Take ``order`` off the book."""
        (self.bids if order.buy else self.asks).remove(order)

    def crosses(self, buy: bool, price: int) -> bool:
        """Whether an order on side ``buy`` at ``price`` would trade with the book now."""
        best = (self.asks if buy else self.bids).best_price()
        return best is not None and (best <= price if buy else best >= price)

    def best_opposite(self, buy: bool, price: int) -> Order | None:
        """The oldest order at the best opposite price, if it trades with ``price``."""
        other = self.asks if buy else self.bids
        if not other.keys:
            return None
        key = other.keys[0]
        best = other.sign * key
        if (best > price) if buy else (best < price):
            return None
        return next(iter(other.levels[key].values()))

    def depth(self, visible: bool = False) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids, asks) as [(price, shares)] per level, best first; hidden orders included
        unless ``visible`` (what the market data shows)."""
        sides = []
        for side in (self.bids, self.asks):
            levels = []
            for key in side.keys:
                shares = sum(o.open for o in side.levels[key].values() if o.visible or not visible)
                if shares:
                    levels.append((side.sign * key, shares))
            sides.append(levels)
        return sides[0], sides[1]
