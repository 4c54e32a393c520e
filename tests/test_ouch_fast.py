"""The order client's fast paths agree with the OUCH codec, byte for byte and field for field.

`soupbintcp.ouch._fast` reads Order Accepted, Order Canceled and Order Executed at fixed
offsets and builds Enter Order with one `struct` call; the order book applies the common
answers from those fields (`apply_answer`) instead of decoded messages (`apply_outbound`).
Hypothesis checks, over valid messages and the same with one byte changed, cut or extended:
whatever the fast path accepts the codec decodes to the same values; whatever valid message
without appendage the codec decodes, the fast path accepts; Enter Order's bytes are
`EnterOrder.encode()`'s, and the fast path refuses exactly what the codec refuses; and two
books fed the same stream through either path end the same, with the same answers.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soupbintcp import ouch as o
from soupbintcp._speedups import ACCELERATED
from soupbintcp.orders import OrderBook, OrderCore
from soupbintcp.orders._book import Answer
from soupbintcp.orders._ledger import _new_answer
from soupbintcp.orders._messages import apply_answer, apply_outbound
from soupbintcp.ouch._fast import (
    accepted_fields,
    canceled_fields,
    encode_enter_order,
    enter_order_codes,
    executed_fields,
    pure_accepted_fields,
    pure_canceled_fields,
    pure_executed_fields,
)

_U32, _U64 = 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF
_TEXT = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def _text(width: int) -> st.SearchStrategy[str]:
    return st.text(_TEXT, max_size=width).map(lambda s: s.rstrip(" "))


def _members(kind: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(list(kind.codes.values()))


def _fixed(cls: type[o.Message]) -> st.SearchStrategy[o.Message]:
    """A message of `cls` without appendage."""
    fields: list[st.SearchStrategy[Any]] = []
    for kind in cls.KINDS:
        if kind.codes is not None:
            fields.append(_members(kind))
        elif kind.text_width:
            fields.append(_text(kind.text_width))
        else:
            fields.append(st.integers(0, _U32 if kind.struct_code == "I" else _U64))
    return st.tuples(*fields).map(lambda values: cls(*values))


@st.composite
def _damaged(draw: st.DrawFn, cls: type[o.Message]) -> bytes:
    """A valid payload of `cls`, often with one byte changed, or cut, or extended."""
    raw = bytearray(draw(_fixed(cls)).encode())
    how = draw(st.sampled_from(["as is", "byte", "byte", "cut", "extend"]))
    if how == "byte":
        raw[draw(st.integers(1, len(raw) - 1))] = draw(st.integers(0, 255))
    elif how == "cut":
        del raw[draw(st.integers(1, len(raw) - 1)) :]
    elif how == "extend":
        raw += draw(st.binary(min_size=1, max_size=8))
    return bytes(raw)


def _decoded(payload: bytes) -> o.Message | None:
    try:
        return o.decode_outbound(payload)
    except o.OuchError:
        return None


def _agree(fast: Any, cls: type[o.Message], payload: bytes, fields_of: Any) -> None:
    got = fast(payload)
    message = _decoded(payload)
    if got is not None:
        assert type(message) is cls, "the fast path accepted what the codec refuses"
        want = fields_of(message)
        assert got == want
        assert all(a is b for a, b in zip(got, want, strict=True) if not isinstance(a, int | str))
    elif type(message) is cls and len(payload) == cls.FIXED:
        raise AssertionError(f"the fast path refused a valid {cls.__name__}: {payload!r}")


@settings(max_examples=200)
@given(_damaged(o.OrderAccepted))
def test_order_accepted_fields_agree_with_the_codec(payload: bytes) -> None:
    def fields(m: Any) -> tuple[Any, ...]:
        dead = m.order_state is o.OrderState.DEAD
        head = (m.user_ref_num, m.cl_ord_id, m.symbol, m.side, m.quantity, m.price)
        return (*head, m.time_in_force, m.order_reference_number, dead)

    _agree(accepted_fields, o.OrderAccepted, payload, fields)


@settings(max_examples=200)
@given(_damaged(o.OrderCanceled))
def test_order_canceled_fields_agree_with_the_codec(payload: bytes) -> None:
    _agree(canceled_fields, o.OrderCanceled, payload, lambda m: (m.user_ref_num, m.quantity))


@settings(max_examples=200)
@given(_damaged(o.OrderExecuted))
def test_order_executed_fields_agree_with_the_codec(payload: bytes) -> None:
    _agree(
        executed_fields,
        o.OrderExecuted,
        payload,
        lambda m: (m.user_ref_num, m.quantity, m.price, m.liquidity_flag, m.match_number),
    )


_TWINS: list[tuple[Any, Any, type[o.Message]]] = [
    (accepted_fields, pure_accepted_fields, o.OrderAccepted),
    (canceled_fields, pure_canceled_fields, o.OrderCanceled),
    (executed_fields, pure_executed_fields, o.OrderExecuted),
]


@pytest.mark.skipif(not ACCELERATED, reason="the compiled module is not in use")
@settings(max_examples=300)
@given(st.sampled_from(range(len(_TWINS))), st.data())
def test_the_compiled_readers_are_their_pure_twins(which: int, data: st.DataObject) -> None:
    compiled, pure, cls = _TWINS[which]
    assert compiled is not pure
    payload = data.draw(_damaged(cls))
    want = pure(payload)
    for _ in range(2):  # the first may fill the pure side's caches, the second reads them
        got = compiled(payload)
        assert got == want
        if got is not None and want is not None:
            assert [type(x) for x in got] == [type(x) for x in want]
            assert all(a is b for a, b in zip(got, want, strict=True) if type(a) not in (int, str))
    assert compiled(bytearray(payload)) == pure(bytearray(payload))


@pytest.mark.skipif(not ACCELERATED, reason="the compiled module is not in use")
def test_the_compiled_readers_agree_on_every_byte_changed() -> None:
    # Every position of a valid message, set to a few telling values (each code, length,
    # padding and text byte): what random damage may take long to hit.
    messages: list[o.Message] = [
        o.OrderAccepted(
            7, 5, o.Side.BUY, 100, "AAPL", 10_000, o.TimeInForce.DAY, o.Display.VISIBLE, 9,
            o.Capacity.AGENCY, o.IntermarketSweepEligibility.NOT_ELIGIBLE,
            o.CrossType.CONTINUOUS, o.OrderState.LIVE, "C1",
        ),
        o.OrderCanceled(7, 5, 100, o.CancelReason.IMMEDIATE_OR_CANCEL),
        o.OrderExecuted(7, 5, 100, 10_000, o.LiquidityFlag.ADDED, 42),
    ]  # fmt: skip
    for (compiled, pure, _), message in zip(_TWINS, messages, strict=True):
        valid = message.encode()
        assert compiled(valid) == compiled(valid) == pure(valid) is not None
        for i in range(1, len(valid)):
            for value in (0, 1, 0x20, 0x41, 0x7F, 0x80, 0xFF):
                payload = valid[:i] + bytes([value]) + valid[i + 1 :]
                assert compiled(payload) == compiled(payload) == pure(payload), (i, value)


def test_the_fast_readers_leave_appendages_to_the_codec() -> None:
    accepted = o.OrderAccepted(
        1, 7, o.Side.BUY, 100, "AAPL", 10_000, o.TimeInForce.DAY, o.Display.VISIBLE, 42,
        o.Capacity.AGENCY, o.IntermarketSweepEligibility.NOT_ELIGIBLE, o.CrossType.CONTINUOUS,
        o.OrderState.LIVE, "C1", (o.MinQty(10),),
    )  # fmt: skip
    assert accepted_fields(accepted.encode()) is None
    assert accepted_fields(accepted._replace(appendage=()).encode()) is not None


# Too long (ASCII) and not ASCII included.
_ANY_TEXT = st.one_of(st.text(_TEXT, min_size=8, max_size=16), st.text(max_size=16))


@settings(max_examples=300)
@given(
    num=st.integers(0, _U32 + 1),
    side=st.sampled_from(list(o.Side)),
    quantity=st.one_of(st.integers(-1, _U32 + 1), st.just(1.5)),
    symbol=st.one_of(_text(8), _ANY_TEXT),
    price=st.integers(-1, _U64 + 1),
    tif=st.sampled_from(list(o.TimeInForce)),
    display=st.sampled_from(list(o.Display)),  # Z: outbound only, refused in Enter Order
    capacity=st.sampled_from(list(o.Capacity)),
    ise=st.sampled_from(list(o.IntermarketSweepEligibility)),
    cross=st.sampled_from(list(o.CrossType)),
    cl_ord_id=st.one_of(_text(14), _ANY_TEXT),
)
def test_enter_order_bytes_are_the_codecs(
    num: int, side: o.Side, quantity: Any, symbol: str, price: int, tif: o.TimeInForce,
    display: o.Display, capacity: o.Capacity, ise: o.IntermarketSweepEligibility,
    cross: o.CrossType, cl_ord_id: str,
) -> None:  # fmt: skip
    codes = enter_order_codes(side, tif, display, capacity, ise, cross)
    fast = encode_enter_order(num, codes, quantity, symbol, price, cl_ord_id) if codes else None
    message = o.EnterOrder(
        num, side, quantity, symbol, price, tif, display, capacity, ise, cross, cl_ord_id
    )
    try:
        full: bytes | None = message.encode()
    except o.OuchEncodeError:
        full = None
    assert fast == full


# --- the book: the fast path and the codec's path give the same book and answers -----------


def _sent_book(orders: int) -> OrderBook:
    book = OrderBook()
    for num in range(1, orders + 1):
        book.sent_enter(b"", num, f"C{num}", "AAPL", "B", 100, 10_000, "0")
    return book


@st.composite
def _answer_stream(draw: st.DrawFn) -> list[bytes]:
    """Accepted (live or dead), Canceled, Executed and Rejected for orders 1-4 (and some
    number nobody sent), in any order, some damaged."""
    out = []
    for _ in range(draw(st.integers(1, 25))):
        num = draw(st.integers(1, 5))
        cls: type[Any] = draw(
            st.sampled_from([o.OrderAccepted, o.OrderCanceled, o.OrderExecuted, o.Rejected])
        )
        message: Any = draw(_fixed(cls))
        message = message._replace(user_ref_num=num)
        if cls is not o.Rejected:
            message = message._replace(quantity=draw(st.integers(0, 150)))
        raw = bytearray(message.encode())
        if draw(st.integers(0, 9)) == 0:
            raw[draw(st.integers(1, len(raw) - 1))] = draw(st.integers(0, 255))
        out.append(bytes(raw))
    return out


def _answers(answers: list[Any]) -> list[tuple[Any, ...]]:
    return [(a.request.kind, a.request.user_ref_num, a.outcome) for a in answers]


@settings(max_examples=80)
@given(_answer_stream())
def test_a_book_fed_by_the_fast_path_ends_as_one_fed_by_the_codec(stream: list[bytes]) -> None:
    fast, full = _sent_book(4), _sent_book(4)
    for payload in stream:
        got = apply_answer(fast, payload)
        want = apply_outbound(full, payload)[1]
        assert _answers(got) == _answers(want)
    assert fast.view() == full.view()
    assert (fast.malformed, fast.unknown) == (full.malformed, full.unknown)
    for num, order in full.orders.items():
        mine = fast.orders[num]
        assert (mine.side, mine.time_in_force, mine.order_reference_number, mine.fills) == (
            order.side, order.time_in_force, order.order_reference_number, order.fills,
        )  # fmt: skip


@settings(max_examples=30)
@given(_answer_stream())
def test_the_core_tells_the_same_answers_with_or_without_events(stream: list[bytes]) -> None:
    cores = []
    for _ in range(2):
        core = OrderCore(None)
        core.logged_in("S")
        core.received_run(1, [o.AccountQueryResponse(0, 1).encode()])
        for _ in range(4):
            core.enter("AAPL", "B", 100, 10_000)
        core.take(0.0)
        cores.append(core)
    events = cores[0].received_run(2, stream)
    answers = cores[1].received_answers(2, stream)
    assert _answers([a for e in events for a in e.answers]) == _answers(answers)
    assert [e.sequence for e in events] == list(range(2, 2 + len(stream)))
    assert [e.message for e in events] == [_decoded(p) for p in stream]  # decoded on demand
    assert cores[0].book.view() == cores[1].book.view()
    assert cores[0].received == cores[1].received == 1 + len(stream)


@given(st.integers(), st.text(max_size=20), st.none() | st.integers())
def test_answers_built_in_c_are_the_named_tuples(request: int, outcome: str, order: Any) -> None:
    # `_ledger._new_answer` (tuple.__new__) stands for `Answer(...)` on the hot path.
    built = _new_answer((request, outcome, order))  # type: ignore[arg-type]
    assert type(built) is Answer
    assert built == Answer(request, outcome, order)  # type: ignore[arg-type]
    assert (built.request, built.outcome, built.order) == (request, outcome, order)
