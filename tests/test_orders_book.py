"""The order client's sans-IO book: every answer rule of OUCH 5.0 §5 (which outbound
message settles which request), order states, fills and positions, and what a recovery
settles without a re-send. Messages are built with the project's codec (`soupbintcp.ouch`)."""

from __future__ import annotations

import pytest

from soupbintcp import ouch
from soupbintcp.orders import OrderBook, OrderStatus, RequestKind
from soupbintcp.orders._messages import apply_outbound, record_inbound


def _enter(book: OrderBook, num: int, side: str = "B", qty: int = 100, clid: str = "C") -> None:
    msg = ouch.EnterOrder(num, ouch.Side(side), qty, "AAPL", 100_000, cl_ord_id=f"{clid}{num}")
    record_inbound(book, msg.encode())


def _out(book: OrderBook, msg: ouch.Message) -> list[str]:
    """Apply `msg`; the outcomes of the requests it settled."""
    decoded, answers = apply_outbound(book, msg.encode())
    assert decoded == msg
    return [a.outcome for a in answers]


def accepted(num: int, qty: int = 100, side: str = "B", dead: bool = False) -> ouch.Message:
    state = ouch.OrderState.DEAD if dead else ouch.OrderState.LIVE
    return ouch.OrderAccepted(
        1, num, ouch.Side(side), qty, "AAPL", 100_000, ouch.TimeInForce.DAY, ouch.Display.VISIBLE,
        num + 1000, ouch.Capacity.AGENCY, ouch.IntermarketSweepEligibility.NOT_ELIGIBLE,
        ouch.CrossType.CONTINUOUS, state, f"C{num}",
    )  # fmt: skip


def executed(num: int, qty: int, match: int, price: int = 100_000) -> ouch.Message:
    return ouch.OrderExecuted(2, num, qty, price, ouch.LiquidityFlag.ADDED, match)


def canceled(num: int, qty: int, reason: str = "U") -> ouch.Message:
    return ouch.OrderCanceled(3, num, qty, ouch.CancelReason(reason))


def replaced(orig: int, num: int, open_qty: int, dead: bool = False) -> ouch.Message:
    state = ouch.OrderState.DEAD if dead else ouch.OrderState.LIVE
    return ouch.OrderReplaced(
        4, orig, num, ouch.Side.BUY, open_qty, "AAPL", 101_000, ouch.TimeInForce.DAY,
        ouch.Display.VISIBLE, num + 1000, ouch.Capacity.AGENCY,
        ouch.IntermarketSweepEligibility.NOT_ELIGIBLE, ouch.CrossType.CONTINUOUS, state, f"R{num}",
    )  # fmt: skip


def test_enter_is_answered_by_accepted_then_fills_move_state_and_position() -> None:
    book = OrderBook()
    _enter(book, 1)
    assert book.orders[1].status is OrderStatus.PENDING
    assert _out(book, accepted(1)) == ["accepted"]
    assert book.orders[1].status is OrderStatus.LIVE
    assert book.orders[1].open == 100
    assert _out(book, executed(1, 30, 7)) == []
    assert book.orders[1].status is OrderStatus.PARTLY_FILLED
    assert _out(book, executed(1, 70, 8)) == []
    order = book.orders[1]
    assert (order.status, order.open, order.executed) == (OrderStatus.DONE, 0, 100)
    assert book.positions == {"AAPL": 100}
    assert not book.has_unanswered


def test_sells_lower_the_position_and_a_broken_trade_takes_its_fill_back() -> None:
    book = OrderBook()
    _enter(book, 1, side="T")
    _out(book, accepted(1, side="T"))
    _out(book, executed(1, 40, 9))
    _out(book, executed(1, 10, 10))
    assert book.positions == {"AAPL": -50}
    broken = ouch.BrokenTrade(5, 1, 9, ouch.BrokenTradeReason.ERRONEOUS, "C1")
    assert _out(book, broken) == []
    assert book.positions == {"AAPL": -10}
    assert [f.match_number for f in book.orders[1].fills] == [10]


def test_rejected_uses_the_number_up_and_answers_the_enter() -> None:
    book = OrderBook()
    _enter(book, 5)
    assert _out(book, ouch.Rejected(1, 5, ouch.RejectReason.INVALID_QUANTITY, "C5")) == ["rejected"]
    assert book.orders[5].status is OrderStatus.REJECTED
    assert book.orders[5].reject_reason == 0x13
    with pytest.raises(ValueError, match="not above"):
        _enter(book, 5)  # §5.2: a rejected number is never sent again


def test_numbers_only_go_up() -> None:
    book = OrderBook()
    _enter(book, 7)
    with pytest.raises(ValueError, match="not above 7"):
        _enter(book, 6)


def test_a_partial_cancel_is_answered_when_the_open_size_reaches_the_target() -> None:
    book = OrderBook()
    _enter(book, 1)
    _out(book, accepted(1))
    record_inbound(book, ouch.CancelOrderRequest(1, 40).encode())
    assert _out(book, canceled(1, 60)) == ["canceled"]
    order = book.orders[1]
    assert (order.open, order.canceled, order.status) == (40, 60, OrderStatus.LIVE)


def test_a_cancel_overtaken_by_executions_is_settled_without_an_answer() -> None:
    """§5.4: the venue ignores a superfluous cancel; the client must not wait for ever."""
    book = OrderBook()
    _enter(book, 1)
    _out(book, accepted(1))
    record_inbound(book, ouch.CancelOrderRequest(1, 50).encode())
    assert _out(book, executed(1, 60, 3)) == ["already so"]
    assert not book.has_unanswered


