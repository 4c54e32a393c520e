"""The writer's numbering and batching (`jetstream._batches`), without a log: every message
numbered once and in order, entries within their limits, and what the log holds forgotten."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from soupbintcp.jetstream._batches import _MAX_ENTRY, Batches

from .helpers import wire


def frame(message: bytes) -> bytes:
    return wire(b"S", message)  # a Sequenced Data packet, as the spec lays it out


@given(
    st.lists(
        st.lists(
            st.one_of(st.binary(max_size=40), st.just(b"b" * 60_000)),
            min_size=1,
            max_size=30,
        ),
        max_size=8,
    ),
    st.integers(1, 12),
    st.integers(1, 400),
    st.integers(1, 1000),
)
def test_messages_are_numbered_once_in_order_and_cut_within_the_limits(
    calls: list[list[bytes]], max_messages: int, max_bytes: int, first: int
) -> None:
    batches = Batches(max_messages, max_bytes)
    batches.next = first
    sent: list[bytes] = []
    for messages in calls:
        for start in range(0, len(messages), max_messages):  # as `publish_many` gives them
            batches.add(messages[start : start + max_messages])
        sent.extend(messages)
    batches.seal()
    assert batches.next == first + len(sent)
    expected = first
    for batch in batches.sealed:
        assert batch.first == expected  # no gap, no repeat
        # Sealed once at a limit, and `publish_many` adds at most `max_messages` at a time.
        assert 1 <= batch.count < 2 * max_messages
        assert batch.frames == b"".join(frame(m) for m in sent[expected - first :][: batch.count])
        if batch.count > 1:  # sealed at the byte limit, by pieces of at most _MAX_ENTRY
            assert len(batch.frames) < max_bytes + _MAX_ENTRY
        expected += batch.count
    assert expected == batches.next


def test_big_messages_are_halved_into_entries_under_the_payload_limit() -> None:
    batches = Batches(1000, 32 * 1024)  # the writer's defaults
    batches.next = 1
    batches.add([b"x" * 60_000] * 20)  # 1.2 MB in one call: halved twice
    batches.seal()
    assert [b.count for b in batches.sealed] == [5, 5, 5, 5]
    assert all(len(b.frames) <= _MAX_ENTRY for b in batches.sealed)


def test_what_the_log_holds_is_forgotten_whole_batches_at_a_time() -> None:
    batches = Batches(2, 1 << 20)
    batches.next = 1
    batches.add([b"a", b"b"])
    batches.add([b"c", b"d"])
    batches.add([b"e"])
    batches.seal()
    assert [(b.first, b.count) for b in batches.sealed] == [(1, 2), (3, 2), (5, 1)]
    assert batches.held(0) == 0
    assert batches.held(3) == 1  # message 4 not held yet: its batch stays
    assert [b.first for b in batches.sealed] == [3, 5]
    assert batches.held(5) == 2
    assert not batches.sealed
