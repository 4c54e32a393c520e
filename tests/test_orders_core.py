"""The order client's core, sans IO: the recovery procedure of OUCH 5.0 §5.1 (catch up
through an Account Query, settle what needs no re-send, re-send the rest unchanged and in
order, then new requests), the write-ahead journal across a restart, UserRefNums after a
restart and from the venue, the throttle on an injected clock and the kill switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from soupbintcp import ouch
from soupbintcp.orders import KillSwitchEngaged, OrderCore, Phase, StateDir, Throttle
from soupbintcp.orders._state import StateMismatch

from .test_orders_book import accepted, canceled, executed


def _ready(core: OrderCore, next_num: int = 1, session: str = "DAY1") -> None:
    """Log in and answer the barrier query."""
    query = core.logged_in(session)
    assert ouch.decode_inbound(query) == ouch.AccountQueryRequest()
    assert core.phase is Phase.RECOVERING
    answer = ouch.AccountQueryResponse(0, next_num).encode()
    core.received_run(core.received + 1, [answer])
    assert core.phase is Phase.READY


def _feed(core: OrderCore, *msgs: ouch.Message) -> list[str]:
    events = core.received_run(core.received + 1, [m.encode() for m in msgs])
    return [a.outcome for e in events for a in e.answers]


def _nums(payloads: list[bytes]) -> list[tuple[str, int]]:
    out = []
    for p in payloads:
        msg = ouch.decode_inbound(p)
        out.append((msg.TYPE, getattr(msg, "user_ref_num", 0)))
    return out


def test_numbers_start_where_the_venue_says_without_state() -> None:
    core = OrderCore(None)
    _ready(core, next_num=41)
    assert core.enter("AAPL", "B", 100, 10_000).user_ref_num == 41
    assert core.enter("AAPL", "B", 100, 10_000).user_ref_num == 42


def test_nothing_goes_before_the_stream_has_caught_up() -> None:
    core = OrderCore(None)
    core.logged_in("DAY1")
    core.enter("AAPL", "B", 1, 1)
    assert core.take(0.0) == []  # RECOVERING: nothing leaves
    core.received_run(1, [ouch.AccountQueryResponse(0, 1).encode()])
    assert _nums(core.take(0.0)) == [("O", 1)]


def test_recovery_resends_unanswered_in_order_then_new_requests() -> None:
    core = OrderCore(None)
    _ready(core)
    for _ in range(4):
        core.enter("AAPL", "B", 100, 10_000)
    assert _nums(core.take(0.0)) == [("O", 1), ("O", 2), ("O", 3), ("O", 4)]
    assert _feed(core, accepted(1), accepted(3)) == ["accepted", "accepted"]
    core.cancel(1)
    core.disconnected()  # the link drops; the cancel was never written
    core.enter("AAPL", "S", 5, 10_000)  # made while down
    assert core.take(0.0) == []
    core.logged_in("DAY1")
    # the replay brings 2's answer (it had arrived), then the barrier's answer
    outcomes = _feed(core, accepted(2), ouch.AccountQueryResponse(0, 4))
    assert outcomes == ["accepted"]
    # 4 unanswered and sent: re-sent first, unchanged; then the cancel and the new order
    assert _nums(core.take(0.0)) == [("O", 4), ("X", 1), ("O", 5)]
    assert core.resent == 1


def test_recovery_settles_requests_the_venue_ignores_silently() -> None:
    core = OrderCore(None)
    _ready(core)
    core.enter("AAPL", "B", 100, 10_000)
    core.take(0.0)
    _feed(core, accepted(1))
    core.cancel(1, 50)
    core.take(0.0)
    core.disconnected()
    core.logged_in("DAY1")
    # while away the order traded below the cancel's target: the cancel is superfluous
    outcomes = _feed(core, executed(1, 60, 1), ouch.AccountQueryResponse(0, 2))
    assert outcomes == ["already so"]
    assert core.take(0.0) == []
    assert core.idle


def test_a_restart_resends_from_the_journal_and_never_reuses_a_number(tmp_path: Path) -> None:
    core = OrderCore(StateDir(tmp_path))
    _ready(core)
    for i in range(3):
        core.enter("AAPL", "B", 100, 10_000, cl_ord_id=f"C{i + 1}")
    core.take(0.0)  # journaled (fsync'd) before this returns
    _feed(core, accepted(1))
    core.enter("AAPL", "B", 100, 10_000, cl_ord_id="NEVER")  # never left: not journaled
    core.state.close()  # type: ignore[union-attr]  # the process dies here

    again = OrderCore(StateDir(tmp_path))
    assert again.received == 2
    assert again.book.orders[1].status.value == "live"
    assert {o.cl_ord_id for o in again.book.orders.values()} == {"C1", "C2", "C3"}
    again.logged_in("DAY1")
    _feed(again, accepted(2), ouch.AccountQueryResponse(0, 4))
    assert _nums(again.take(0.0)) == [("O", 3)]  # 2 was answered in the replay
    assert again.enter("AAPL", "B", 1, 1).user_ref_num == 4
    again.state.close()  # type: ignore[union-attr]


def test_a_restart_goes_above_the_journal_even_if_the_venue_says_less(tmp_path: Path) -> None:
    core = OrderCore(StateDir(tmp_path))
    _ready(core, next_num=10)
    core.enter("AAPL", "B", 100, 10_000)
    core.take(0.0)
    core.state.close()  # type: ignore[union-attr]
    again = OrderCore(StateDir(tmp_path))
    _ready(again, next_num=3)  # a venue that forgot (or another's): the journal wins
    assert again.enter("AAPL", "B", 1, 1).user_ref_num == 11
    again.state.close()  # type: ignore[union-attr]


def test_state_of_another_session_is_refused(tmp_path: Path) -> None:
    core = OrderCore(StateDir(tmp_path))
    _ready(core, session="DAY1")
    core.state.close()  # type: ignore[union-attr]
    again = OrderCore(StateDir(tmp_path))
    with pytest.raises(StateMismatch, match="new trading day"):
        again.logged_in("DAY2")
    again.state.close()  # type: ignore[union-attr]


def test_throttle_queues_and_releases_at_the_rate() -> None:
    core = OrderCore(None, rate=100.0)  # burst 10
    _ready(core)
    for _ in range(25):
        core.enter("AAPL", "B", 1, 1)
    assert len(core.take(0.0)) == 10
    assert core.take(0.0) == []
    assert core.delay(0.0) == pytest.approx(0.01)
    assert len(core.take(0.05)) == 5
    assert len(core.take(1.0)) == 10  # capped at the burst, never more than the rate allows
    assert core.sendable == 0


def test_throttle_alone() -> None:
    t = Throttle(10.0, burst=2, now=0.0)
    assert t.take(0.0, 5) == 2
    assert t.delay(0.0) == pytest.approx(0.1)
    assert t.take(0.1, 5) == 1
    assert Throttle(None).take(0.0, 10**6) == 10**6
    with pytest.raises(ValueError, match="positive"):
        Throttle(0.0)


def test_a_login_supersedes_a_sync_query_of_the_lost_link() -> None:
    core = OrderCore(None)
    _ready(core, next_num=1)
    sync = core.query()
    assert _nums(core.take(0.0)) == [("Q", 0)]
    core.disconnected()
    core.logged_in("DAY1")  # the sync's answer may never come: told "superseded"
    assert [a.outcome for a in core.superseded] == ["superseded"]
    assert sync.answered
    # the barrier is answered by the next response, not mistaken for the sync's
    _feed(core, ouch.AccountQueryResponse(0, 1))
    assert core.phase is Phase.READY


def test_kill_switch_cancels_every_live_order_and_refuses_new_ones() -> None:
    core = OrderCore(None)
    _ready(core)
    for _ in range(3):
        core.enter("AAPL", "B", 100, 10_000)
    core.take(0.0)
    _feed(core, accepted(1), accepted(2), canceled(2, 100), accepted(3))
    cancels = core.cancel_all()
    assert [r.user_ref_num for r in cancels] == [1, 3]
    with pytest.raises(KillSwitchEngaged):
        core.enter("AAPL", "B", 1, 1)
    assert _nums(core.take(0.0)) == [("X", 1), ("X", 3)]
    core.release_kill_switch()
    core.enter("AAPL", "B", 1, 1)


def test_cancel_on_disconnect_cancels_after_the_next_login() -> None:
    core = OrderCore(None, cancel_on_disconnect=True)
    _ready(core)
    core.enter("AAPL", "B", 100, 10_000)
    core.take(0.0)
    _feed(core, accepted(1))
    core.disconnected()
    _ready(core, next_num=2)
    assert _nums(core.take(0.0)) == [("X", 1)]
    assert core.kill_switch
