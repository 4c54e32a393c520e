"""The compiled Sequenced Data encoder (`_core.encode_sequenced`, issue 25: what every journal
append and `journal import --pcap` spend their time on) against its pure twin: the same bytes
and count for any list or tuple of messages, and declined (None) for what only the pure loop
may encode or refuse, so `sequenced_frames` gives the same answers and errors either way.
Likewise the capture times of an import made an int64 array (`_core.times_array`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soupbintcp._errors import LocalProtocolError
from soupbintcp._wire._packets import pure_sequenced_frames, sequenced_frames
from soupbintcp.capture._times import pure_times_array, times_array
from soupbintcp.store import MemoryStore

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path

try:
    from soupbintcp._speedups import _core
except ImportError:  # not built: the agreement tests below say so
    _core = None  # type: ignore[assignment]

needs_compiled = pytest.mark.skipif(_core is None, reason="the compiled fast path is not built")

# Short ones mostly, with the 1,023/1,024 edge of the pure loop's header table and the top.
payloads = st.one_of(
    st.binary(max_size=60),
    st.binary(min_size=1020, max_size=1030),
    st.sampled_from([bytes(65533), bytes(65534)]),
)


def by_hand(messages: list[bytes]) -> bytes:
    """Spec 4.10 §2.2.7: Packet Length (2, big-endian, counting the type), b"S", payload."""
    out = b""
    for m in messages:
        out += bytes([(len(m) + 1) >> 8, (len(m) + 1) & 0xFF]) + b"S" + m
    return out


def test_golden_frames() -> None:
    assert sequenced_frames([b"AB", b""]) == (b"\x00\x03SAB\x00\x01S", 2)
    assert sequenced_frames(()) == (b"", 0)
    assert sequenced_frames([bytes(300)])[0][:3] == b"\x01\x2dS"


@needs_compiled
@given(st.lists(payloads, max_size=40), st.booleans())
def test_compiled_matches_the_pure_twin(messages: list[bytes], as_tuple: bool) -> None:
    given_ = tuple(messages) if as_tuple else messages
    want = pure_sequenced_frames(messages)
    assert _core.encode_sequenced(given_) == want
    assert want == (by_hand(messages), len(messages))


@needs_compiled
@given(st.lists(st.binary(max_size=20), max_size=10), st.integers(0, 10))
def test_compiled_declines_what_the_pure_loop_must_handle(messages: list[bytes], at: int) -> None:
    at = min(at, len(messages))
    odd: list[bytes] = [*messages[:at], bytearray(b"xy"), *messages[at:]]  # type: ignore[list-item]
    assert _core.encode_sequenced(odd) is None
    assert _core.encode_sequenced([*messages[:at], bytes(65535), *messages[at:]]) is None
    assert _core.encode_sequenced(iter(messages)) is None
    # ... and the public function still answers, through the pure loop.
    assert sequenced_frames(odd) == (by_hand([*messages[:at], b"xy", *messages[at:]]), len(odd))
    assert sequenced_frames(iter(messages)) == (by_hand(messages), len(messages))


def test_too_big_raises_and_appends_nothing() -> None:
    with pytest.raises(LocalProtocolError):
        sequenced_frames([b"a", bytes(65535)])
    store = MemoryStore()
    with pytest.raises(LocalProtocolError):
        store.append_many([b"a", bytes(65535)])
    assert store.count == 0
    store.append_many([b"a", bytes(65534)])
    assert store.count == 2


# The capture-time sidecar of an import: one int64 per message, a packet's messages sharing
# their time object (as the readers make them), some not.
times_lists = st.lists(
    st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(1, 5), st.booleans()), max_size=30
).map(lambda runs: [t if shared else int(str(t)) for t, n, shared in runs for _ in range(n)])


@needs_compiled
@given(times_lists)
def test_times_array_matches_the_pure_twin(times: list[int]) -> None:
    got = _core.times_array(times)
    assert got is not None
    assert got.typecode == "q"
    assert got.tolist() == times == pure_times_array(times).tolist()


@needs_compiled
@given(times_lists, st.sampled_from([2**63, -(2**63) - 1, 1.5, True, "1"]), st.integers(0, 40))
def test_times_array_declines_what_the_pure_twin_must_raise_on(
    times: list[int], odd: object, at: int
) -> None:
    bad: list[int] = [*times[:at], odd, *times[at:]]  # type: ignore[list-item]
    assert _core.times_array(bad) is None
    assert _core.times_array(tuple(times)) is None
    if odd is True:  # a bool is an int to array("q"): the pure twin takes it
        assert times_array(bad).tolist() == bad
    else:
        with pytest.raises((OverflowError, TypeError)):
            times_array(bad)
