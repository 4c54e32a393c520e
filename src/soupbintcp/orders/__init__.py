"""Order entry: an OUCH 5.0 client that never enters an order twice and never loses one.

Layer 4, on the SoupBinTCP client. `OrderClient` (asyncio) and `BlockingOrderClient` share
`OrderCore` (the book, the UserRefNums, the recovery); `OrderBook` is the sans-IO state
model (orders, fills, positions) both rebuild from the outbound stream.
"""

from ._blocking import BlockingOrderClient, BlockingOrderHandle
from ._book import Answer, Fill, Order, OrderBook, OrderStatus, Request, RequestKind
from ._client import OrderClient, OrderHandle
from ._core import KillSwitchEngaged, OrderCore, Phase
from ._messages import OrderEvent
from ._state import StateDir, StateMismatch
from ._throttle import Throttle

__all__ = [
    "Answer",
    "BlockingOrderClient",
    "BlockingOrderHandle",
    "Fill",
    "KillSwitchEngaged",
    "Order",
    "OrderBook",
    "OrderClient",
    "OrderCore",
    "OrderEvent",
    "OrderHandle",
    "OrderStatus",
    "Phase",
    "Request",
    "RequestKind",
    "StateDir",
    "StateMismatch",
    "Throttle",
]
