"""The venue's order handling: the inbound rules of OUCH 5.0 §5 over one book per symbol.

Sans-IO and deterministic: every call appends what it causes to ``outbound`` (account,
OUCH message) and ``market`` (ITCH events, see `MarketEvent`), stamped by the injected
clock; the driver (`_venue`) encodes, journals and sends them. Decisions the reference
leaves open (§6) are taken here and listed in docs/order-entry.md:

- A13: a Replace that is invalid while its original is live cancels the original with
  Order Canceled reason ``Z`` (system cancel).
- A17: a UserRefNum equal to the last consumed one is a reuse and is ignored.
- A12: Cancel and Modify name the order's current UserRefNum (after a replace, the new one).
- IOC: Accepted ``L``, then its executions, then Order Canceled ``I`` for the unexecuted rest.
- End of day cancels every resting order (reason ``T``, its time in force ran out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import soupbintcp.ouch as ouch

from ..ouch import (
    CancelReason,
    LiquidityFlag,
    OrderState,
    RejectReason,
    Side,
    TimeInForce,
)
from ._book import Book, Order

__all__ = ["Account", "Engine", "MarketEvent"]

MAX_QUANTITY = 999_999
#: Market-for-cross prices (reference §1.2): this venue runs no crosses, so they are refused.
_MARKET_PRICES = frozenset({0x7FFFFFFF, 0x77359400, 0xFFFFFFFF})
_TIMES_IN_FORCE = frozenset({TimeInForce.DAY, TimeInForce.IOC})
_SELLS = frozenset({Side.SELL, Side.SELL_SHORT, Side.SELL_SHORT_EXEMPT})
_REPLACED_TAGS = ouch.OrderReplaced.TAGS or frozenset()

#: An ITCH event: (letter, timestamp, symbol, *fields). Letters and fields:
#: "S" (event code), "A" (ref, side, shares, price), "E" (ref, shares, match),
#: "X" (ref, shares), "D" (ref), "U" (old ref, new ref, shares, price),
#: "P" (side, shares, price, match) for executions of hidden orders.
MarketEvent = tuple[Any, ...]


class Account:
    """One OUCH account: the highest UserRefNum consumed and its live orders by UserRefNum."""

    __slots__ = ("last_user_ref_num", "name", "orders")

    def __init__(self, name: str) -> None:
        self.name = name
        self.last_user_ref_num = 0
        self.orders: dict[int, Order] = {}


class Engine:
    """Accounts and books; each method is one inbound message or one venue action."""

    def __init__(self, symbols: Iterable[str], clock: Callable[[], int]) -> None:
        self.books = {s: Book(s, locate) for locate, s in enumerate(symbols, start=1)}
        self.clock = clock  # nanoseconds since midnight
        self.accounts: dict[str, Account] = {}
        self.outbound: list[tuple[str, ouch.Message]] = []
        self.market: list[MarketEvent] = []
        self.next_order_ref = 1
        self.next_match = 1
        self.open = False  # between start and end of day
        #: Scripted fault: the next this many Enter Orders / Replaces are rejected.
        self.reject_next = 0
        self.reject_reason = RejectReason.OTHER
        self.ignored = 0  # inbound messages dropped without answer (retransmissions ...)

    # --- accounts and the day ----------------------------------------------------------------

    def account(self, name: str) -> Account:
        """The account ``name``, created on first use."""
        account = self.accounts.get(name)
        if account is None:
            self.accounts[name] = account = Account(name)
        return account

    def start_day(self, accounts: Iterable[str] = ()) -> None:
        """System Event S to ``accounts`` (more join with `system_event_for`), ITCH S."""
        self.open = True
        now = self.clock()
        for name in accounts:
            self.outbound.append((name, ouch.SystemEvent(now, ouch.EventCode.START_OF_DAY)))
        self.market.append(("S", now, "", "O"))
        self.market.append(("S", now, "", "S"))
        self.market.append(("S", now, "", "Q"))

    def end_day(self) -> None:
        """Stop taking orders, cancel every resting order (reason T), System Event E."""
        if not self.open:
            return
        self.open = False
        now = self.clock()
        for account in self.accounts.values():
            for order in list(account.orders.values()):
                self._take_off(order, order.open, CancelReason.TIMEOUT, now)
            self.outbound.append((account.name, ouch.SystemEvent(now, ouch.EventCode.END_OF_DAY)))
        for code in "MEC":
            self.market.append(("S", now, "", code))

    def cancel_all(self, name: str, reason: CancelReason = CancelReason.SYSTEM_CANCEL) -> int:
        """Cancel every open order of ``name`` (cancel on disconnect); returns how many."""
        account = self.accounts.get(name)
        if account is None:
            return 0
        now = self.clock()
        orders = list(account.orders.values())
        for order in orders:
            self._take_off(order, order.open, reason, now)
        return len(orders)

    # --- inbound -----------------------------------------------------------------------------

    def handle(self, name: str, message: ouch.Message) -> None:
        """Apply one decoded inbound message from account ``name``."""
        kind = type(message)
        if kind is ouch.EnterOrder:
            self.enter(name, message)  # type: ignore[arg-type]
        elif kind is ouch.CancelOrderRequest:
            self.cancel(name, message)  # type: ignore[arg-type]
        elif kind is ouch.ReplaceOrderRequest:
            self.replace(name, message)  # type: ignore[arg-type]
        elif kind is ouch.ModifyOrderRequest:
            self.modify(name, message)  # type: ignore[arg-type]
        elif kind is ouch.AccountQueryRequest:
            account = self.account(name)
            now = self.clock()
            response = ouch.AccountQueryResponse(now, account.last_user_ref_num + 1)
            self.outbound.append((name, response))

    def _refusal(self, quantity: int, price: int, tif: Any) -> RejectReason | None:
        if self.reject_next > 0:
            self.reject_next -= 1
            return self.reject_reason
        if not self.open:
            return RejectReason.DESTINATION_CLOSED
        if not 1 <= quantity <= MAX_QUANTITY:
            return RejectReason.INVALID_QUANTITY
        if price in _MARKET_PRICES or not 0 < price <= ouch.MAX_PRICE:
            return RejectReason.INVALID_PRICE
        if tif not in _TIMES_IN_FORCE:
            return RejectReason.OTHER  # Appendix D has no "invalid time in force"
        return None

    def enter(self, name: str, m: ouch.EnterOrder) -> None:
        """Enter Order (§2.1): accept and match, or reject; ignored if the number is used."""
        account = self.account(name)
        urn = m.user_ref_num
        if urn <= account.last_user_ref_num:  # a retransmission (§5.1): no answer
            self.ignored += 1
            return
        account.last_user_ref_num = urn  # consumed, accepted or rejected (§5.2)
        now = self.clock()
        reason = self._refusal(m.quantity, m.price, m.time_in_force)
        book = self.books.get(m.symbol)
        if reason is None and book is None:
            reason = RejectReason.INVALID_SYMBOL
        if reason is None and m.cross_type != ouch.CrossType.CONTINUOUS:
            reason = RejectReason.INVALID_CROSS_ORDER
        if reason is not None or book is None:
            self.outbound.append((name, ouch.Rejected(now, urn, reason, m.cl_ord_id)))  # type: ignore[arg-type]
            return
        ref = self.next_order_ref
        self.next_order_ref = ref + 1
        order = Order(
            ref, name, urn, m.side, m.quantity, m.symbol, m.price, m.time_in_force, m.display,
            m.capacity, m.intermarket_sweep_eligibility, m.cross_type, m.cl_ord_id,
        )  # fmt: skip
        self.outbound.append(
            (name, ouch.OrderAccepted(
                now, urn, m.side, m.quantity, m.symbol, m.price, m.time_in_force, m.display, ref,
                m.capacity, m.intermarket_sweep_eligibility, m.cross_type, OrderState.LIVE,
                m.cl_ord_id, m.appendage,
            ))
        )  # fmt: skip
        account.orders[urn] = order
        self._execute(book, order, now)

    def replace(self, name: str, m: ouch.ReplaceOrderRequest) -> None:
        """Replace Order Request: the outcomes of §5.3."""
        account = self.account(name)
        order = account.orders.get(m.orig_user_ref_num)
        urn = m.user_ref_num
        if order is None or urn <= account.last_user_ref_num:  # case 1: ignored
            self.ignored += 1
            return
        now = self.clock()
        if self.reject_next > 0 or not self.open:  # case 3: refused, original kept
            self.reject_next = max(0, self.reject_next - 1)
            account.last_user_ref_num = urn
            reason = self.reject_reason if self.open else RejectReason.DESTINATION_CLOSED
            self.outbound.append((name, ouch.Rejected(now, urn, reason, m.cl_ord_id)))
            return
        open_after = m.quantity - order.executed
        invalid = (
            not 1 <= m.quantity <= MAX_QUANTITY
            or m.price in _MARKET_PRICES
            or not 0 < m.price <= ouch.MAX_PRICE
            or m.time_in_force not in _TIMES_IN_FORCE
        )
        if invalid:  # case 2: the original is cancelled, the number not consumed
            self._take_off(order, order.open, CancelReason.SYSTEM_CANCEL, now)
            return
        account.last_user_ref_num = urn  # case 4: replaced
        book = self.books[order.symbol]
        old_ref, was_visible = order.ref, order.visible
        book.remove(order)
        del account.orders[order.user_ref_num]
        ref = self.next_order_ref
        self.next_order_ref = ref + 1
        order.ref, order.user_ref_num = ref, urn
        order.open = max(0, open_after)
        order.price, order.time_in_force, order.display = m.price, m.time_in_force, m.display
        order.visible = m.display != "N"
        order.intermarket_sweep_eligibility = m.intermarket_sweep_eligibility
        order.cl_ord_id = m.cl_ord_id
        state = OrderState.LIVE if order.open else OrderState.DEAD
        appendage = tuple(o for o in m.appendage if getattr(o, "TAG", 0) in _REPLACED_TAGS)
        self.outbound.append(
            (name, ouch.OrderReplaced(
                now, m.orig_user_ref_num, urn, order.side, order.open, order.symbol, order.price,
                order.time_in_force, order.display, ref, order.capacity,
                order.intermarket_sweep_eligibility, order.cross_type, state, order.cl_ord_id,
                appendage,
            ))
        )  # fmt: skip
        if not order.open:
            if was_visible:
                self.market.append(("D", now, order.symbol, old_ref))
            return
        account.orders[urn] = order
        # A replacement that trades at once would briefly cross the published book if
        # announced as an ITCH Order Replace: it is then a delete and a new order instead.
        ioc = order.time_in_force == TimeInForce.IOC
        if was_visible and order.visible and not ioc and not book.crosses(order.buy, order.price):
            self.market.append(("U", now, order.symbol, old_ref, ref, order.open, order.price))
            book.add(order)
            return
        if was_visible:
            self.market.append(("D", now, order.symbol, old_ref))
        self._execute(book, order, now)

    def cancel(self, name: str, m: ouch.CancelOrderRequest) -> None:
        """Cancel Order Request: reduce to the intended size (§5.4)."""
        order = self.account(name).orders.get(m.user_ref_num)
        if order is None or m.quantity >= order.open:  # superfluous: ignored (§5.4)
            self.ignored += 1
            return
        self._take_off(order, order.open - m.quantity, CancelReason.USER_REQUESTED, self.clock())

    def modify(self, name: str, m: ouch.ModifyOrderRequest) -> None:
        """Modify Order Request: a sell side and a smaller size, keeping priority (§5.5)."""
        order = self.account(name).orders.get(m.user_ref_num)
        if order is None:
            self.ignored += 1
            return
        side_ok = m.side == order.side or (m.side in _SELLS and order.side in _SELLS)
        reduce = max(0, order.open - m.quantity)  # an increase is ignored
        if not side_ok or (m.side == order.side and not reduce):
            self.ignored += 1
            return
        now = self.clock()
        order.side = m.side
        self._reduce(order, reduce, now)
        self.outbound.append(
            (name, ouch.OrderModified(now, order.user_ref_num, m.side, order.open))
        )

    # --- book changes ------------------------------------------------------------------------

    def _execute(self, book: Book, order: Order, now: int) -> None:
        """Trade ``order`` (not yet in the book) against it, then rest or cancel the rest."""
        buy, price, out, market = order.buy, order.price, self.outbound, self.market
        while order.open:
            resting = book.best_opposite(buy, price)
            if resting is None:
                break
            shares = min(order.open, resting.open)
            match = self.next_match
            self.next_match = match + 1
            at = resting.price
            for o in (resting, order):
                o.open -= shares
                o.executed += shares
            flag = LiquidityFlag.ADDED if resting.visible else LiquidityFlag.ADDED_NON_DISPLAYED
            out.append((resting.account, ouch.OrderExecuted(
                now, resting.user_ref_num, shares, at, flag, match)))  # fmt: skip
            out.append((order.account, ouch.OrderExecuted(
                now, order.user_ref_num, shares, at, LiquidityFlag.REMOVED, match)))  # fmt: skip
            if resting.visible:
                market.append(("E", now, book.symbol, resting.ref, shares, match))
            else:
                side = "B" if resting.buy else "S"
                market.append(("P", now, book.symbol, side, shares, at, match))
            if not resting.open:
                book.remove(resting)
                del self.accounts[resting.account].orders[resting.user_ref_num]
        if not order.open:
            del self.accounts[order.account].orders[order.user_ref_num]
        elif order.time_in_force == TimeInForce.IOC:
            del self.accounts[order.account].orders[order.user_ref_num]
            rest = ouch.OrderCanceled(
                now, order.user_ref_num, order.open, CancelReason.IMMEDIATE_OR_CANCEL
            )
            out.append((order.account, rest))
            order.open = 0
        else:
            book.add(order)
            if order.visible:
                side = "B" if buy else "S"
                market.append(("A", now, book.symbol, order.ref, side, order.open, price))

    def _reduce(self, order: Order, shares: int, now: int) -> None:
        """Take ``shares`` off a resting order, keeping its priority; gone at zero."""
        if not shares:
            return
        order.open -= shares
        if order.open:
            if order.visible:
                self.market.append(("X", now, order.symbol, order.ref, shares))
            return
        self.books[order.symbol].remove(order)
        del self.accounts[order.account].orders[order.user_ref_num]
        if order.visible:
            self.market.append(("D", now, order.symbol, order.ref))

    def _take_off(self, order: Order, shares: int, reason: CancelReason, now: int) -> None:
        self._reduce(order, shares, now)
        self.outbound.append((order.account, ouch.OrderCanceled(
            now, order.user_ref_num, shares, reason)))  # fmt: skip
