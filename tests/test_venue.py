"""The venue end to end over loopback: real SoupBinTCP clients, OUCH in, OUCH and ITCH out.

The rules themselves are tested on the engine (test_venue_engine.py); here the wiring:
per-account streams, mirrored ports, the ITCH feed, journals and restarts, scripted faults.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from soupbintcp import AsyncClient, ConnectionLost, connect_async, ouch
from soupbintcp.venue import ItchBook, Venue

from .helpers import wait_for, within


class Account:
    """A client of one account: send OUCH, receive decoded outbound messages."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.next_ref = 1

    @classmethod
    async def login(cls, address: Any, user: str, sequence: int = 1) -> Account:
        return cls(await connect_async(address, user, "pw", sequence=sequence))

    def send(self, message: ouch.Message) -> None:
        self.client.send_unseq_data(message.encode())

    def enter(self, side: str, quantity: int, price: int, **kw: Any) -> int:
        ref = self.next_ref
        self.next_ref += 1
        symbol = kw.pop("symbol", "AAPL")
        self.send(ouch.EnterOrder(ref, ouch.Side(side), quantity, symbol, price, **kw))
        return ref

    async def receive(self) -> ouch.Message:
        message = await within(self.client.receive_msg(), 5)
        return ouch.decode_outbound(message.data)

    async def expect(self, *types: type[ouch.Message]) -> list[Any]:
        got = [await self.receive() for _ in types]
        assert [type(m) for m in got] == list(types)
        return got

    async def close(self) -> None:
        await self.client.close()


async def _drain(account: Account) -> None:
    while True:
        await account.receive()


async def _itch(venue: Venue) -> ItchBook:
    book = ItchBook()
    client = await connect_async(venue.itch_address, "md", "pw")
    try:
        while book.messages < venue.itch_store.count:
            book.apply((await within(client.receive_msg(), 5)).data)
    finally:
        await client.close()
    return book


async def test_orders_trade_and_the_itch_feed_shows_the_book() -> None:
    async with Venue(["AAPL", "MSFT"]) as venue:
        alice = await Account.login(venue.address, "alice")
        bob = await Account.login(venue.address, "bob")
        await alice.expect(ouch.SystemEvent)
        await bob.expect(ouch.SystemEvent)
        alice.enter("B", 300, 1_000_000)
        (accepted,) = await alice.expect(ouch.OrderAccepted)
        assert accepted.order_state is ouch.OrderState.LIVE
        bob.enter("S", 100, 990_000)
        bob.enter("S", 100, 1_010_000, display=ouch.Display.HIDDEN)
        _, executed, _ = await bob.expect(
            ouch.OrderAccepted, ouch.OrderExecuted, ouch.OrderAccepted
        )
        (resting,) = await alice.expect(ouch.OrderExecuted)
        assert executed.match_number == resting.match_number
        assert (executed.liquidity_flag, resting.liquidity_flag) == ("R", "A")
        assert executed.price == resting.price == 1_000_000  # the resting order's price
        book = await _itch(venue)
        assert book.depth("AAPL") == ([(1_000_000, 200)], [])  # the hidden offer is not shown
        assert venue.engine.books["AAPL"].depth() == ([(1_000_000, 200)], [(1_010_000, 100)])
        await alice.close()
        await bob.close()


async def test_mirrored_ports_serve_one_stream() -> None:
    async with Venue(["AAPL"], listen=[("127.0.0.1", 0), ("127.0.0.1", 0)]) as venue:
        first, mirror = venue.addresses
        assert first != mirror
        alice = await Account.login(first, "alice")
        alice.enter("B", 100, 1_000_000)
        await alice.expect(ouch.SystemEvent, ouch.OrderAccepted)
        await alice.close()
        again = await Account.login(mirror, "alice", sequence=3)
        again.send(ouch.EnterOrder(1, ouch.Side.BUY, 100, "AAPL", 1_000_000))  # a benign resend
        again.send(ouch.AccountQueryRequest())
        (answer,) = await again.expect(ouch.AccountQueryResponse)
        assert answer.next_user_ref_num == 2
        assert venue.engine.books["AAPL"].depth() == ([(1_000_000, 100)], [])
        await again.close()


async def test_scripted_faults() -> None:
    async with Venue(["AAPL"]) as venue:
        alice = await Account.login(venue.address, "alice")
        await alice.expect(ouch.SystemEvent)
        venue.reject_next(2, ouch.RejectReason.HALTED)
        for _ in range(3):
            alice.enter("B", 100, 1_000_000)
        first, second, _ = await alice.expect(ouch.Rejected, ouch.Rejected, ouch.OrderAccepted)
        assert first.reason is second.reason is ouch.RejectReason.HALTED
        venue.delay(150)
        loop = asyncio.get_running_loop()
        sent = loop.time()
        alice.send(ouch.AccountQueryRequest())
        await alice.expect(ouch.AccountQueryResponse)
        assert loop.time() - sent >= 0.15
        venue.delay(0)
        venue.drop_after("alice", 2)
        alice.send(ouch.AccountQueryRequest())
        alice.send(ouch.AccountQueryRequest())
        with pytest.raises(ConnectionLost):  # dropped right after the second
            await _drain(alice)
        # The answers are in the account's stream: a reconnect replays them.
        again = await Account.login(venue.address, "alice", sequence=6)
        await again.expect(ouch.AccountQueryResponse, ouch.AccountQueryResponse)
        await again.close()
        bob = await Account.login(venue.address, "bob")
        await bob.expect(ouch.SystemEvent)
        bob.enter("S", 100, 1_100_000)
        await bob.expect(ouch.OrderAccepted)
        venue.end_day()
        canceled, end = await bob.expect(ouch.OrderCanceled, ouch.SystemEvent)
        assert canceled.reason is ouch.CancelReason.TIMEOUT
        assert end.event_code is ouch.EventCode.END_OF_DAY
        bob.enter("B", 100, 1_000_000)
        (refused,) = await bob.expect(ouch.Rejected)
        assert refused.reason is ouch.RejectReason.DESTINATION_CLOSED
        await bob.close()


