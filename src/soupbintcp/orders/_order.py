"""An OUCH order as the client sees it, its fills, and the requests the client made about it.

The records the order book (`_book.OrderBook`) keeps and hands to the application; apart from
the book so that each module stays small. Layer 4 (order client), but it imports nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "SELLS",
    "Answer",
    "Fill",
    "Order",
    "OrderStatus",
    "Request",
    "RequestKind",
]

#: The sides that sell: their fills lower the position.
SELLS = frozenset("STE")


class OrderStatus(enum.Enum):
    """Where an order (one UserRefNum) stands."""

    #: Sent; neither accepted nor rejected yet.
    PENDING = "pending"
    #: On the book, nothing executed.
    LIVE = "live"
    #: On the book, some shares executed.
    PARTLY_FILLED = "partly filled"
    #: Replaced by another UserRefNum (`Order.replaced_by`); the chain goes on there.
    REPLACED = "replaced"
    #: Off the book with shares cancelled (by request, IOC, the venue...).
    CANCELED = "canceled"
    #: Rejected (its UserRefNum is used up all the same, §5.2).
    REJECTED = "rejected"
    #: Fully executed.
    DONE = "done"

    # Members are singletons and compare by identity: the identity hash is as good, and
    # `status in FINAL` (every answer asks) then costs no Python-level `Enum.__hash__`.
    __hash__ = object.__hash__


#: Nothing more comes for an order in these states (but a Broken Trade).
FINAL = frozenset(
    {OrderStatus.REPLACED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.DONE}
)


class RequestKind(enum.Enum):
    ENTER = "enter"
    REPLACE = "replace"
    CANCEL = "cancel"
    MODIFY = "modify"
    QUERY = "account query"


@dataclass(slots=True)
class Fill:
    """One execution: shares, price in ticks (1/10,000 $), liquidity flag, match number."""

    quantity: int
    price: int
    liquidity_flag: str
    match_number: int


@dataclass(slots=True, eq=False)
class Order:
    """One UserRefNum's order. Quantities in shares, prices in ticks (1/10,000 $)."""

    user_ref_num: int
    cl_ord_id: str
    symbol: str
    side: str
    price: int
    time_in_force: str
    #: Shares accepted (the request's until an answer comes).
    quantity: int
    status: OrderStatus = OrderStatus.PENDING
    #: Shares still open on the book.
    open: int = 0
    executed: int = 0
    canceled: int = 0
    #: `fills`, made on first use: most orders never fill, and a list per order kept for
    #: the day is a second object the garbage collector tracks (measured: its collections
    #: cost ~1 µs per order of a long day's closed loop).
    _fills: list[Fill] | None = field(default=None, repr=False)
    order_reference_number: int = 0
    #: For a replacement: the UserRefNum it replaced; the number that replaced it.
    replaces: int | None = None
    replaced_by: int | None = None
    reject_reason: int | None = None
    #: Shares executed by the whole chain before this replacement (Replace's Quantity counts them).
    chain_executed: int = 0

    @property
    def fills(self) -> list[Fill]:
        """Its executions, oldest first (a Broken Trade removes one)."""
        fills = self._fills
        if fills is None:
            fills = self._fills = []
        return fills

    @property
    def final(self) -> bool:
        """Whether nothing more will come for this order (a Broken Trade aside)."""
        return self.status in FINAL

    def view(self) -> dict[str, object]:
        """What a comparison with the venue's records looks at."""
        return {
            "user_ref_num": self.user_ref_num,
            "cl_ord_id": self.cl_ord_id,
            "symbol": self.symbol,
            "side": str(self.side),
            "status": self.status.value,
            "open": self.open,
            "executed": self.executed,
            "canceled": self.canceled,
            "fills": [(f.quantity, f.price, f.match_number) for f in self.fills],
        }


@dataclass(slots=True, eq=False)
class Request:
    """One inbound message sent (or to be sent) and what became of it."""

    kind: RequestKind
    #: Enter, Replace: the new number; Cancel, Modify: the order's; Query: 0.
    user_ref_num: int
    #: The message as it goes on the wire (what a recovery re-sends, unchanged).
    payload: bytes
    #: Replace: the original's number. Cancel, Modify: the target open size.
    target: int = 0
    #: Modify: the side asked for.
    side: str = ""
    #: Written to the connection at least once (a recovery re-sends only these).
    sent: bool = False
    answered: bool = False
    #: How it ended: "accepted", "rejected", "replaced", "canceled", "modified", ...
    outcome: str = ""


class Answer(NamedTuple):
    """A request settled: told to the application once. (A named tuple: built once per
    order on the hot path, five times cheaper than a frozen dataclass.)"""

    request: Request
    outcome: str
    order: Order | None
