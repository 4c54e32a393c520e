"""The market data tells the truth: a book rebuilt from the ITCH feed alone, over SoupBinTCP
and over MoldUDP64, ends with exactly the venue's own book (every displayed order, its
reference number, side, size and price) after many random orders, replaces, cancels and
modifies from several accounts, hidden and IOC orders among them.

The default run sends 10,000 orders; the long one (``-m long``) 100,000.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from soupbintcp import connect_async, ouch
from soupbintcp.moldudp64 import listen_async
from soupbintcp.venue import ItchBook, Venue

from .helpers import within
from .mold_support import random_group

SYMBOLS = ["AAPL", "MSFT", "SPY"]
ACCOUNTS = [f"acct{i}" for i in range(5)]


def random_flow(venue: Venue, orders: int, seed: int) -> None:
    """``orders`` Enter Orders, with cancels, replaces and modifies among them."""
    rng = random.Random(seed)
    next_urn = {a: venue.engine.account(a).last_user_ref_num + 1 for a in ACCOUNTS}
    mids = dict.fromkeys(SYMBOLS, 1_000_000)
    entered = 0
    while entered < orders:
        account = rng.choice(ACCOUNTS)
        live = venue.engine.account(account).orders
        action = rng.random()
        if action < 0.15 and live:
            urn = rng.choice(list(live))
            message: ouch.Message = ouch.CancelOrderRequest(urn, rng.choice((0, 0, 50)))
        elif action < 0.25 and live:
            urn = rng.choice(list(live))
            message = ouch.ReplaceOrderRequest(
                urn, next_urn[account], rng.randint(1, 6) * 100,
                mids[live[urn].symbol] + rng.randint(-8, 8) * 100,
                display=rng.choice((ouch.Display.VISIBLE, ouch.Display.HIDDEN)),
            )  # fmt: skip
            next_urn[account] += 1
        elif action < 0.3 and live:
            urn = rng.choice(list(live))
            message = ouch.ModifyOrderRequest(urn, live[urn].side, rng.randint(0, 300))
        else:
            symbol = rng.choice(SYMBOLS)
            mids[symbol] += rng.randint(-1, 1) * 100
            buy = rng.random() < 0.5
            message = ouch.EnterOrder(
                next_urn[account], ouch.Side.BUY if buy else ouch.Side.SELL,
                rng.randint(1, 5) * 100, symbol,
                mids[symbol] + (rng.randint(-10, 3) if buy else rng.randint(-3, 10)) * 100,
                rng.choice((ouch.TimeInForce.DAY,) * 9 + (ouch.TimeInForce.IOC,)),
                rng.choice((ouch.Display.VISIBLE,) * 9 + (ouch.Display.HIDDEN,)),
            )  # fmt: skip
            next_urn[account] += 1
            entered += 1
        venue.submit(account, message.encode())


def venue_orders(venue: Venue) -> dict[int, list[object]]:
    """Every displayed resting order as ItchBook keeps it: ref -> [locate, side, shares, price]."""
    locates = venue.market_data.locates
    return {
        o.ref: [locates[o.symbol], "B" if o.buy else "S", o.open, o.price]
        for book in venue.engine.books.values()
        for side in (book.bids, book.asks)
        for o in side.orders()
        if o.visible
    }


async def check(orders: int) -> None:
    group = random_group()
    async with Venue(SYMBOLS, mold_group=group, mold_request_listen=("127.0.0.1", 0)) as venue:
        mold = await listen_async(group, venue.mold_request_address, interface="127.0.0.1")
        chunk = 2_000
        for start in range(0, orders, chunk):
            random_flow(venue, min(chunk, orders - start), seed=start)
            await asyncio.sleep(0)  # let the feed go out while orders come in
        total = venue.itch_store.count
        assert venue.engine.next_match > orders // 20  # it traded, a lot
        soup = ItchBook()
        client = await connect_async(venue.itch_address, "md", "pw")
        while soup.messages < total:
            for item in await within(client.receive_batch(), 30):
                for payload in item.messages:  # type: ignore[union-attr]
                    soup.apply(payload)
        await client.close()
        multicast = ItchBook()
        while multicast.messages < total:
            for run in await within(mold.receive_batch(), 30):
                for payload in run.messages:
                    multicast.apply(payload)
        await mold.close()
        expected = venue_orders(venue)
        assert soup.orders == expected
        assert multicast.orders == expected
        for symbol in SYMBOLS:
            book = venue.engine.books[symbol].depth(visible=True)
            assert soup.depth(symbol) == book
            assert multicast.depth(symbol) == book
        hidden = sum(
            1 for b in venue.engine.books.values() for s in (b.bids, b.asks) for o in s.orders()
            if not o.visible
        )  # fmt: skip
        assert hidden  # hidden orders rest, and the feed does not show them
        assert soup.trades == venue.engine.next_match - 1  # every execution is published


async def test_a_book_rebuilt_from_itch_is_the_venues_book() -> None:
    await check(10_000)


@pytest.mark.long
async def test_a_book_rebuilt_from_itch_is_the_venues_book_after_100k_orders() -> None:
    await check(100_000)
