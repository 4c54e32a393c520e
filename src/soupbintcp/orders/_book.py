"""The order book of one OUCH account as the client sees it: a sans-IO reducer.

Requests (what the client sends) are recorded with `sent_*` (kept until answered by
`_ledger.Ledger`, the base class); answers (the outbound stream)
are applied with the `on_*` methods, each returning the `Answer`s it settles. No I/O and
no clock here: the same reducer rebuilds the state from a journal after a restart, follows
the live stream, and decides what a reconnect must re-send (OUCH 5.0 §5.1: every request
still unanswered, in its original order).

How a request is answered (reference §5):

- Enter: Order Accepted or Rejected for its UserRefNum.
- Replace: Order Replaced or Rejected for the replacement's number; or the original leaving
  the book first (outcomes 1 and 2 of §5.3: ignored, or the original cancelled).
- Cancel: the order's open size at or below the target (a Canceled brought it there, or
  executions did: §5.4 says a superfluous cancel gets no message); Cancel Pending; Cancel
  Reject.
- Modify: Order Modified; or the order already as asked (side, open size at or below the
  target); or the order gone.
- Account Query: Account Query Response.

Layer 4 (order client), but it imports nothing: it is the part both drivers share.
"""

from __future__ import annotations

from collections.abc import Iterator

from ._ledger import Ledger
from ._order import FINAL, SELLS, Answer, Fill, Order, OrderStatus, Request, RequestKind

__all__ = [
    "Answer",
    "Fill",
    "Order",
    "OrderBook",
    "OrderStatus",
    "Request",
    "RequestKind",
]


# The members as module names: `RequestKind.ENTER` goes through the enum metaclass's
# `__getattr__` hook (~75 ns); a global is a dictionary look-up (hot path: every answer).
_ENTER, _REPLACE = RequestKind.ENTER, RequestKind.REPLACE
_LIVE, _CANCELED = OrderStatus.LIVE, OrderStatus.CANCELED
_DONE, _PARTLY_FILLED = OrderStatus.DONE, OrderStatus.PARTLY_FILLED


