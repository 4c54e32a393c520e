"""A test exchange: OUCH 5.0 order entry, a price-time matching engine, ITCH 5.0 market data.

``async with Venue(["AAPL", "MSFT"]) as venue:`` starts it in process (well under a second);
``soupbintcp venue`` runs it from the command line. See docs/order-entry.md.
"""

from __future__ import annotations

from ._book import Book, Order
from ._engine import Account, Engine, MarketEvent
from ._market import ItchBook, MarketData
from ._venue import Venue, utc_clock

__all__ = [
    "Account",
    "Book",
    "Engine",
    "ItchBook",
    "MarketData",
    "MarketEvent",
    "Order",
    "Venue",
    "utc_clock",
]
