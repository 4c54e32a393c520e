"""The synthetic feed (`serve --generate`, `make demo`) is valid ITCH 5.0 and a pure function
of the sequence number."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from soupbintcp.cli import _synthetic
from soupbintcp.cli._synthetic import CYCLE, PREAMBLE, STOCKS, synthetic_message, synthetic_messages
from soupbintcp.itch import Decoder, decode

CYCLES = 50
FEED = synthetic_messages(1, PREAMBLE + CYCLES * CYCLE)


def test_every_message_decodes_as_itch_50() -> None:
    decoder = Decoder()
    decoded = [decoder.decode(m) for m in FEED]
    assert decoder.warnings == 0
    assert all(m.ok for m in decoded)


@given(st.integers(min_value=1, max_value=2**40))
def test_any_sequence_number_gives_a_valid_message(sequence: int) -> None:
    assert Decoder().decode(synthetic_message(sequence)).ok


def test_the_day_opens_like_nasdaq_s_with_a_directory_of_each_stock() -> None:
    opening = [decode(m) for m in FEED[:PREAMBLE]]
    events = [m.fields["event_code"] for m in opening if m.type == "S"]
    assert events == ["O", "S", "Q"]  # start of messages, of system hours, of market hours
    directory = [m.fields["stock"] for m in opening if m.type == "R"]
    assert directory == [symbol for symbol, _ in STOCKS]
    assert [m.fields["trading_state"] for m in opening if m.type == "H"] == ["T"] * len(STOCKS)
    times = [m.fields["timestamp"] for m in (decode(x) for x in FEED)]
    assert times == sorted(times)  # within a trading day the clock only moves forward


def test_proportions_and_sizes_are_those_of_a_real_itch_day() -> None:
    orders = FEED[PREAMBLE:]
    share = {k: v / len(orders) for k, v in Counter(chr(m[0]) for m in orders).items()}
    assert share["A"] + share["F"] == 0.5  # adds are half the feed
    assert 0.3 <= share["D"] <= 0.45  # most orders are deleted again
    assert 0.02 <= share["E"] + share["C"] <= 0.1  # a few executions
    assert 0 < share["X"] <= 0.05
    assert 0 < share["P"] <= 0.05
    assert set(share) == set("AFDECXP")
    sizes = [len(m) for m in orders]
    assert min(sizes) == 19  # Order Delete
    assert max(sizes) == 44  # Trade
    assert 25 <= sum(sizes) / len(sizes) <= 35  # ITCH averages about 30 bytes


def test_orders_are_referred_to_only_after_they_were_added_and_as_added() -> None:
    book: dict[int, dict[str, object]] = {}
    matches: set[int] = set()
    for message in (decode(m) for m in FEED[PREAMBLE:]):
        f = message.fields
        if message.type in "AF":
            assert f["order_reference_number"] not in book
            book[f["order_reference_number"]] = dict(f)
        elif message.type == "P":
            assert f["order_reference_number"] == 0  # a non-displayed order
        else:
            added = book[f["order_reference_number"]]
            assert f["stock_locate"] == added["stock_locate"]
            if message.type in "EC":
                assert f["executed_shares"] <= added["shares"]
            if message.type == "X":
                assert f["cancelled_shares"] < added["shares"]
            if message.type == "D":
                del book[f["order_reference_number"]]
        if message.type in "ECP":
            assert f["match_number"] not in matches
            matches.add(f["match_number"])
        symbol, _ = STOCKS[f["stock_locate"] - 1]
        assert f.get("stock", symbol) == symbol


def test_consecutive_messages_all_differ() -> None:
    assert len(set(FEED)) == len(FEED)


@settings(max_examples=30)
@given(st.lists(st.integers(min_value=1, max_value=10**7), min_size=1, max_size=50))
def test_a_pure_function_of_the_sequence_number(sequences: list[int]) -> None:
    first = [synthetic_message(s) for s in sequences]
    _synthetic._cycle.cache_clear()  # whatever was computed before, in whatever order
    again = [synthetic_message(s) for s in reversed(sequences)][::-1]
    assert first == again
    assert synthetic_messages(sequences[0], 3) == [
        synthetic_message(sequences[0] + i) for i in range(3)
    ]
