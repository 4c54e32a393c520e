"""OUCH 5.0 golden vectors: every message and every tag, written byte by byte from the
reference's tables (../shared/specs/ouch-5.0.md §2, §3, Appendix B), not by the encoder.

Each vector is hex, one field per string with its offset, so a reader can check it against
the table. Both directions are tested: the encoder must produce exactly these bytes and the
decoder must turn them into exactly this message.
"""

from __future__ import annotations

import pytest

from soupbintcp import ouch as o

TS = "00001f1aced9f000"  # Timestamp 09:30:00 = 34,200,000,000,000 ns since midnight
TS_NS = 34_200_000_000_000
CLORD = "4f52444552312020202020202020"  # ClOrdID "ORDER1" + 8 spaces = 14 bytes
MSFT = "4d53465420202020"  # Symbol "MSFT" + 4 spaces = 8 bytes

INBOUND: list[tuple[o.Message, str]] = [
    (
        o.EnterOrder(
            user_ref_num=42,
            side=o.Side.SELL,
            quantity=500,
            symbol="MSFT",
            price=385_000,  # $38.5000
            time_in_force=o.TimeInForce.IOC,
            display=o.Display.HIDDEN,
            capacity=o.Capacity.PRINCIPAL,
            intermarket_sweep_eligibility=o.IntermarketSweepEligibility.NOT_ELIGIBLE,
            cross_type=o.CrossType.CONTINUOUS,
            cl_ord_id="ORDER1",
        ),
        "4f"  # 0 Type O
        "0000002a"  # 1 UserRefNum 42
        "53"  # 5 Side S
        "000001f4"  # 6 Quantity 500
        + MSFT  # 10 Symbol
        + "000000000005dfe8"  # 18 Price 385000
        "33"  # 26 TIF 3 (IOC)
        "4e"  # 27 Display N
        "50"  # 28 Capacity P
        "4e"  # 29 ISE N
        "4e"  # 30 CrossType N
        + CLORD  # 31 ClOrdID
        + "0000",  # 45 Appendage Length 0  -> 47 bytes
    ),
    (
        o.ReplaceOrderRequest(
            orig_user_ref_num=42,
            user_ref_num=43,
            quantity=600,
            price=1_999_999_900,  # the highest price, $199,999.9900
            time_in_force=o.TimeInForce.DAY,
            display=o.Display.VISIBLE,
            intermarket_sweep_eligibility=o.IntermarketSweepEligibility.ELIGIBLE,
            cl_ord_id="ORDER1",
            appendage=(o.MinQty(100),),
        ),
        "55"  # 0 Type U
        "0000002a"  # 1 OrigUserRefNum 42
        "0000002b"  # 5 UserRefNum 43
        "00000258"  # 9 Quantity 600
        "000000007735939c"  # 13 Price 1999999900
        "30"  # 21 TIF 0
        "59"  # 22 Display Y
        "59"  # 23 ISE Y
        + CLORD  # 24 ClOrdID
        + "0006"  # 38 Appendage Length 6
        "050300000064",  # 40 MinQty 100 (the reference's own example)
    ),
    (o.CancelOrderRequest(user_ref_num=43, quantity=0), "580000002b00000000"),
    (
        o.ModifyOrderRequest(user_ref_num=7, side=o.Side.SELL_SHORT_EXEMPT, quantity=100),
        "4d000000074500000064",  # side E (not the Rust model's U, §6 R3)
    ),
    (o.AccountQueryRequest(), "51"),
]

