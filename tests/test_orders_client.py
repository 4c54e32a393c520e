"""The order clients end to end against the project's venue (in this process): the asyncio
`OrderClient` and its blocking twin have the same shape and the same answers; fills and
positions; replace, cancel and modify; a lost connection and a failover to a mirror with
requests in flight; the throttle queues; the kill switch; cancel-on-disconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from soupbintcp import ouch
from soupbintcp.orders import (
    BlockingOrderClient,
    KillSwitchEngaged,
    OrderClient,
    OrderEvent,
    OrderStatus,
)
from soupbintcp.venue import Venue

from .fault_proxy import FaultProxy
from .helpers import wait_for


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    async with Venue(["AAPL", "MSFT"], listen=[("127.0.0.1", 0)] * 2) as v:
        yield v


async def test_enter_fill_replace_modify_cancel_and_positions(venue: Venue) -> None:
    events: list[OrderEvent] = []
    buyer = await OrderClient.connect(venue.address, "alice", "x", on_event=events.append)
    seller = await OrderClient.connect(venue.address, "bob", "x")
    try:
        bid = buyer.enter("AAPL", "B", 300, 1_000_000, cl_ord_id="BID1")
        answer = await bid
        assert answer.outcome == "accepted"
        assert answer.order is not None
        assert answer.order.status is OrderStatus.LIVE
        assert (await seller.enter("AAPL", "S", 100, 1_000_000)).outcome == "accepted"
        await buyer.sync()  # the fill the seller's order caused is in the buyer's book now
        assert buyer.orders[bid.user_ref_num].executed == 100
        assert buyer.orders[bid.user_ref_num].status is OrderStatus.PARTLY_FILLED
        assert buyer.positions == {"AAPL": 100}
        assert seller.positions == {"AAPL": -100}
        # replace: the chain's whole liability (300 = 100 executed + 200 to show)
        new = buyer.replace(bid, 300, 990_000, cl_ord_id="BID2")
        assert (await new).outcome == "replaced"
        assert buyer.orders[bid.user_ref_num].status is OrderStatus.REPLACED
        assert buyer.orders[new.user_ref_num].open == 200
        # cancel down to 50 keeps priority; then everything
        assert (await buyer.cancel(bid, 50)).outcome == "canceled"  # follows the chain
        assert buyer.orders[new.user_ref_num].open == 50
        assert (await buyer.cancel(new)).outcome == "canceled"
        assert buyer.orders[new.user_ref_num].status is OrderStatus.CANCELED
        # modify a sell between the sell sides
        ask = seller.enter("MSFT", "S", 100, 2_000_000)
        await ask
        assert (await seller.modify(ask, "T", 40)).outcome == "modified"
        order = seller.orders[ask.user_ref_num]
        assert (order.side, order.open, order.canceled) == ("T", 40, 60)
        assert [e.type for e in events][:4] == ["S", "Q", "A", "E"]  # every message, once
        assert all(isinstance(e.message, ouch.Message) for e in events)
    finally:
        await buyer.close()
        await seller.close()


async def test_rejected_orders_use_their_number_up(venue: Venue) -> None:
    client = await OrderClient.connect(venue.address, "alice", "x")
    try:
        venue.reject_next(1)
        first = client.enter("AAPL", "B", 100, 1_000_000)
        second = client.enter("AAPL", "B", 100, 1_000_000)
        assert (await first).outcome == "rejected"
        assert (await second).outcome == "accepted"
        assert second.user_ref_num > first.user_ref_num
    finally:
        await client.close()


async def test_lost_connection_and_failover_with_requests_in_flight(venue: Venue) -> None:
    """The venue drops the account after its 3rd message: the rest of the burst was sent
    into a dying connection or not at all; the client fails over to the mirror, catches up
    and re-sends, and every order is entered exactly once."""
    client = await OrderClient.connect(venue.addresses, "alice", "x")
    try:
        venue.drop_after("alice", 3)
        handles = [client.enter("AAPL", "B", 100, 900_000 + i) for i in range(20)]
        answers = [await asyncio.wait_for(h, 10) for h in handles]
        assert {a.outcome for a in answers} == {"accepted"}
        assert client.session.failovers >= 1
        stream = venue.server.stream("alice").store  # type: ignore[union-attr]
        accepted = [
            m.user_ref_num
            for m in map(ouch.decode_outbound, stream.read(1, stream.count))
            if isinstance(m, ouch.OrderAccepted)
        ]
        assert accepted == [h.user_ref_num for h in handles]
    finally:
        await client.close()


async def test_one_turn_one_journal_write_and_answers_settled_as_they_arrive(
    venue: Venue, tmp_path: Path
) -> None:
    client = await OrderClient.connect(venue.address, "alice", "x", state=tmp_path, fsync=False)
    try:
        assert client.core.state is not None
        writes: list[int] = []
        write_ahead = client.core.state.write_ahead

        def counted(payloads: list[bytes]) -> None:
            writes.append(len(payloads))
            write_ahead(payloads)

        client.core.state.write_ahead = counted  # type: ignore[method-assign]
        handles = [client.enter("AAPL", "B", 100, 900_000) for _ in range(5)]
        assert [h.request.sent for h in handles] == [True, False, False, False, False]
        await asyncio.sleep(0)  # the turn's end: before any answer can be back
        assert all(h.request.sent for h in handles)
        await asyncio.wait_for(client.drain(), 10)
        assert writes == [1, 4]  # the first at once, the turn's others at its end together
        assert all(h.done() for h in handles)
        # a closed loop: an answer opens a new turn, so each next order goes at once
        for _ in range(3):
            handle = client.enter("AAPL", "B", 100, 900_000)
            assert handle.request.sent
            assert (await handle).outcome == "accepted"
        assert writes[2:] == [1, 1, 1]
    finally:
        await client.close()


async def test_throttle_queues_rather_than_fails(venue: Venue) -> None:
    client = await OrderClient.connect(venue.address, "alice", "x", rate=200.0)
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        handles = [client.enter("AAPL", "B", 100, 900_000) for _ in range(60)]
        await asyncio.wait_for(client.drain(), 10)
        took = loop.time() - start
        assert all(h.done() for h in handles)
        # 60 at 200/s with a burst of 20: at least 0.2 s
        assert took >= 0.19
    finally:
        await client.close()


async def test_kill_switch_and_cancel_on_disconnect(venue: Venue) -> None:
    client = await OrderClient.connect(venue.addresses, "alice", "x", cancel_on_disconnect=True)
    try:
        for i in range(3):
            await client.enter("AAPL", "B", 100, 900_000 + i)
        venue.drop_after("alice", 1)
        await client.enter("AAPL", "B", 100, 800_000)  # the message after which it drops
        await wait_for(lambda: not venue.engine.accounts["alice"].orders, timeout=10)
        assert client.core.kill_switch
        with pytest.raises(KillSwitchEngaged):
            client.enter("AAPL", "B", 1, 1)
        client.release_kill_switch()
        assert (await client.enter("AAPL", "B", 100, 900_000)).outcome == "accepted"
        handles = client.cancel_all()
        assert len(handles) == 1
        assert (await handles[0]).outcome == "canceled"
    finally:
        await client.close()


async def test_the_blocking_twin_has_the_same_shape(venue: Venue, tmp_path: Path) -> None:
    def work() -> tuple[list[str], dict[str, int]]:
        with BlockingOrderClient.connect(
            venue.addresses, "carol", "x", state=tmp_path / "s"
        ) as client:
            with client.batch():  # one journal write and one fdatasync for the three
                handles = [client.enter("AAPL", "S", 100, 1_000_000) for _ in range(3)]
            outcomes = [h.wait(5).outcome for h in handles]
            hit = client.enter("AAPL", "B", 100, 1_000_000, time_in_force="3")
            outcomes.append(hit.wait(5).outcome)
            client.drain(5)
            client.sync(5)
            outcomes.append(client.cancel(handles[2]).wait(5).outcome)
            return outcomes, dict(client.positions)

    outcomes, positions = await asyncio.to_thread(work)
    assert outcomes == ["accepted"] * 4 + ["canceled"]
    # carol bought 100 from herself: net zero
    assert positions == {"AAPL": 0}

    # restarted on the same state: nothing is re-sent, the numbers go on
    def again() -> int:
        with BlockingOrderClient.connect(venue.address, "carol", "x", state=tmp_path / "s") as c:
            assert c.core.resent == 0
            return c.enter("AAPL", "B", 1, 1_000).user_ref_num

    assert await asyncio.to_thread(again) == 5  # 1-4 entered; a cancel takes no number


async def test_the_example_of_the_docs_holds() -> None:
    """docs/order-recovery.md's example of testing a program against the venue's faults."""
    async with Venue(["AAPL"], listen=[("127.0.0.1", 0)] * 2) as venue:  # two mirrors
        client = await OrderClient.connect(venue.addresses, "me", "x")
        venue.drop_after("me", 3)  # the venue closes the link after 3 messages
        venue.reject_next(1)  # and rejects the next order
        venue.delay(5)  # and answers 5 ms late
        handles = [client.enter("AAPL", "B", 100, 1_000_000 + i) for i in range(10)]
        outcomes = [(await h).outcome for h in handles]
        assert outcomes.count("rejected") == 1
        assert client.session.failovers == 1
        await client.close()


async def test_a_link_cut_during_the_first_login_is_retried(venue: Venue) -> None:
    """A restarted program must not die of a cut during its login (found by the long chaos
    trials, seed 377); a refused connection still fails at once."""
    proxy = FaultProxy(venue.address, cut_at=lambda n: 20 if n == 0 else None)
    address = await proxy.start()
    try:
        client = await OrderClient.connect(address, "alice", "x")
        assert proxy.cuts == 1
        assert (await client.enter("AAPL", "B", 100, 900_000)).outcome == "accepted"
        await client.close()
    finally:
        await proxy.close()
    with pytest.raises(ConnectionRefusedError):
        await OrderClient.connect(("127.0.0.1", 9), "alice", "x")


async def test_drain_is_woken_by_answers_alone(venue: Venue) -> None:
    # `_on_ready` sets the change event only while someone waits (`_wait_change`): a drain
    # started with requests in flight must still be woken by their answers.
    client = await OrderClient.connect(venue.address, "alice", "x")
    try:
        handles = [client.enter("AAPL", "B", 100, 900_000) for _ in range(3)]
        await asyncio.wait_for(client.drain(), 10)
        assert all(h.done() for h in handles)
        assert client._waiting == 0
        await asyncio.wait_for(client.sync(), 10)  # waits for READY through the same event
    finally:
        await client.close()
