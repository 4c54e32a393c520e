"""soupbintcp.itch against the Nasdaq TotalView-ITCH 5.0 specification's published layouts.

Each message is built here byte by byte at the offsets and widths the specification lists
(independently of the library whose layouts we use), then decoded and compared field by field.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soupbintcp import SoupBinTCPError
from soupbintcp.itch import (
    MESSAGE_SIZES,
    MESSAGE_TYPES,
    Decoder,
    ItchDecodeError,
    TimeOfDay,
    decode,
    to_json,
    to_jsonable,
    to_text,
)

# (offset, width, field name, raw value: int big-endian or bytes, expected decoded value)
Spec = list[tuple[int, int, str, int | bytes, Any]]

D = Decimal


def _stock(symbol: str) -> bytes:
    return symbol.encode().ljust(8)


# The specification, message by message: offsets after the common header at 0..10
# (Message Type 0/1, Stock Locate 1/2, Tracking Number 3/2, Timestamp 5/6).
PUBLISHED: dict[str, tuple[int, Spec]] = {
    "S": (12, [(11, 1, "event_code", b"O", "O")]),
    "R": (39, [
        (11, 8, "stock", _stock("AAPL"), "AAPL"), (19, 1, "market_category", b"Q", "Q"),
        (20, 1, "financial_status_indicator", b"N", "N"),
        (21, 4, "round_lot_size", 100, 100), (25, 1, "round_lots_only", b"N", "N"),
        (26, 1, "issue_classification", b"C", "C"), (27, 2, "issue_sub_type", b"Z ", "Z"),
        (29, 1, "authenticity", b"P", "P"), (30, 1, "short_sale_threshold_indicator", b"N", "N"),
        (31, 1, "ipo_flag", b"N", "N"), (32, 1, "luld_reference_price_tier", b"1", "1"),
        (33, 1, "etp_flag", b"N", "N"), (34, 4, "etp_leverage_factor", 3, 3),
        (38, 1, "inverse_indicator", b"Y", "Y"),
    ]),
    "H": (25, [
        (11, 8, "stock", _stock("MSFT"), "MSFT"), (19, 1, "trading_state", b"T", "T"),
        (20, 1, "reserved", b" ", ""), (21, 4, "reason", b"LUDP", "LUDP"),
    ]),
    "Y": (20, [(11, 8, "stock", _stock("QQQ"), "QQQ"), (19, 1, "reg_sho_action", b"1", "1")]),
    "L": (26, [
        (11, 4, "mpid", b"GSCO", "GSCO"), (15, 8, "stock", _stock("NVDA"), "NVDA"),
        (23, 1, "primary_market_maker", b"Y", "Y"), (24, 1, "market_maker_mode", b"N", "N"),
        (25, 1, "market_participant_state", b"A", "A"),
    ]),
    "V": (35, [
        (11, 8, "level_1", 361_234_000_000, D("3612.34000000")),
        (19, 8, "level_2", 123456789, D("1.23456789")),
        (27, 8, "level_3", 2**64 - 1, D("184467440737.09551615")),
    ]),
    "W": (12, [(11, 1, "breached_level", b"2", "2")]),
    "K": (28, [
        (11, 8, "stock", _stock("ARM"), "ARM"),
        (19, 4, "ipo_quotation_release_time", 36_000, TimeOfDay(36_000 * 10**9)),
        (23, 1, "ipo_quotation_release_qualifier", b"A", "A"),
        (24, 4, "ipo_price", 510000, D("51.0000")),
    ]),
    "J": (35, [
        (11, 8, "stock", _stock("TSLA"), "TSLA"),
        (19, 4, "auction_collar_reference_price", 2_500_000, D("250.0000")),
        (23, 4, "upper_auction_collar_price", 2_625_000, D("262.5000")),
        (27, 4, "lower_auction_collar_price", 2_375_000, D("237.5000")),
        (31, 4, "auction_collar_extension", 2, 2),
    ]),
    "h": (21, [
        (11, 8, "stock", _stock("IBM"), "IBM"), (19, 1, "market_code", b"Q", "Q"),
        (20, 1, "operational_halt_action", b"H", "H"),
    ]),
    "A": (36, [
        (11, 8, "order_reference_number", 2**63 + 5, 2**63 + 5),
        (19, 1, "buy_sell_indicator", b"B", "B"), (20, 4, "shares", 2**32 - 1, 2**32 - 1),
        (24, 8, "stock", _stock("AAPL"), "AAPL"), (32, 4, "price", 1_892_501, D("189.2501")),
    ]),
    "F": (40, [
        (11, 8, "order_reference_number", 77, 77), (19, 1, "buy_sell_indicator", b"S", "S"),
        (20, 4, "shares", 300, 300), (24, 8, "stock", _stock("GOOGL"), "GOOGL"),
        (32, 4, "price", 1, D("0.0001")), (36, 4, "attribution", b"NSDQ", "NSDQ"),
    ]),
    "E": (31, [
        (11, 8, "order_reference_number", 78, 78), (19, 4, "executed_shares", 50, 50),
        (23, 8, "match_number", 9_876_543_210, 9_876_543_210),
    ]),
    "C": (36, [
        (11, 8, "order_reference_number", 79, 79), (19, 4, "executed_shares", 60, 60),
        (23, 8, "match_number", 42, 42), (31, 1, "printable", b"Y", "Y"),
        (32, 4, "execution_price", 2_000_000_000, D("200000.0000")),
    ]),
    "X": (23, [(11, 8, "order_reference_number", 80, 80), (19, 4, "cancelled_shares", 7, 7)]),
    "D": (19, [(11, 8, "order_reference_number", 81, 81)]),
    "U": (35, [
        (11, 8, "original_order_reference_number", 82, 82),
        (19, 8, "new_order_reference_number", 83, 83), (27, 4, "shares", 400, 400),
        (31, 4, "price", 1_000_000, D("100.0000")),
    ]),
    "P": (44, [
        (11, 8, "order_reference_number", 0, 0), (19, 1, "buy_sell_indicator", b"B", "B"),
        (20, 4, "shares", 25, 25), (24, 8, "stock", _stock("AMZN"), "AMZN"),
        (32, 4, "price", 1_234_567, D("123.4567")), (36, 8, "match_number", 99, 99),
    ]),
    "Q": (40, [
        (11, 8, "shares", 10**12, 10**12), (19, 8, "stock", _stock("SPY"), "SPY"),
        (27, 4, "cross_price", 4_500_000, D("450.0000")), (31, 8, "match_number", 100, 100),
        (39, 1, "cross_type", b"O", "O"),
    ]),
    "B": (19, [(11, 8, "match_number", 101, 101)]),
    "I": (50, [
        (11, 8, "paired_shares", 1000, 1000), (19, 8, "imbalance_shares", 200, 200),
        (27, 1, "imbalance_direction", b"B", "B"), (28, 8, "stock", _stock("META"), "META"),
        (36, 4, "far_price", 3_000_000, D("300.0000")),
        (40, 4, "near_price", 3_010_000, D("301.0000")),
        (44, 4, "current_reference_price", 3_005_000, D("300.5000")),
        (48, 1, "cross_type", b"C", "C"), (49, 1, "price_variation_indicator", b"L", "L"),
    ]),
    "N": (20, [(11, 8, "stock", _stock("AMD"), "AMD"), (19, 1, "interest_flag", b"B", "B")]),
    "O": (48, [
        (11, 8, "stock", _stock("NEWCO"), "NEWCO"),
        (19, 1, "open_eligibility_status", b"Y", "Y"),
        (20, 4, "minimum_allowable_price", 80_000, D("8.0000")),
        (24, 4, "maximum_allowable_price", 180_000, D("18.0000")),
        (28, 4, "near_execution_price", 100_000, D("10.0000")),
        (32, 8, "near_execution_time", 123_456_789, 123_456_789),
        (40, 4, "lower_price_range_collar", 90_000, D("9.0000")),
        (44, 4, "upper_price_range_collar", 110_000, D("11.0000")),
    ]),
}  # fmt: skip

TIMESTAMP = 57_599_999_999_999  # 15:59:59.999999999


def build(letter: str, locate: int = 7, tracking: int = 3) -> bytes:
    """The message, each field written at its published offset."""
    size, spec = PUBLISHED[letter]
    out = bytearray(size)
    out[0:1] = letter.encode()
    out[1:3] = locate.to_bytes(2, "big")
    out[3:5] = tracking.to_bytes(2, "big")
    out[5:11] = TIMESTAMP.to_bytes(6, "big")
    for offset, width, _, raw, _ in spec:
        data = raw if isinstance(raw, bytes) else raw.to_bytes(width, "big")
        assert len(data) == width
        out[offset : offset + width] = data
    return bytes(out)


def test_the_specification_table_here_covers_every_message_type_and_every_byte() -> None:
    assert set(PUBLISHED) == set(MESSAGE_TYPES) == set("SRHYLVWKJhAFECXDUPQBINO")
    for letter, (size, spec) in PUBLISHED.items():
        covered = 11 + sum(width for _, width, *_ in spec)
        assert covered == size == MESSAGE_SIZES[letter], letter
        ends = [offset + width for offset, width, *_ in spec]
        assert [offset for offset, *_ in spec] == [11, *ends[:-1]], letter  # contiguous


@pytest.mark.parametrize("letter", list(PUBLISHED))
def test_each_message_type_decodes_at_the_published_offsets(letter: str) -> None:
    message = decode(build(letter))
    _, spec = PUBLISHED[letter]
    assert message.ok
    assert message.type == letter
    assert message.name == MESSAGE_TYPES[letter]
    expected = {"stock_locate": 7, "tracking_number": 3, "timestamp": TimeOfDay(TIMESTAMP)}
    expected.update({name: value for _, _, name, _, value in spec})
    assert message.fields == expected
    assert list(message.fields) == list(expected)  # wire order
    for value in message.fields.values():
        if isinstance(value, Decimal):
            assert value.as_tuple().exponent in (-4, -8)  # the implied decimals, kept


@pytest.mark.parametrize("letter", list(PUBLISHED))
def test_one_byte_short_or_long_is_refused(letter: str) -> None:
    whole = build(letter)
    for wrong in (whole[:-1], whole + b" "):
        with pytest.raises(ItchDecodeError, match=f"is {len(whole)} bytes"):
            decode(wrong)


def test_errors_belong_to_the_family() -> None:
    with pytest.raises(SoupBinTCPError):
        decode(b"")
    with pytest.raises(ValueError, match=r"unknown ITCH 5\.0 message type"):
        decode(b"z" + bytes(20))


def test_text_that_is_not_ascii_is_an_error_not_a_crash() -> None:
    message = bytearray(build("A"))
    message[24] = 0xE9
    with pytest.raises(ItchDecodeError, match="not ASCII"):
        decode(bytes(message))


def test_time_of_day_reads_as_a_clock() -> None:
    assert str(TimeOfDay(TIMESTAMP)) == "15:59:59.999999999"
    assert str(TimeOfDay(0)) == "00:00:00.000000000"
    assert TimeOfDay(TIMESTAMP).within_a_day
    assert not TimeOfDay(2**48 - 1).within_a_day
    assert str(TimeOfDay(2**48 - 1)) == "78:11:14.976710655"  # hours keep counting


def test_text_and_json_lines() -> None:
    message = decode(build("A"))
    assert to_text(message) == (
        "A Add Order (No MPID Attribution) at 15:59:59.999999999: stock_locate=7 "
        f"tracking_number=3 order_reference_number={2**63 + 5} buy_sell_indicator=B "
        f"shares={2**32 - 1} stock=AAPL price=189.2501"
    )
    line = to_json(message)
    assert "\n" not in line
    assert '"price": 189.2501' in line
    parsed = json.loads(line, parse_float=Decimal)
    assert parsed == to_jsonable(message)
    assert parsed["timestamp"] == "15:59:59.999999999"
    assert parsed["type"] == "A"


def test_json_prices_are_exact_even_with_eight_decimals() -> None:
    parsed = json.loads(to_json(decode(build("V"))), parse_float=Decimal)
    assert parsed["level_3"] == Decimal("184467440737.09551615")


def test_the_decoder_counts_bad_bytes_and_shows_them_as_hex() -> None:
    decoder = Decoder()
    good = decoder.decode(build("D"))
    bad = decoder.decode(b"A\x00\x01")
    empty = decoder.decode(b"")
    assert good.ok
    assert not bad.ok
    assert bad.name == "undecodable"
    assert bad.fields["hex"] == "410001"
    assert to_text(bad).startswith("A undecodable (Add Order (No MPID Attribution) ('A') is 36")
    assert to_text(bad).endswith(": 410001")
    assert json.loads(to_json(bad))["hex"] == "410001"
    assert to_text(empty).startswith("- undecodable (empty message)")
    assert decoder.warnings == 2


@given(st.binary(max_size=60))
def test_any_bytes_decode_or_give_a_warning_never_an_exception(data: bytes) -> None:
    decoder = Decoder()
    message = decoder.decode(data)
    well_formed = bool(data) and MESSAGE_SIZES.get(chr(data[0])) == len(data)
    if not well_formed:
        assert not message.ok
    assert decoder.warnings == (0 if message.ok else 1)
    json.loads(to_json(message))
    to_text(message)


@given(st.sampled_from(list(PUBLISHED)), st.data())
def test_any_bytes_of_the_right_length_decode_unless_text_is_not_ascii(
    letter: str, data: st.DataObject
) -> None:
    body = data.draw(
        st.binary(min_size=MESSAGE_SIZES[letter] - 1, max_size=MESSAGE_SIZES[letter] - 1)
    )
    message = Decoder().decode(letter.encode() + body)
    if not message.ok:
        assert "not ASCII" in message.fields["error"]
