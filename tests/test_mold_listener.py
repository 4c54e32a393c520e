"""The sans-IO MoldUDP64 listener: gaps, duplicates, heartbeats, End of Session, requests with
timeouts and retries, bounded memory; and Hypothesis against a model: any interleaving of
packets, losses, duplicates and answers yields the stream in order, exactly once."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soupbintcp._errors import LocalProtocolError, MoldUDP64GapTimeout
from soupbintcp._session._mold_listener import ListenerState, MoldListener
from soupbintcp._wire._moldudp64 import decode_request, encode_downstream, session_field

from .mold_support import FIELD, SESSION, Answers, end, heartbeat, itch_like, packets

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path


def _delivered(listener: MoldListener, datagrams: list[bytes], now: float = 0.0) -> list[int]:
    """Sequence numbers delivered, checking each message names its own number."""
    out: list[int] = []
    for datagram in datagrams:
        for run in listener.receive_datagram(datagram, now):
            for i, data in enumerate(run.messages):
                assert int.from_bytes(data[:8], "big") == run.first_sequence + i
                out.append(run.first_sequence + i)
    return out


def _requests(listener: MoldListener) -> list[tuple[int, int]]:
    return [decode_request(r)[1:] for r in listener.take_requests()]


def test_in_order_stream_is_delivered_as_it_comes() -> None:
    messages = itch_like(300)
    listener = MoldListener()
    assert _delivered(listener, packets(messages)) == list(range(1, 301))
    assert listener.session_id == SESSION
    assert listener.state is ListenerState.LISTENING
    assert listener.take_requests() == []
    assert listener.next_timer() is None


def test_duplicates_and_partial_duplicates_are_dropped() -> None:
    messages = itch_like(10)
    listener = MoldListener()
    assert _delivered(listener, [encode_downstream(FIELD, 1, messages[:6])]) == [1, 2, 3, 4, 5, 6]
    again = [encode_downstream(FIELD, 1, messages[:3]), encode_downstream(FIELD, 4, messages[3:])]
    assert _delivered(listener, again) == [7, 8, 9, 10]
    assert listener.duplicates == 6


def test_a_gap_is_requested_and_filled_in_order() -> None:
    messages = itch_like(30)
    listener = MoldListener()
    first, *_, last = [encode_downstream(FIELD, 1 + i, messages[i : i + 5]) for i in (0, 10, 20)]
    assert _delivered(listener, [first]) == [1, 2, 3, 4, 5]
    assert _delivered(listener, [encode_downstream(FIELD, 21, messages[20:25])]) == []
    assert _requests(listener) == [(6, 15)]
    assert listener.next_timer() == pytest.approx(listener.request_timeout)
    # The answer carries only part (what fits); the rest is asked for at once.
    assert _delivered(listener, [encode_downstream(FIELD, 6, messages[5:9])]) == [6, 7, 8, 9]
    assert _requests(listener) == [(10, 11)]
    assert _delivered(listener, [encode_downstream(FIELD, 10, messages[9:20])]) == list(
        range(10, 26)
    )
    assert listener.outstanding == 0
    assert listener.next_timer() is None
    del first, last


def test_a_lost_tail_is_found_through_a_heartbeat() -> None:
    messages = itch_like(20)
    listener = MoldListener()
    assert len(_delivered(listener, [encode_downstream(FIELD, 1, messages[:10])])) == 10
    assert _delivered(listener, [heartbeat(21)]) == []
    assert _requests(listener) == [(11, 10)]
    assert _delivered(listener, [encode_downstream(FIELD, 11, messages[10:])]) == list(
        range(11, 21)
    )


def test_end_of_session_during_a_gap_delivers_everything_then_ends() -> None:
    messages = itch_like(20)
    listener = MoldListener()
    _delivered(listener, [encode_downstream(FIELD, 1, messages[:5])])
    _delivered(listener, [end(21)])
    assert listener.state is ListenerState.LISTENING  # not over: 6..20 are missing
    assert _requests(listener) == [(6, 15)]
    assert _delivered(listener, [encode_downstream(FIELD, 6, messages[5:])]) == list(range(6, 21))
    assert listener.state is ListenerState.ENDED
    assert listener.end_sequence == 21
    assert listener.receive_datagram(heartbeat(21), 1.0) == []


def test_unanswered_requests_are_retried_then_given_up() -> None:
    listener = MoldListener(request_timeout=0.5, max_retries=2)
    _delivered(listener, [heartbeat(1), heartbeat(4)])
    assert _requests(listener) == [(1, 3)]
    listener.handle_timer(0.4)
    assert listener.take_requests() == []
    listener.handle_timer(0.5)
    assert _requests(listener) == [(1, 3)]
    assert listener.next_timer() == pytest.approx(1.0)
    listener.handle_timer(1.0)
    assert _requests(listener) == [(1, 3)]
    assert listener.request_retries == 2
    with pytest.raises(MoldUDP64GapTimeout) as info:
        listener.handle_timer(1.5)
    assert info.value.expected == 1
    assert listener.state is ListenerState.ERROR
    with pytest.raises(MoldUDP64GapTimeout):
        listener.receive_datagram(heartbeat(4), 2.0)  # the error sticks


def test_a_retry_asks_only_for_what_is_still_missing() -> None:
    messages = itch_like(10)
    listener = MoldListener(request_timeout=1.0)
    _delivered(listener, [heartbeat(1), heartbeat(11)])
    assert _requests(listener) == [(1, 10)]
    # Reordered multicast brings the tail of the hole; the head stays missing.
    _delivered(listener, [encode_downstream(FIELD, 6, messages[5:])])
    listener.handle_timer(1.0)
    assert _requests(listener) == [(1, 5)]


def test_other_sessions_and_malformed_datagrams_are_counted_not_delivered() -> None:
    messages = itch_like(3)
    listener = MoldListener(session_id=SESSION)
    other = encode_downstream(session_field("OTHER"), 1, messages)
    own = encode_downstream(FIELD, 1, messages)
    assert _delivered(listener, [other, b"short", own[:-1], own + b"x"]) == []
    assert listener.other_session == 1
    assert listener.malformed == 3
    assert listener.state is ListenerState.WAITING
    # The same session padded on the left is the same session.
    padded = encode_downstream(b"     TEST1", 1, messages)
    assert _delivered(listener, [padded]) == [1, 2, 3]


def test_start_at_the_next_packet() -> None:
    messages = itch_like(20)
    listener = MoldListener(sequence=0)
    assert listener.next_sequence == 0
    assert _delivered(listener, [encode_downstream(FIELD, 11, messages[10:15])]) == list(
        range(11, 16)
    )
    assert listener.take_requests() == []


def test_start_at_n_drops_what_comes_before_and_requests_from_n() -> None:
    messages = itch_like(20)
    listener = MoldListener(sequence=8)
    assert _delivered(listener, [encode_downstream(FIELD, 1, messages[:10])]) == [8, 9, 10]
    listener = MoldListener(sequence=8)
    assert _delivered(listener, [encode_downstream(FIELD, 15, messages[14:])]) == []
    assert _requests(listener) == [(8, 7)]


def test_requests_are_bounded_in_number_and_size() -> None:
    listener = MoldListener(max_outstanding=3, max_request_count=100)
    _delivered(listener, [heartbeat(1), heartbeat(100_001)])
    assert _requests(listener) == [(1, 100), (101, 100), (201, 100)]
    assert listener.outstanding == 3


def test_held_messages_are_bounded_and_the_rest_refetched() -> None:
    messages = itch_like(2000)
    server = Answers(messages)
    listener = MoldListener(max_held=100)
    datagrams = packets(messages)
    got = _delivered(listener, datagrams[1:])  # the first packet is lost
    assert got == []
    assert listener.held <= 100
    # Now the whole stream is recovered through requests alone.
    for _ in range(1000):
        requests = listener.take_requests()
        if not requests:
            break
        answers = [a for r in requests if (a := server.answer(r)) is not None]
        got += _delivered(listener, answers)
        assert listener.held <= 100
    assert got == list(range(1, 2001))


def test_bad_arguments_are_the_callers_error() -> None:
    with pytest.raises(LocalProtocolError):
        MoldListener(sequence=-1)
    with pytest.raises(LocalProtocolError):
        MoldListener(max_request_count=0)
    with pytest.raises(LocalProtocolError):
        MoldListener(session_id="not one")


# --- against a model ---------------------------------------------------------------------


def _run_model(
    rng: random.Random,
    n: int,
    start: int,
    loss: float,
    answer_loss: float,
    max_held: int,
    max_outstanding: int,
    finish_with_end: bool,
) -> None:
    """A stream of `n` messages through a network that loses, duplicates and reorders
    packets and answers; then a calm network until the listener has everything."""
    messages = itch_like(n, seed=rng.randrange(1000))
    max_payload = rng.choice([60, 200, 1400])
    server = Answers(messages, cap=rng.choice([1, 3, 1000]), max_payload=max_payload)
    listener = MoldListener(
        sequence=start,
        request_timeout=1.0,
        max_retries=1000,
        max_held=max_held,
        max_outstanding=max_outstanding,
        max_request_count=rng.choice([1, 5, 256]),
    )
    expected_first = start
    got: list[int] = []
    now = 0.0
    in_flight: list[bytes] = []

    def feed(datagram: bytes) -> None:
        for run in listener.receive_datagram(datagram, now):
            for i, data in enumerate(run.messages):
                got.append(int.from_bytes(data[:8], "big"))
                assert got[-1] == run.first_sequence + i

    def serve_requests(loss_rate: float) -> None:
        for request in listener.take_requests():
            answer = server.answer(request)
            if answer is not None and rng.random() >= loss_rate:
                in_flight.append(answer)

    stream = packets(messages, max_payload=max_payload)
    # Bounded reordering: swap neighbours within a small window.
    for i in range(len(stream) - 1):
        if rng.random() < 0.2:
            j = min(len(stream) - 1, i + rng.randrange(1, 4))
            stream[i], stream[j] = stream[j], stream[i]
    for datagram in stream:
        if rng.random() < 0.1:
            feed(heartbeat(int.from_bytes(datagram[10:18], "big")))
        if rng.random() >= loss:
            feed(datagram)
            if rng.random() < 0.1:
                feed(datagram)
        if expected_first == 0 and got:
            expected_first = got[0]
        serve_requests(answer_loss)
        if in_flight and rng.random() < 0.5:
            rng.shuffle(in_flight)
            for answer in in_flight[: rng.randrange(len(in_flight) + 1)]:
                feed(answer)
                serve_requests(answer_loss)
            del in_flight[:]
        now += 0.01
    marker = end(n + 1) if finish_with_end else heartbeat(n + 1)
    for _ in range(100_000):
        if rng.random() < 0.5 or not in_flight:
            feed(marker)
        for answer in in_flight:
            feed(answer)
        in_flight.clear()
        serve_requests(0.0)
        if listener.next_sequence == n + 1 and not in_flight:
            break
        deadline = listener.next_timer()
        if deadline is not None and not in_flight:
            now = max(now, deadline)
            listener.handle_timer(now)
            serve_requests(0.0)
    feed(marker)  # a transmitter repeats End of Session for a while
    if expected_first == 0:
        expected_first = got[0] if got else n + 1
    assert got == list(range(expected_first, n + 1))
    assert listener.next_sequence == n + 1
    assert listener.held == 0
    if finish_with_end:
        assert listener.state is ListenerState.ENDED


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.randoms(use_true_random=False),
    st.integers(0, 300),
    st.sampled_from([1, 0, 7]),
    st.sampled_from([0.0, 0.05, 0.3, 0.9]),
    st.sampled_from([0.0, 0.2, 0.6]),
    st.sampled_from([0, 10, 100_000]),
    st.sampled_from([1, 4, 16]),
    st.booleans(),
)
def test_any_interleaving_yields_the_stream_in_order_exactly_once(
    rng: random.Random,
    n: int,
    start: int,
    loss: float,
    answer_loss: float,
    max_held: int,
    max_outstanding: int,
    finish_with_end: bool,
) -> None:
    _run_model(rng, n, min(start, n + 1), loss, answer_loss, max_held, max_outstanding,
               finish_with_end)  # fmt: skip