OUTBOUND: list[tuple[o.Message, str]] = [
    (o.SystemEvent(TS_NS, o.EventCode.START_OF_DAY), "53" + TS + "53"),
    (
        o.OrderAccepted(
            timestamp=TS_NS,
            user_ref_num=42,
            side=o.Side.BUY,
            quantity=500,
            symbol="MSFT",
            price=385_000,
            time_in_force=o.TimeInForce.DAY,
            display=o.Display.CONFORMANT,
            order_reference_number=123_456_789,
            capacity=o.Capacity.AGENCY,
            intermarket_sweep_eligibility=o.IntermarketSweepEligibility.NOT_ELIGIBLE,
            cross_type=o.CrossType.CONTINUOUS,
            order_state=o.OrderState.LIVE,
            cl_ord_id="ORDER1",
            appendage=(o.Firm("ABCD"),),
        ),
        "41"  # 0 Type A
        + TS  # 1 Timestamp
        + "0000002a"  # 9 UserRefNum
        "42"  # 13 Side B
        "000001f4"  # 14 Quantity 500
        + MSFT  # 18 Symbol
        + "000000000005dfe8"  # 26 Price
        "30"  # 34 TIF 0
        "5a"  # 35 Display Z
        "00000000075bcd15"  # 36 Order Reference Number 123456789
        "41"  # 44 Capacity A
        "4e"  # 45 ISE N
        "4e"  # 46 CrossType N
        "4c"  # 47 Order State L
        + CLORD  # 48 ClOrdID
        + "0006"  # 62 Appendage Length
        "050241424344",  # 64 Firm "ABCD"
    ),
    (
        o.OrderReplaced(
            timestamp=TS_NS,
            orig_user_ref_num=42,
            user_ref_num=43,
            side=o.Side.BUY,
            quantity=400,
            symbol="MSFT",
            price=385_000,
            time_in_force=o.TimeInForce.DAY,
            display=o.Display.VISIBLE,
            order_reference_number=123_456_789,
            capacity=o.Capacity.AGENCY,
            intermarket_sweep_eligibility=o.IntermarketSweepEligibility.NOT_ELIGIBLE,
            cross_type=o.CrossType.CONTINUOUS,
            order_state=o.OrderState.DEAD,
            cl_ord_id="ORDER1",
        ),
        "55"  # 0 Type U
        + TS  # 1
        + "0000002a"  # 9 OrigUserRefNum
        "0000002b"  # 13 UserRefNum
        "42"  # 17 Side
        "00000190"  # 18 Quantity 400
        + MSFT  # 22
        + "000000000005dfe8"  # 30 Price
        "30"  # 38 TIF
        "59"  # 39 Display
        "00000000075bcd15"  # 40 Order Reference Number
        "41"  # 48 Capacity
        "4e"  # 49 ISE
        "4e"  # 50 CrossType
        "44"  # 51 Order State D
        + CLORD  # 52
        + "0000",  # 66 Appendage Length -> 68
    ),
    (
        o.OrderCanceled(TS_NS, 43, 100, o.CancelReason.USER_REQUESTED),
        "43" + TS + "0000002b0000006455",  # 18 bytes, no OrigUserRefNum (§6 R2)
    ),
    (
        o.AiqCanceled(
            timestamp=TS_NS,
            user_ref_num=43,
            decrement_shares=100,
            reason=o.CancelReason.SELF_MATCH_PREVENTION,
            quantity_prevented_from_trading=100,
            execution_price=385_000,
            liquidity_flag=o.LiquidityFlag.ADDED,
            aiq_strategy="O",
        ),
        "44" + TS + "0000002b000000645100000064000000000005dfe8414f",
    ),
    (
        o.OrderExecuted(TS_NS, 42, 100, 385_000, o.LiquidityFlag.REMOVED, 987_654_321),
        "45" + TS + "0000002a00000064000000000005dfe852000000003ade68b10000",
    ),
    (
        o.BrokenTrade(TS_NS, 42, 987_654_321, o.BrokenTradeReason.ERRONEOUS, "ORDER1"),
        "42" + TS + "0000002a000000003ade68b145" + CLORD,
    ),
    (
        o.Rejected(TS_NS, 44, o.RejectReason.INVALID_SYMBOL, "ORDER1"),
        "4a" + TS + "0000002c0017" + CLORD,
    ),
    (o.CancelPending(TS_NS, 42), "50" + TS + "0000002a"),
    (o.CancelReject(TS_NS, 42), "49" + TS + "0000002a"),
    (
        o.OrderPriorityUpdate(TS_NS, 42, 385_000, o.Display.VISIBLE, 5),
        "54" + TS + "0000002a000000000005dfe8590000000000000005",
    ),
    (o.OrderModified(TS_NS, 42, o.Side.SELL_SHORT, 300), "4d" + TS + "0000002a540000012c"),
    (
        o.OrderRestated(
            TS_NS,
            42,
            o.RestatedReason.REFRESH,
            (o.DisplayQuantity(300), o.DisplayPrice(10_000), o.SecondaryOrdRefNum(7)),
        ),
        "52" + TS + "0000002a"
        "52"
        "001a"  # 26 bytes of appendage
        "0516"
        "0000012c"  # tag 22, 300
        "0917"
        "0000000000002710"  # tag 23, 10000
        "0901"
        "0000000000000007",  # tag 1, 7
    ),
    (o.AccountQueryResponse(TS_NS, 45), "51" + TS + "0000002d"),
]

# Every Appendix B tag, as an element: Length (1 + value size), tag, value.
TAGS: list[tuple[o.Option, str]] = [
    (o.SecondaryOrdRefNum(7), "09010000000000000007"),
    (o.Firm("ABCD"), "050241424344"),
    (o.MinQty(100), "050300000064"),
    (o.CustomerTypeOption(o.CustomerType.RETAIL), "020452"),
    (o.MaxFloor(200), "0505000000c8"),
    (o.PriceTypeOption(o.PriceType.MIDPOINT_PEG), "02064d"),
    (o.PegOffset(-100), "0507ffffff9c"),  # two's complement (§6 A7), not f32 (R4)
    (o.DiscretionPrice(12_345), "09090000000000003039"),
    (o.DiscretionPriceType(o.PriceType.MARKET_PEG), "020a50"),
    (o.DiscretionPegOffset(50), "050b00000032"),
    (o.PostOnlyOption(o.PostOnly.POST_ONLY), "020c50"),
    (o.RandomReserves(1000), "050d000003e8"),
    (o.Route("RT1"), "050e52543120"),  # left-justified (§6 R6)
    (o.ExpireTime(3600), "050f00000e10"),
    (o.TradeNowOption(o.TradeNow.YES), "021059"),
    (o.HandleInstOption(o.HandleInst.IMBALANCE_ONLY), "021149"),
    (o.BboWeight(o.BboWeightIndicator.UP_TO_1_PERCENT), "021231"),
    (o.DisplayQuantity(300), "05160000012c"),
    (o.DisplayPrice(10_000), "09170000000000002710"),
    (o.GroupID(7), "03180007"),
    (o.SharesLocatedOption(o.SharesLocated.YES), "021959"),
]