def test_replace_chain_carries_executions_and_retires_the_original() -> None:
    book = OrderBook()
    _enter(book, 1)
    _out(book, accepted(1))
    _out(book, executed(1, 100 - 60, 1))
    msg = ouch.ReplaceOrderRequest(1, 2, 100, 101_000, cl_ord_id="R2")
    record_inbound(book, msg.encode())
    assert _out(book, replaced(1, 2, 60)) == ["replaced"]
    old, new = book.orders[1], book.orders[2]
    assert (old.status, old.replaced_by, old.open) == (OrderStatus.REPLACED, 2, 0)
    assert (new.status, new.open, new.replaces, new.chain_executed) == (OrderStatus.LIVE, 60, 1, 40)


def test_replace_of_an_order_that_left_the_book_is_settled_when_it_leaves() -> None:
    """§5.3 outcome 1/2: no Replaced comes; the original's end answers the replace."""
    book = OrderBook()
    _enter(book, 1)
    _out(book, accepted(1))
    record_inbound(book, ouch.ReplaceOrderRequest(1, 2, 100, 101_000).encode())
    assert _out(book, canceled(1, 100)) == ["not replaced: original gone"]
    assert book.orders[1].status is OrderStatus.CANCELED


def test_replace_rejected_leaves_the_original_alone() -> None:
    book = OrderBook()
    _enter(book, 1)
    _out(book, accepted(1))
    record_inbound(book, ouch.ReplaceOrderRequest(1, 2, 100, 101_000).encode())
    assert _out(book, ouch.Rejected(1, 2, ouch.RejectReason.REPLACE_NOT_ALLOWED, "")) == [
        "rejected"
    ]
    assert book.orders[1].status is OrderStatus.LIVE
    assert book.orders[2].status is OrderStatus.REJECTED


def test_modify_answered_by_modified_and_cancels_what_it_takes_off() -> None:
    book = OrderBook()
    _enter(book, 1, side="S")
    _out(book, accepted(1, side="S"))
    record_inbound(book, ouch.ModifyOrderRequest(1, ouch.Side.SELL_SHORT, 70).encode())
    assert _out(book, ouch.OrderModified(1, 1, ouch.Side.SELL_SHORT, 70)) == ["modified"]
    order = book.orders[1]
    assert (order.side, order.open, order.canceled) == ("T", 70, 30)


def test_accepted_dead_and_ioc_rest_end_canceled() -> None:
    book = OrderBook()
    _enter(book, 1)
    _enter(book, 2)
    _out(book, accepted(1, dead=True))
    _out(book, accepted(2))
    _out(book, executed(2, 30, 1))
    _out(book, canceled(2, 70, "I"))
    assert book.orders[1].status is OrderStatus.CANCELED
    order = book.orders[2]
    assert (order.status, order.executed, order.canceled) == (OrderStatus.CANCELED, 30, 70)


def test_settle_superfluous_keeps_what_the_venue_may_still_answer() -> None:
    book = OrderBook()
    for num in (1, 2, 3):
        _enter(book, num)
    _out(book, accepted(1))
    _out(book, accepted(2))
    _out(book, canceled(2, 100))
    record_inbound(book, ouch.CancelOrderRequest(1, 0).encode())  # may still come: kept
    record_inbound(book, ouch.CancelOrderRequest(2, 0).encode())  # order gone: settled
    record_inbound(book, ouch.ReplaceOrderRequest(2, 4, 100, 1).encode())  # gone: settled
    assert [a.outcome for a in book.settle_superfluous()] == [
        "order gone",
        "not replaced: original gone",
    ]
    kept = [(r.kind, r.user_ref_num) for r in book.unanswered()]
    assert kept == [(RequestKind.ENTER, 3), (RequestKind.CANCEL, 1)]


def test_an_answer_costs_the_same_with_many_requests_in_flight() -> None:
    """The unanswered requests are indexed by UserRefNum: 20,000 in flight, answered in
    reverse order, stay linear (a scan per answer would be 200 M steps)."""
    book = OrderBook()
    n = 20_000
    for num in range(1, n + 1):
        _enter(book, num)
    for num in range(n, 0, -1):
        assert _out(book, accepted(num)) == ["accepted"]
    assert not book.has_unanswered


def test_malformed_outbound_is_counted_not_fatal() -> None:
    book = OrderBook()
    assert apply_outbound(book, b"Z\x00") == (None, [])
    assert apply_outbound(book, b"A\x00\x01") == (None, [])
    assert book.malformed == 2


def test_stream_alone_rebuilds_orders_and_the_highest_number() -> None:
    """A lost send journal: the orders come from Accepted messages themselves."""
    book = OrderBook()
    _out(book, accepted(9))
    _out(book, executed(9, 100, 1))
    assert book.orders[9].status is OrderStatus.DONE
    assert book.highest_user_ref_num == 9


def test_an_answer_settles_only_a_request_of_its_kind() -> None:
    """One request in flight for the order (the book's quick path): an answer of another
    kind leaves it alone."""
    book = OrderBook()
    _enter(book, 1)
    assert _out(book, accepted(1)) == ["accepted"]
    cancel = book.sent_cancel(ouch.CancelOrderRequest(1, 0).encode(), 1, 0)
    assert _out(book, accepted(1)) == []  # a repeat: it answers an Enter, not a Cancel
    assert _out(book, ouch.OrderModified(4, 1, ouch.Side.BUY, 100)) == []
    assert not cancel.answered
    assert _out(book, ouch.CancelReject(5, 1)) == ["cancel rejected"]
    assert cancel.answered
    assert not book.has_unanswered