async def test_cancel_on_disconnect_waits_for_the_last_connection() -> None:
    listen = [("127.0.0.1", 0)] * 2
    async with Venue(["AAPL"], cancel_on_disconnect=True, listen=listen) as venue:
        one = await Account.login(venue.addresses[0], "alice")
        two = await Account.login(venue.addresses[1], "alice")
        one.enter("B", 100, 1_000_000)
        await one.expect(ouch.SystemEvent, ouch.OrderAccepted)
        await one.close()
        assert venue.server is not None
        server = venue.server
        await wait_for(lambda: len(server.connections) == 1)  # the venue saw one go
        assert venue.engine.books["AAPL"].depth() == ([(1_000_000, 100)], [])
        await two.close()
        await wait_for(lambda: venue.engine.books["AAPL"].depth() == ([], []))
        back = await Account.login(venue.address, "alice", sequence=3)
        (canceled,) = await back.expect(ouch.OrderCanceled)
        assert canceled.reason is ouch.CancelReason.SYSTEM_CANCEL
        await back.close()


async def test_a_restarted_venue_resumes_the_day(tmp_path: Path) -> None:
    async with Venue(["AAPL"], data=tmp_path) as venue:
        session = venue.session_id
        alice = await Account.login(venue.address, "alice")
        alice.enter("B", 100, 1_000_000)
        alice.enter("S", 40, 1_000_000)
        await alice.expect(ouch.SystemEvent, ouch.OrderAccepted, ouch.OrderAccepted)
        await alice.expect(ouch.OrderExecuted, ouch.OrderExecuted)
        await alice.close()
        itch_count = venue.itch_store.count
    async with Venue(["AAPL"], data=tmp_path) as venue:
        assert venue.session_id == session
        assert venue.engine.books["AAPL"].depth() == ([(1_000_000, 60)], [])
        assert venue.itch_store.count == itch_count
        alice = await Account.login(venue.address, "alice", sequence=6)
        alice.send(ouch.AccountQueryRequest())
        (answer,) = await alice.expect(ouch.AccountQueryResponse)
        assert answer.next_user_ref_num == 3
        await alice.close()
        assert (await _itch(venue)).depth("AAPL") == ([(1_000_000, 60)], [])
    async with Venue(["AAPL"], data=tmp_path, new_day=True) as venue:
        assert venue.session_id != session
        assert venue.engine.books["AAPL"].depth() == ([], [])
        assert (tmp_path / "days" / session / "itch.soup").exists()


async def test_bots_make_a_market_and_malformed_input_is_ignored() -> None:
    async with Venue(["AAPL", "MSFT"], bots=4, seed=7) as venue:
        await wait_for(lambda: venue.engine.next_match > 5, timeout=10)
        alice = await Account.login(venue.address, "alice")
        alice.client.send_unseq_data(b"O\x00")
        alice.client.send_unseq_data(b"?")
        alice.send(ouch.AccountQueryRequest())
        await alice.expect(ouch.SystemEvent, ouch.AccountQueryResponse)
        assert venue.malformed == 2
        await alice.close()


async def test_bots_are_deterministic_under_a_seed() -> None:
    from soupbintcp.venue._bots import Bots

    feeds = []
    for _ in range(2):
        clock = iter(range(1, 10**9)).__next__
        async with Venue(["AAPL", "MSFT"], clock=clock) as venue:
            bots = Bots(venue, 4, seed=11)
            for _ in range(50):
                bots.step()
            assert venue.engine.next_match > 10
            feeds.append(venue.itch_store.read(1, venue.itch_store.count))
    assert feeds[0] == feeds[1]


def test_symbols_from_a_list_or_a_file(tmp_path: Path) -> None:
    from soupbintcp.cli._venue import read_symbols

    assert read_symbols("aapl, MSFT,aapl") == ["AAPL", "MSFT"]
    listing = tmp_path / "symbols.txt"
    listing.write_text("# the day's list\nAAPL\nMSFT SPY  # and an ETF\n")
    assert read_symbols(str(listing)) == ["AAPL", "MSFT", "SPY"]


async def test_a_day_with_bots_resumes_without_them(tmp_path: Path) -> None:
    async with Venue(["AAPL"], data=tmp_path, bots=2, seed=3) as venue:
        await wait_for(lambda: venue.engine.next_match > 3, timeout=10)
        venue._bots.stop()  # the bots stop trading; what they did is in the journals
        if (task := venue._bots._task) is not None:
            await asyncio.wait([task])  # the cancellation has taken effect
        books = venue.engine.books["AAPL"].depth()
        matches = venue.engine.next_match
        itch = venue.itch_store.count
    async with Venue(["AAPL"], data=tmp_path) as venue:
        assert venue.engine.books["AAPL"].depth() == books
        assert venue.engine.next_match == matches
        assert venue.itch_store.count == itch
        assert not list((tmp_path / "accounts").glob("*bot*"))  # nobody reads a bot's answers