def _ids(cases: list[tuple[o.Message, str]]) -> list[str]:
    return [type(message).__name__ for message, _ in cases]


@pytest.mark.parametrize(("message", "wire"), INBOUND, ids=_ids(INBOUND))
def test_inbound_message_matches_the_table(message: o.Message, wire: str) -> None:
    raw = bytes.fromhex(wire)
    assert len(raw) == message.FIXED + (len(raw) - message.FIXED)
    assert message.encode() == raw
    assert o.decode_inbound(raw, strict=True) == message


@pytest.mark.parametrize(("message", "wire"), OUTBOUND, ids=_ids(OUTBOUND))
def test_outbound_message_matches_the_table(message: o.Message, wire: str) -> None:
    raw = bytes.fromhex(wire)
    assert message.encode() == raw
    assert o.decode_outbound(raw, strict=True) == message


def test_fixed_lengths_are_the_references() -> None:
    lengths = {cls.__name__: cls.FIXED for cls in [*o.INBOUND.values(), *o.OUTBOUND.values()]}
    assert lengths == {
        "EnterOrder": 47,
        "ReplaceOrderRequest": 40,
        "CancelOrderRequest": 9,
        "ModifyOrderRequest": 10,
        "AccountQueryRequest": 1,
        "SystemEvent": 10,
        "OrderAccepted": 64,
        "OrderReplaced": 68,
        "OrderCanceled": 18,
        "AiqCanceled": 32,
        "OrderExecuted": 36,
        "BrokenTrade": 36,
        "Rejected": 29,
        "CancelPending": 13,
        "CancelReject": 13,
        "OrderPriorityUpdate": 30,
        "OrderModified": 18,
        "OrderRestated": 16,
        "AccountQueryResponse": 13,
    }
    assert len(o.INBOUND) == 5
    assert len(o.OUTBOUND) == 14


@pytest.mark.parametrize(("option", "element"), TAGS, ids=[type(t).__name__ for t, _ in TAGS])
def test_every_tag_matches_appendix_b(option: o.Option, element: str) -> None:
    """Each tag inside the one message that allows it (Accepted, or Restated for 1/22/23)."""
    raw_element = bytes.fromhex(element)
    assert raw_element[0] == option.SIZE + 1
    if option.TAG in (1, 22, 23):
        message: o.Message = o.OrderRestated(TS_NS, 1, o.RestatedReason.REFRESH, (option,))
        head = "52" + TS + "0000000152"
    else:
        message = OUTBOUND[1][0]._replace(appendage=(option,))  # type: ignore[attr-defined]
        head = OUTBOUND[1][1][: 62 * 2]
    raw = bytes.fromhex(head) + len(raw_element).to_bytes(2, "big") + raw_element
    assert message.encode() == raw
    assert o.decode_outbound(raw, strict=True) == message


def test_every_appendix_b_tag_has_a_vector() -> None:
    assert sorted(t.TAG for t, _ in TAGS) == sorted(o.OPTION_CLASSES)
    assert sorted(o.OPTION_CLASSES) == [*range(1, 8), *range(9, 19), 22, 23, 24, 25]


def test_direction_decides_what_u_m_q_mean() -> None:
    assert type(o.decode_inbound(b"Q")) is o.AccountQueryRequest
    assert type(o.decode_outbound(bytes.fromhex("51" + TS + "0000002d"))) is o.AccountQueryResponse
    modify = bytes.fromhex("4d000000074500000064")
    assert type(o.decode_inbound(modify)) is o.ModifyOrderRequest
    with pytest.raises(o.MessageLengthError):
        o.decode_outbound(modify)  # an Order Modified is 18 bytes


def test_prices_have_an_exact_decimal_view() -> None:
    from decimal import Decimal

    assert o.to_decimal(385_000) == Decimal("38.5")
    assert o.to_decimal(1) == Decimal("0.0001")
    assert o.to_ticks("199999.99") == o.MAX_PRICE
    assert o.to_ticks(Decimal("214748.3647")) == o.MARKET_PRICE == 0x7FFFFFFF
    assert INBOUND[0][0].price_decimal == Decimal("38.5000")  # type: ignore[attr-defined]
    with pytest.raises(o.OuchEncodeError):
        o.to_ticks("1.00001")
