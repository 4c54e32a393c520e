"""The matching engine against a model (reference §5), sans-IO: no sockets, a counting clock.

A Hypothesis state machine sends random orders, replaces, cancels, modifies and queries
from three accounts and checks, after every step, what OUCH 5.0 §5 and a price-time
market promise: the resting book is never crossed; an incoming order trades with the best
price first and, at a price, the oldest order first; quantity is conserved (entered =
executed + cancelled + resting, per order, from the outbound messages alone); every
accepted order reaches exactly one terminal state; UserRefNums are consumed, ignored and
answered as §5.2 and §5.3 say. Plain tests pin the single rules with exact messages.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from soupbintcp import ouch
from soupbintcp.ouch import CancelReason, RejectReason, Side
from soupbintcp.venue import Engine

ACCOUNTS = ("a", "b", "c")
PRICES = [990_000 + 100 * i for i in range(4)]  # $99.00 .. $99.03: plenty of crossing
# Mostly valid, fresh orders on one symbol, so that levels fill and trade.
FRESH = st.sampled_from([True, True, True, False])
QUANTITIES = st.sampled_from([50, 100, 100, 300, 300, 1, 999_999, 0, 1_000_000])


def _engine() -> Engine:
    clock = itertools.count(1)
    engine = Engine(["AAPL", "MSFT"], lambda: next(clock))
    engine.start_day(ACCOUNTS)
    engine.outbound.clear()
    engine.market.clear()
    return engine


def _drain(engine: Engine) -> list[tuple[str, Any]]:
    out, engine.outbound = engine.outbound, []
    engine.market.clear()
    return out


def _enter(urn: int, side: str, qty: int, price: int, **kw: Any) -> ouch.EnterOrder:
    return ouch.EnterOrder(urn, Side(side), qty, kw.pop("symbol", "AAPL"), price, **kw)


# --- single rules, exact messages ------------------------------------------------------------


def test_urn_at_or_below_the_last_is_ignored_and_a_reject_consumes_it() -> None:
    engine = _engine()
    engine.enter("a", _enter(5, "B", 100, 990_000))
    assert [type(m) for _, m in _drain(engine)] == [ouch.OrderAccepted]
    engine.enter("a", _enter(5, "B", 100, 990_000))  # equal: a reuse (§6 A17)
    engine.enter("a", _enter(3, "B", 100, 990_000))  # below
    assert _drain(engine) == []
    engine.enter("a", _enter(6, "B", 0, 990_000))
    engine.enter("a", _enter(7, "B", 100, 0))
    engine.enter("a", _enter(8, "B", 100, 990_000, symbol="ZZZZ"))
    engine.enter("a", _enter(9, "B", 100, 990_000, time_in_force=ouch.TimeInForce.GTX))
    engine.enter("a", _enter(10, "B", 100, ouch.MARKET_PRICE))
    engine.enter("a", _enter(11, "B", 1_000_000, 990_000))
    reasons = [(m.user_ref_num, m.reason) for _, m in _drain(engine)]
    assert reasons == [
        (6, RejectReason.INVALID_QUANTITY),
        (7, RejectReason.INVALID_PRICE),
        (8, RejectReason.INVALID_SYMBOL),
        (9, RejectReason.OTHER),
        (10, RejectReason.INVALID_PRICE),
        (11, RejectReason.INVALID_QUANTITY),
    ]
    engine.enter("a", _enter(6, "B", 100, 990_000))  # a rejected number is used up
    assert _drain(engine) == []
    engine.handle("a", ouch.AccountQueryRequest())
    ((_, answer),) = _drain(engine)
    assert answer.next_user_ref_num == 12


def test_the_three_outcomes_of_replace_and_when_the_number_is_consumed() -> None:
    engine = _engine()
    engine.enter("a", _enter(1, "B", 500, 990_000))
    engine.enter("b", _enter(1, "S", 100, 990_000))
    _drain(engine)
    # ignored: original not live / replacement number already used; nothing consumed
    engine.replace("a", ouch.ReplaceOrderRequest(9, 2, 500, 990_100))
    engine.replace("a", ouch.ReplaceOrderRequest(1, 1, 500, 990_100))
    assert _drain(engine) == []
    assert engine.accounts["a"].last_user_ref_num == 1
    # replaced: 100 executed, 500 asked for the chain -> 400 open (§5.3's example)
    engine.replace("a", ouch.ReplaceOrderRequest(1, 2, 500, 990_100, cl_ord_id="r1"))
    ((_, replaced),) = _drain(engine)
    assert type(replaced) is ouch.OrderReplaced
    assert (replaced.orig_user_ref_num, replaced.user_ref_num, replaced.quantity) == (1, 2, 400)
    assert replaced.order_state is ouch.OrderState.LIVE
    assert replaced.order_reference_number != 1  # the replacement gets a new number
    # invalid while live: the original is cancelled, the number not consumed
    engine.replace("a", ouch.ReplaceOrderRequest(2, 3, 1_000_000, 990_100))
    ((_, canceled),) = _drain(engine)
    assert (type(canceled), canceled.user_ref_num, canceled.quantity) == (
        ouch.OrderCanceled,
        2,
        400,
    )
    assert canceled.reason is CancelReason.SYSTEM_CANCEL
    assert engine.accounts["a"].last_user_ref_num == 2
    # refused while live (scripted): Rejected, original kept, number consumed
    engine.enter("a", _enter(3, "B", 100, 990_000))
    engine.reject_next = 1
    engine.replace("a", ouch.ReplaceOrderRequest(3, 4, 200, 990_000))
    _, (_, rejected) = _drain(engine)
    assert (type(rejected), rejected.user_ref_num) == (ouch.Rejected, 4)
    assert engine.accounts["a"].last_user_ref_num == 4
    assert 3 in engine.accounts["a"].orders
    # a replace down to what has executed leaves nothing open: state D
    engine.enter("b", _enter(2, "S", 30, 990_000))
    _drain(engine)
    engine.replace("a", ouch.ReplaceOrderRequest(3, 5, 30, 990_000))
    ((_, dead),) = _drain(engine)
    assert (dead.quantity, dead.order_state) == (0, ouch.OrderState.DEAD)
    assert engine.books["AAPL"].depth() == ([], [])


def test_replace_loses_priority_cancel_keeps_it() -> None:
    engine = _engine()
    engine.enter("a", _enter(1, "B", 300, 990_000))
    engine.enter("b", _enter(1, "B", 100, 990_000))
    engine.enter("c", _enter(1, "B", 100, 990_000))
    engine.cancel("a", ouch.CancelOrderRequest(1, 100))  # a smaller size: a stays first
    engine.replace("b", ouch.ReplaceOrderRequest(1, 2, 100, 990_000))  # same price: b goes last
    _drain(engine)
    engine.enter("d", _enter(1, "S", 300, 990_000))
    out = _drain(engine)
    hit = [(acct, m.user_ref_num) for acct, m in out if type(m) is ouch.OrderExecuted]
    assert hit[0::2] == [("a", 1), ("c", 1), ("b", 2)]


def test_cancel_and_modify_state_targets_and_duplicates_are_ignored() -> None:
    engine = _engine()
    engine.enter("a", _enter(1, "S", 500, 990_000))
    _drain(engine)
    engine.cancel("a", ouch.CancelOrderRequest(1, 200))
    engine.cancel("a", ouch.CancelOrderRequest(1, 200))  # repeated: superfluous
    engine.cancel("a", ouch.CancelOrderRequest(1, 900))  # target above open: superfluous
    ((_, canceled),) = _drain(engine)
    assert (canceled.quantity, canceled.reason) == (300, CancelReason.USER_REQUESTED)
    engine.modify(
        "a", ouch.ModifyOrderRequest(1, Side.SELL_SHORT, 500)
    )  # side only: increase ignored
    engine.modify("a", ouch.ModifyOrderRequest(1, Side.BUY, 100))  # a sell cannot become a buy
    engine.modify("a", ouch.ModifyOrderRequest(1, Side.SELL_SHORT, 200))  # nothing changes
    ((_, modified),) = _drain(engine)
    assert (modified.side, modified.quantity) == (Side.SELL_SHORT, 200)
    engine.modify("a", ouch.ModifyOrderRequest(1, Side.SELL_SHORT_EXEMPT, 0))
    ((_, gone),) = _drain(engine)
    assert (gone.side, gone.quantity) == (Side.SELL_SHORT_EXEMPT, 0)
    engine.cancel("a", ouch.CancelOrderRequest(1, 0))  # the order is gone
    assert _drain(engine) == []


def test_ioc_trades_what_it_can_and_cancels_the_rest() -> None:
    engine = _engine()
    engine.enter("a", _enter(1, "S", 100, 990_000, display=ouch.Display.HIDDEN))
    engine.enter("b", _enter(1, "B", 300, 990_100, time_in_force=ouch.TimeInForce.IOC))
    messages = [(acct, type(m).__name__) for acct, m in engine.outbound]
    assert messages == [
        ("a", "OrderAccepted"),
        ("b", "OrderAccepted"),
        ("a", "OrderExecuted"),
        ("b", "OrderExecuted"),
        ("b", "OrderCanceled"),
    ]
    assert engine.outbound[2][1].liquidity_flag is ouch.LiquidityFlag.ADDED_NON_DISPLAYED  # type: ignore[attr-defined]
    assert engine.outbound[4][1].reason is CancelReason.IMMEDIATE_OR_CANCEL  # type: ignore[attr-defined]
    assert [e[0] for e in engine.market] == ["P"]  # hidden: only the trade is published
    assert engine.books["AAPL"].depth() == ([], [])


# --- the model ----------------------------------------------------------------------------


class Chain:
    """What the outbound messages alone say about one order chain."""

    def __init__(self, account: str, urn: int, buy: bool, quantity: int) -> None:
        self.account, self.urn, self.buy = account, urn, buy
        self.entered = quantity
        self.executed = self.canceled = 0
        self.open = quantity
        self.terminal = 0  # how many times it reached a terminal state


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = _engine()
        self.last = dict.fromkeys(ACCOUNTS, 0)  # the model's highest consumed UserRefNum
        self.live: dict[tuple[str, int], Chain] = {}
        self.chains: list[Chain] = []

    # -- applying outbound messages to the model

    def _apply(self, out: list[tuple[str, Any]]) -> None:
        matches: dict[int, list[int]] = {}
        for account, m in out:
            kind = type(m)
            if kind is ouch.OrderAccepted:
                chain = Chain(account, m.user_ref_num, m.side == "B", m.quantity)
                assert (account, m.user_ref_num) not in self.live
                self.live[(account, m.user_ref_num)] = chain
                self.chains.append(chain)
                continue
            if kind in (ouch.Rejected, ouch.AccountQueryResponse, ouch.SystemEvent):
                continue
            key = (account, m.orig_user_ref_num if kind is ouch.OrderReplaced else m.user_ref_num)
            chain = self.live[key]  # never a message about an order that is over
            if kind is ouch.OrderExecuted:
                chain.executed += m.quantity
                chain.open -= m.quantity
                matches.setdefault(m.match_number, []).append(m.quantity)
            elif kind is ouch.OrderCanceled:
                chain.canceled += m.quantity
                chain.open -= m.quantity
            elif kind is ouch.OrderModified:
                chain.canceled += chain.open - m.quantity
                chain.open = m.quantity
            elif kind is ouch.OrderReplaced:
                # the chain's liability is reset: what was open before is not "cancelled"
                chain.entered += m.quantity - chain.open
                chain.open = m.quantity
                del self.live[key]
                chain.urn = m.user_ref_num
                self.live[(account, m.user_ref_num)] = chain
                key = (account, m.user_ref_num)
            assert chain.open >= 0
            if chain.open == 0:
                chain.terminal += 1
                del self.live[key]
        for quantities in matches.values():  # both sides of one trade, same shares
            assert len(quantities) == 2
            assert quantities[0] == quantities[1]

    def _opposite_queue(self, symbol: str, buy: bool) -> list[tuple[tuple[str, int], int]]:
        """The orders an incoming order on side ``buy`` would meet, in priority order."""
        book = self.engine.books[symbol]
        return [((o.account, o.user_ref_num), o.open) for o in book.side(not buy).orders()]

    def _check_priority(
        self, before: list[tuple[tuple[str, int], int]], out: list[tuple[str, Any]]
    ) -> None:
        """The resting orders hit are the head of the opposite queue, in order, each filled
        completely but the last."""
        hits = [
            ((acct, m.user_ref_num), m.quantity)
            for acct, m in out
            if type(m) is ouch.OrderExecuted and m.liquidity_flag != "R"
        ]
        for i, (key, quantity) in enumerate(hits):
            assert key == before[i][0]
            assert quantity == before[i][1] or (i == len(hits) - 1 and quantity < before[i][1])

    def _resting(self) -> list[Any]:
        return [
            o
            for book in self.engine.books.values()
            for s in (book.bids, book.asks)
            for o in s.orders()
        ]

    # -- rules

    def _urn(self, account: str, fresh: bool, back: int) -> int:
        return self.last[account] + 1 if fresh else max(1, self.last[account] - back)

    @rule(
        account=st.sampled_from(ACCOUNTS),
        fresh=FRESH,
        back=st.integers(0, 3),
        buy=st.booleans(),
        quantity=QUANTITIES,
        price=st.sampled_from([*PRICES, *PRICES, 0]),
        ioc=st.sampled_from([False, False, True]),
        hidden=st.sampled_from([False, False, True]),
        symbol=st.sampled_from(["AAPL", "AAPL", "AAPL", "MSFT", "NOPE"]),
    )
    def enter(self, account: str, fresh: bool, back: int, buy: bool, quantity: int, price: int,
              ioc: bool, hidden: bool, symbol: str) -> None:  # fmt: skip
        urn = self._urn(account, fresh, back)
        tif = ouch.TimeInForce.IOC if ioc else ouch.TimeInForce.DAY
        display = ouch.Display.HIDDEN if hidden else ouch.Display.VISIBLE
        message = _enter(urn, "B" if buy else "S", quantity, price, time_in_force=tif,
                         display=display, symbol=symbol)  # fmt: skip
        before = self._opposite_queue(symbol, buy) if symbol != "NOPE" else []
        self.engine.enter(account, message)
        out = _drain(self.engine)
        if urn <= self.last[account]:
            assert out == []  # a retransmission: silently ignored
            return
        self.last[account] = urn  # consumed, accepted or rejected
        first_account, first = out[0]
        assert first_account == account
        assert first.user_ref_num == urn
        valid = 1 <= quantity <= 999_999 and price and symbol != "NOPE"
        assert type(first) is (ouch.OrderAccepted if valid else ouch.Rejected)
        self._check_priority(before, out)
        self._apply(out)

    @precondition(lambda self: self.live)
    @rule(
        data=st.data(),
        fresh=FRESH,
        quantity=st.sampled_from([50, 100, 400, 400, 0, 1_000_000]),
        price=st.sampled_from(PRICES),
    )
    def replace(self, data: st.DataObject, fresh: bool, quantity: int, price: int) -> None:
        account, orig = data.draw(st.sampled_from(sorted(self.live)))
        urn = self._urn(account, fresh, 0)
        self.engine.replace(account, ouch.ReplaceOrderRequest(orig, urn, quantity, price))
        out = _drain(self.engine)
        if urn <= self.last[account]:
            assert out == []
            return
        if not 1 <= quantity <= 999_999:
            assert type(out[0][1]) is ouch.OrderCanceled  # the original goes, number kept
            assert out[0][1].reason is CancelReason.SYSTEM_CANCEL
        else:
            assert type(out[0][1]) is ouch.OrderReplaced
            self.last[account] = urn
        self._apply(out)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), size=st.sampled_from([0, 10, 100, 10_000]), repeat=st.booleans())
    def cancel(self, data: st.DataObject, size: int, repeat: bool) -> None:
        account, urn = data.draw(st.sampled_from(sorted(self.live)))
        open_before = self.live[(account, urn)].open
        for _ in range(2 if repeat else 1):
            self.engine.cancel(account, ouch.CancelOrderRequest(urn, size))
        out = _drain(self.engine)
        if size >= open_before:
            assert out == []
        else:
            assert [(type(m), m.quantity) for _, m in out] == [
                (ouch.OrderCanceled, open_before - size)
            ]
        self._apply(out)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), side=st.sampled_from(list(Side)), size=st.sampled_from([0, 10, 10_000]))
    def modify(self, data: st.DataObject, side: Side, size: int) -> None:
        account, urn = data.draw(st.sampled_from(sorted(self.live)))
        self.engine.modify(account, ouch.ModifyOrderRequest(urn, side, size))
        out = _drain(self.engine)
        assert all(type(m) is ouch.OrderModified for _, m in out)
        self._apply(out)

    @rule(account=st.sampled_from(ACCOUNTS))
    def query(self, account: str) -> None:
        self.engine.handle(account, ouch.AccountQueryRequest())
        ((_, answer),) = _drain(self.engine)
        assert answer.next_user_ref_num == self.last[account] + 1

    # -- invariants

    @invariant()
    def book_is_not_crossed(self) -> None:
        for book in self.engine.books.values():
            bid, ask = book.bids.best_price(), book.asks.best_price()
            assert bid is None or ask is None or bid < ask

    @invariant()
    def levels_keep_time_priority(self) -> None:
        for book in self.engine.books.values():
            for side in (book.bids, book.asks):
                for level in side.levels.values():
                    refs = list(level)
                    assert refs == sorted(refs)  # arrival (and replacement) order

    @invariant()
    def quantity_is_conserved(self) -> None:
        resting = {(o.account, o.user_ref_num): o.open for o in self._resting()}
        assert resting == {key: chain.open for key, chain in self.live.items()}
        for chain in self.chains:
            assert chain.entered == chain.executed + chain.canceled + chain.open
            assert chain.terminal == (0 if (chain.account, chain.urn) in self.live else 1)

    def teardown(self) -> None:
        self.engine.end_day()
        self._apply(_drain(self.engine))
        assert self.live == {}
        assert all(chain.terminal == 1 for chain in self.chains)


EngineMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50)
test_engine_against_the_model = EngineMachine.TestCase