class OrderBook(Ledger):
    """Every order of the account, its fills and positions, and (`Ledger`) the requests in
    flight."""

    def __init__(self) -> None:
        super().__init__()
        #: Net shares per symbol: bought minus sold (short sales included).
        self.positions: dict[str, int] = {}
        #: From the latest Account Query Response.
        self.next_user_ref_num: int | None = None
        self.end_of_day = False
        #: Outbound messages about an order this book never heard of (a lost journal).
        self.unknown = 0
        #: Outbound messages that are not OUCH 5.0 (kept in the journal, otherwise skipped).
        self.malformed = 0

    # --- requests ---------------------------------------------------------------------------

    def sent_enter(
        self,
        payload: bytes,
        user_ref_num: int,
        cl_ord_id: str,
        symbol: str,
        side: str,
        quantity: int,
        price: int,
        time_in_force: str,
    ) -> Request:
        request = self.enter_request(payload, user_ref_num)
        self.entered(user_ref_num, cl_ord_id, symbol, side, quantity, price, time_in_force)
        return request

    def entered(
        self,
        user_ref_num: int,
        cl_ord_id: str,
        symbol: str,
        side: str,
        quantity: int,
        price: int,
        time_in_force: str,
    ) -> None:
        """The order of an Enter Order recorded by `enter_request` (before any answer)."""
        self.orders[user_ref_num] = Order(
            user_ref_num, cl_ord_id, symbol, side, price, time_in_force, quantity
        )

    def sent_replace(
        self,
        payload: bytes,
        orig_user_ref_num: int,
        user_ref_num: int,
        cl_ord_id: str,
        quantity: int,
        price: int,
        time_in_force: str,
    ) -> Request:
        self._use(user_ref_num)
        orig = self.orders.get(orig_user_ref_num)
        symbol, side = (orig.symbol, orig.side) if orig is not None else ("", "")
        new = Order(user_ref_num, cl_ord_id, symbol, side, price, time_in_force, quantity)
        new.replaces = orig_user_ref_num
        self.orders[user_ref_num] = new
        request = Request(_REPLACE, user_ref_num, payload, target=orig_user_ref_num)
        return self._record(request)

    def sent_cancel(self, payload: bytes, user_ref_num: int, quantity: int) -> Request:
        return self._record(Request(RequestKind.CANCEL, user_ref_num, payload, target=quantity))

    def sent_modify(self, payload: bytes, user_ref_num: int, side: str, quantity: int) -> Request:
        request = Request(RequestKind.MODIFY, user_ref_num, payload, target=quantity, side=side)
        return self._record(request)

    def sent_query(self, payload: bytes) -> Request:
        return self._record(Request(RequestKind.QUERY, 0, payload))

    def settle_superfluous(self) -> list[Answer]:
        """Settle the requests the venue ignores without a word (§5.1): a Replace of an order
        no longer live, a Cancel or Modify the order already satisfies. Called when the stream
        has caught up (so nothing more is coming for them) and before re-sending."""
        out: list[Answer] = []
        for key, request in list(self._unanswered.items()):
            outcome = self._superfluous(request)
            if outcome:
                out.append(self._settle(key, request, outcome))
        return out

    def _superfluous(self, request: Request) -> str:
        kind = request.kind
        if kind is _REPLACE:
            orig = self.orders.get(request.target)
            return "not replaced: original gone" if orig is None or orig.final else ""
        if kind is RequestKind.CANCEL or kind is RequestKind.MODIFY:
            order = self.orders.get(request.user_ref_num)
            if order is None or order.final:
                return "order gone"
            if order.status is OrderStatus.PENDING:
                return ""
            if order.open <= request.target and (
                kind is RequestKind.CANCEL or order.side == request.side
            ):
                return "already so"
        return ""

    def _after_change(self, order: Order) -> list[Answer]:
        """Settle what a change to `order` makes superfluous (cancels, modifies, replaces)."""
        num = order.user_ref_num
        if num not in self._naming:
            return []  # nothing unanswered names it: the usual case
        out: list[Answer] = []
        for key in self._keys(num):
            request = self._unanswered.get(key)
            if request is None:
                continue
            if request.kind is RequestKind.QUERY or request.kind is _ENTER:
                continue
            mine = (
                request.target == num if request.kind is _REPLACE else request.user_ref_num == num
            )
            if mine and (outcome := self._superfluous(request)):
                out.append(self._settle(key, request, outcome))
        return out

    # --- answers (the outbound stream) --------------------------------------------------------

    def _order(self, user_ref_num: int) -> Order | None:
        order = self.orders.get(user_ref_num)
        if order is None:
            self.unknown += 1
        return order

    def on_accepted(
        self,
        user_ref_num: int,
        cl_ord_id: str,
        symbol: str,
        side: str,
        quantity: int,
        price: int,
        time_in_force: str,
        order_reference_number: int,
        dead: bool,
    ) -> list[Answer]:
        order = self.orders.get(user_ref_num)
        if order is None:  # rebuilt from the stream alone (no send journal)
            order = Order(user_ref_num, cl_ord_id, symbol, side, price, time_in_force, quantity)
            self.orders[user_ref_num] = order
            self.highest_user_ref_num = max(self.highest_user_ref_num, user_ref_num)
        order.cl_ord_id, order.symbol, order.side = cl_ord_id, symbol, side
        order.quantity, order.price, order.time_in_force = quantity, price, time_in_force
        order.order_reference_number = order_reference_number
        order.open = 0 if dead else quantity
        order.canceled = quantity if dead else 0
        order.status = _CANCELED if dead else _LIVE
        return self._answer(_ENTER, user_ref_num, "accepted")

    def on_replaced(
        self,
        orig_user_ref_num: int,
        user_ref_num: int,
        cl_ord_id: str,
        symbol: str,
        side: str,
        quantity: int,
        price: int,
        time_in_force: str,
        order_reference_number: int,
        dead: bool,
    ) -> list[Answer]:
        orig = self.orders.get(orig_user_ref_num)
        new = self.orders.get(user_ref_num)
        if new is None:
            new = Order(user_ref_num, cl_ord_id, symbol, side, price, time_in_force, quantity)
            new.replaces = orig_user_ref_num
            self.orders[user_ref_num] = new
            self.highest_user_ref_num = max(self.highest_user_ref_num, user_ref_num)
        if orig is not None:
            new.chain_executed = orig.chain_executed + orig.executed
            orig.replaced_by = user_ref_num
            orig.open = 0
            orig.status = OrderStatus.REPLACED
        new.cl_ord_id, new.symbol, new.side = cl_ord_id, symbol, side
        new.price, new.time_in_force = price, time_in_force
        new.order_reference_number = order_reference_number
        # Replaced's Quantity is what is open now (§3.3); the order's size is that too.
        new.quantity = quantity
        new.open = 0 if dead else quantity
        new.canceled = quantity if dead else 0
        new.status = _CANCELED if dead else _LIVE
        out = self._answer(_REPLACE, user_ref_num, "replaced")
        if orig is not None:
            out += self._after_change(orig)
        return out

    def on_rejected(self, user_ref_num: int, reason: int) -> list[Answer]:
        order = self.orders.get(user_ref_num)
        if order is None:
            self.unknown += 1
            self.highest_user_ref_num = max(self.highest_user_ref_num, user_ref_num)
            return []
        order.status = OrderStatus.REJECTED
        order.reject_reason = reason
        order.open = 0
        kind = _REPLACE if order.replaces is not None else _ENTER
        return self._answer(kind, user_ref_num, "rejected")

    def on_canceled(self, user_ref_num: int, quantity: int) -> list[Answer]:
        """Order Canceled or AIQ Canceled: `quantity` shares taken off (a decrement)."""
        order = self.orders.get(user_ref_num)
        if order is None:
            self.unknown += 1
            return []
        left = order.open - quantity
        order.open = left if left > 0 else 0
        order.canceled += quantity
        if left <= 0 and order.status not in FINAL:
            order.status = _CANCELED
        if user_ref_num not in self._naming:
            return []  # nothing unanswered names it: the usual case (an IOC's rest)
        out: list[Answer] = []
        for key in self._keys(user_ref_num):
            request = self._unanswered.get(key)
            if request is None:
                continue
            if (
                request.kind is RequestKind.CANCEL
                and request.user_ref_num == user_ref_num
                and order.open <= request.target
            ):
                out.append(self._settle(key, request, "canceled"))
        return out + self._after_change(order)

    def on_executed(
        self, user_ref_num: int, quantity: int, price: int, liquidity_flag: str, match_number: int
    ) -> list[Answer]:
        order = self._order(user_ref_num)
        if order is None:
            return []
        order.open = max(0, order.open - quantity)
        order.executed += quantity
        order.fills.append(Fill(quantity, price, liquidity_flag, match_number))
        self._position(order, quantity)
        if order.open == 0:
            order.status = _DONE if order.canceled == 0 else _CANCELED
        else:
            order.status = _PARTLY_FILLED
        return self._after_change(order)

    def on_broken_trade(self, user_ref_num: int, match_number: int) -> list[Answer]:
        order = self._order(user_ref_num)
        if order is None:
            return []
        for i, fill in enumerate(order.fills):
            if fill.match_number == match_number:
                del order.fills[i]
                order.executed -= fill.quantity
                self._position(order, -fill.quantity)
                break
        return []

    def _position(self, order: Order, quantity: int) -> None:
        signed = -quantity if order.side in SELLS else quantity
        self.positions[order.symbol] = self.positions.get(order.symbol, 0) + signed

    def on_modified(self, user_ref_num: int, side: str, quantity: int) -> list[Answer]:
        order = self._order(user_ref_num)
        if order is None:
            return []
        order.side = side
        if quantity < order.open:
            order.canceled += order.open - quantity
            order.open = quantity
            if quantity == 0:
                order.status = _CANCELED
        return self._answer(RequestKind.MODIFY, user_ref_num, "modified") + self._after_change(
            order
        )

    def on_cancel_pending(self, user_ref_num: int) -> list[Answer]:
        return self._answer(RequestKind.CANCEL, user_ref_num, "cancel pending")

    def on_cancel_reject(self, user_ref_num: int) -> list[Answer]:
        return self._answer(RequestKind.CANCEL, user_ref_num, "cancel rejected")

    def on_priority_update(
        self, user_ref_num: int, price: int, order_reference_number: int
    ) -> list[Answer]:
        order = self._order(user_ref_num)
        if order is not None:
            order.price = price
            order.order_reference_number = order_reference_number
        return []

    def on_account_query_response(self, next_user_ref_num: int) -> list[Answer]:
        self.next_user_ref_num = next_user_ref_num
        return self._answer(RequestKind.QUERY, 0, "answered")

    def on_system_event(self, event_code: str) -> list[Answer]:
        if event_code == "E":
            self.end_of_day = True
        return []

    # --- views ---------------------------------------------------------------------------------

    def live(self) -> Iterator[Order]:
        """Orders that are (or may yet be) on the book: what a kill switch cancels."""
        return (o for o in self.orders.values() if not o.final)

    def view(self) -> dict[str, object]:
        """Every order that was answered, and the positions: what a check against the venue
        compares (pending orders the venue never saw are left out)."""
        return {
            "orders": {
                n: o.view()
                for n, o in sorted(self.orders.items())
                if o.status is not OrderStatus.PENDING
            },
            "positions": {s: p for s, p in sorted(self.positions.items()) if p},
        }
