"""`soupbintcp.itch.ItchEncoder`: the messages an order book publishes, as itchfeed encodes them.

One vector is written by hand from the ITCH 5.0 specification's Add Order table; every method
is read back by the project's decoder with the fields it was given.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from soupbintcp.itch import ItchEncoder, TimeOfDay, decode

TS = 34_200_000_000_000  # 09:30:00


def test_add_order_matches_the_specification_table() -> None:
    wire = bytes.fromhex(
        "41"  # 0 Message Type A
        "0001"  # 1 Stock Locate 1
        "0000"  # 3 Tracking Number 0
        "1f1aced9f000"  # 5 Timestamp 09:30:00 (6 bytes)
        "0000000000000007"  # 11 Order Reference Number 7
        "42"  # 19 Buy/Sell Indicator B
        "00000064"  # 20 Shares 100
        "4141504c20202020"  # 24 Stock "AAPL    "
        "0016e360"  # 32 Price 150.0000 (4 implied decimals)
    )
    assert ItchEncoder().add_order(TS, 1, 7, "B", 100, "AAPL", 1_500_000) == wire


def test_every_message_reads_back() -> None:
    e = ItchEncoder()
    cases: list[tuple[bytes, str, dict[str, Any]]] = [
        (e.system_event(TS, "Q"), "S", {"event_code": "Q"}),
        (e.stock_directory(TS, 2, "MSFT"), "R", {"stock": "MSFT", "round_lot_size": 100}),
        (e.add_order(TS, 2, 9, "S", 300, "MSFT", 1_000_100), "A",
         {"order_reference_number": 9, "buy_sell_indicator": "S", "shares": 300,
          "price": Decimal("100.0100")}),
        (e.order_executed(TS, 2, 9, 100, 44), "E",
         {"order_reference_number": 9, "executed_shares": 100, "match_number": 44}),
        (e.order_cancel(TS, 2, 9, 50), "X", {"order_reference_number": 9, "cancelled_shares": 50}),
        (e.order_delete(TS, 2, 9), "D", {"order_reference_number": 9}),
        (e.order_replace(TS, 2, 9, 10, 200, 990_000), "U",
         {"original_order_reference_number": 9, "new_order_reference_number": 10, "shares": 200,
          "price": Decimal("99.0000")}),
        (e.trade(TS, 2, "B", 100, "MSFT", 990_000, 45), "P",
         {"order_reference_number": 0, "buy_sell_indicator": "B", "shares": 100, "stock": "MSFT",
          "match_number": 45}),
    ]  # fmt: skip
    for payload, letter, fields in cases:
        message = decode(payload)
        assert message.type == letter
        assert message.fields["timestamp"] == TimeOfDay(TS)
        assert {k: message.fields[k] for k in fields} == fields
