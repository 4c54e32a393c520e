"""The compiled fast path against the pure-Python reference: same input, same output, same errors.

These tests import the compiled module directly, so they run (and compare both paths) whether
or not ``SOUPBINTCP_PURE_PYTHON`` is set. Where the extension was not built (no C compiler at
install) the module is skipped, with the reason; `make package-check` shows which path each
kind of install gets.
"""

from __future__ import annotations

import itertools
import operator
import os
import subprocess
import sys
import threading
from array import array
from collections.abc import Callable
from itertools import count
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import soupbintcp
from soupbintcp import Dialect, Message, RemoteProtocolError
from soupbintcp._errors import MoldUDP64Error, MoldUDP64Fault
from soupbintcp._speedups import PURE_PYTHON_VARIABLE
from soupbintcp._wire._frames import (
    SEQUENCED,
    Walk,
    frame_payloads,
    pure_frame_payloads,
    pure_walk,
    walk,
)
from soupbintcp._wire._moldudp64 import HEADER_LENGTH, decode_blocks, pure_decode_blocks
from soupbintcp.lowlevel import PacketDecoder, Role

from .helpers import wire

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path

try:
    from soupbintcp._speedups import _core
except ImportError:  # not built: no C compiler at install, or another interpreter
    pytest.skip("the compiled fast path is not built (no C compiler)", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
Split = Callable[[PacketDecoder], list[bytes]]


def pure_split(decoder: PacketDecoder) -> list[bytes]:
    return PacketDecoder.pure_next_sequenced_payloads(decoder)


def decoder_split(decoder: PacketDecoder) -> list[bytes]:
    """Whichever path the decoder uses (compiled unless SOUPBINTCP_PURE_PYTHON is set)."""
    return decoder.next_sequenced_payloads()


def compiled_split(decoder: PacketDecoder) -> list[bytes]:
    # The decoder's own state through the compiled loop: what the accelerated decoder runs.
    out, decoder._pos = _core.split_sequenced(
        decoder._buf, decoder._pos, decoder._max, decoder._omega
    )
    return out


def frames_split(decoder: PacketDecoder) -> list[bytes]:
    """The zero-copy view by the compiled loop, turned back into payloads to compare."""
    buf = decoder._buf
    offsets, lengths, decoder._pos = _core.sequenced_frames(
        buf, decoder._pos, decoder._max, decoder._omega
    )
    return as_payloads(buf, offsets, lengths)


def pure_frames_split(decoder: PacketDecoder) -> list[bytes]:
    return as_payloads(*PacketDecoder.pure_next_sequenced_frames(decoder))


def decoder_frames_split(decoder: PacketDecoder) -> list[bytes]:
    return as_payloads(*decoder.next_sequenced_frames())


def as_payloads(buf: bytes, offsets: array[int], lengths: array[int]) -> list[bytes]:
    assert (offsets.typecode, lengths.typecode) == ("I", "H")
    return [buf[o : o + n] for o, n in zip(offsets, lengths, strict=True)]


# --- the Sequenced Data batch split ---------------------------------------------------------

#: Streams a server may send, with faults: every packet type (legal or not for the dialect),
#: empty Sequenced Data (Omega's "no more messages"), lengths over small limits, zero lengths
#: and bytes that are no packet at all.
packet = st.one_of(
    st.binary(max_size=60).map(lambda p: wire(b"S", p)),
    st.binary(max_size=60).map(lambda p: wire(b"S", p)),
    st.just(wire(b"S")),
    st.sampled_from([b"+", b"H", b"Z", b"U", b"A", b"J", b"L", b"R", b"O", b"\x00"]).flatmap(
        lambda t: st.binary(max_size=30).map(lambda p: wire(t, p))
    ),
    st.binary(max_size=4),  # garbage, or a zero length field
)
stream = st.lists(packet, max_size=40).map(b"".join)
cuts = st.lists(st.integers(0, 5_000), max_size=12)
kinds = st.sampled_from([bytes, bytearray, memoryview])
limits = st.sampled_from([0xFFFF, 1, 2, 10, 40])


def chunked(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({c % (len(data) + 1) for c in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(marks)]


def decode(
    data: bytes,
    points: list[int],
    kind: type,
    dialect: Dialect,
    limit: int,
    split: Split,
) -> list[object]:
    """What a session sees: runs of payloads and packets in order, then the error if any."""
    decoder = PacketDecoder(Role.SERVER, dialect=dialect, max_packet_length=limit)
    seen: list[object] = []
    for chunk in chunked(data, points):
        decoder.feed(kind(chunk))
        while True:
            payloads = split(decoder)
            if payloads:
                seen.append(("run", payloads))
            try:
                packet = decoder.next_packet()
            except RemoteProtocolError as exc:
                seen.append(("error", str(exc), decoder.offset))
                return seen
            if packet is None:
                break
            seen.append(packet)
    seen.append(("left", decoder.buffered, decoder.offset))
    return seen


@given(stream, cuts, kinds, st.sampled_from(Dialect), limits)
@settings(max_examples=400)
def test_batch_split_matches_the_pure_path(
    data: bytes, points: list[int], kind: type, dialect: Dialect, limit: int
) -> None:
    expected = decode(data, points, kind, dialect, limit, pure_split)
    for split in (compiled_split, decoder_split):
        assert decode(data, points, kind, dialect, limit, split) == expected
    for split in (frames_split, pure_frames_split, decoder_frames_split):
        assert decode(data, points, kind, dialect, limit, split) == expected


@given(stream, st.sampled_from(Dialect))
def test_batch_split_one_byte_at_a_time(data: bytes, dialect: Dialect) -> None:
    every = list(range(len(data) + 1))
    expected = decode(data, every, bytes, dialect, 0xFFFF, pure_split)
    assert decode(data, every, bytes, dialect, 0xFFFF, compiled_split) == expected


def test_errors_name_the_same_byte_and_offset() -> None:
    data = wire(b"S", b"ok") + wire(b"S", b"") + wire(b"Q", b"x")
    for split in (pure_split, compiled_split, decoder_split):
        seen = decode(data, [], bytes, Dialect.SOUPBINTCP, 0xFFFF, split)
        assert seen[0] == ("run", [b"ok", b""])
        error = seen[-1]
        assert isinstance(error, tuple)
        assert error[0] == "error"
        assert "b'Q' at offset 10" in error[1]


def test_omega_empty_message_is_left_for_the_packet_path() -> None:
    data = wire(b"S", b"a") + wire(b"S") + wire(b"S", b"b")
    out, pos = _core.split_sequenced(data, 0, 0xFFFF, True)
    assert (out, pos) == ([b"a"], 4)
    out, pos = _core.split_sequenced(data, 0, 0xFFFF, False)
    assert (out, pos) == ([b"a", b"", b"b"], len(data))


def test_length_over_the_limit_stops_the_split() -> None:
    data = wire(b"S", b"abc") + wire(b"S", b"abcdefgh")
    assert _core.split_sequenced(data, 0, 4, False) == ([b"abc"], 6)
    offsets, lengths, pos = _core.sequenced_frames(data, 0, 4, False)
    assert (list(offsets), list(lengths), pos) == ([3], [3], 6)


def test_a_position_outside_the_buffer_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        _core.split_sequenced(b"abc", 4, 0xFFFF, False)
    with pytest.raises(ValueError, match="outside"):
        _core.sequenced_frames(b"abc", -1, 0xFFFF, False)


# --- MoldUDP64 message blocks ---------------------------------------------------------------

block = st.binary(max_size=40).map(lambda p: len(p).to_bytes(2, "big") + p)
datagram = st.tuples(st.lists(block, max_size=12).map(b"".join), st.binary(max_size=3)).map(
    lambda t: bytes(HEADER_LENGTH) + t[0] + t[1]
)


def blocks_outcome(
    fn: Callable[[bytes, int], list[bytes]], data: bytes, n: int
) -> tuple[object, ...]:
    try:
        return ("ok", fn(data, n))
    except MoldUDP64Error as exc:
        return ("error", exc.fault, str(exc))


@given(datagram, st.one_of(st.integers(0, 15), st.just(0xFFFF)))
@settings(max_examples=400)
def test_mold_blocks_match_the_pure_path(data: bytes, declared: int) -> None:
    n = 0 if declared == 0xFFFF else declared
    out, pos = _core.mold_blocks(data, n, HEADER_LENGTH)
    expected = blocks_outcome(pure_decode_blocks, data, declared)
    assert blocks_outcome(decode_blocks, data, declared) == expected  # the path in use
    fault = expected[1] if expected[0] == "error" else None
    if pos == len(data):
        assert expected == ("ok", out)
    else:  # the pure path's two faults: too few bytes for the blocks, or bytes after them
        overrun = pos > len(data)
        assert fault is (MoldUDP64Fault.BLOCK_OVERRUN if overrun else MoldUDP64Fault.TRAILING_BYTES)


# --- the frame walk (journals, BinaryFILE) ----------------------------------------------------

record = st.binary(max_size=30).map(lambda p: len(p).to_bytes(2, "big") + p)
frame_stream = st.lists(
    st.one_of(packet, st.binary(max_size=30).map(lambda p: wire(b"S", p))), max_size=30
).map(b"".join)


@given(
    st.one_of(frame_stream, st.lists(record, max_size=30).map(b"".join)),
    st.integers(0, 40),
    st.integers(-1, 40),
    st.sampled_from([SEQUENCED, None, ord("U")]),
    st.booleans(),
    st.integers(0, 5),
    st.integers(1, 4),
)
@settings(max_examples=400)
def test_frame_walk_matches_the_pure_path(
    data: bytes,
    pos: int,
    limit: int,
    kind: int | None,
    indexed: bool,
    mark: int,
    every: int,
) -> None:
    pos = min(pos, len(data))
    results = []
    for fn in (pure_walk, walk):
        starts: array[int] | None = array("q") if indexed else None
        got = fn(data, pos, limit, kind=kind, starts=starts, number=1, mark=mark, every=every)
        results.append((got, starts))
        assert type(got) is Walk
    assert results[0] == results[1]
    raw = _core.walk(data, pos, limit, -1 if kind is None else kind, None, 1, 1, 1, 0)
    assert raw[:2] == tuple(results[0][0][:2])
    walked = results[0][0]
    for fn_payloads in (pure_frame_payloads, frame_payloads):
        got_payloads = fn_payloads(data, walked.frames, pos, typed=kind is not None)
        assert got_payloads == pure_frame_payloads(data, walked.frames, pos, typed=kind is not None)
    raw_payloads = _core.frame_payloads(data, walked.frames, pos, kind is not None)
    assert raw_payloads == pure_frame_payloads(data, walked.frames, pos, typed=kind is not None)


# --- the Message cursor ---------------------------------------------------------------------

payload_lists = st.lists(st.binary(max_size=8), max_size=20)
firsts = st.one_of(st.integers(0, 1000), st.integers(2**64 - 25, 2**64 + 5))


@given(firsts, payload_lists, st.integers(0, 25))
def test_cursor_hands_out_what_map_and_zip_do(first: int, payloads: list[bytes], take: int) -> None:
    cursor = _core.MessageCursor(Message, first, payloads)
    reference = map(Message, zip(count(first), payloads))
    taken = list(itertools.islice(cursor, take))
    assert taken == list(itertools.islice(reference, take))
    assert all(type(m) is Message for m in taken)
    assert cursor.__length_hint__() == len(payloads) - len(taken)
    assert cursor.next_sequence == first + len(taken)
    assert cursor.rest() == payloads[len(taken) :]
    assert cursor.__length_hint__() == 0
    assert next(cursor, None) is None
    assert cursor.rest() == []


@given(firsts, payload_lists, st.integers(0, 25))
def test_cursor_and_its_payloads_share_one_place(
    first: int, payloads: list[bytes], take: int
) -> None:
    # As the inbox uses `left = iter(payloads)` under `map(Message, zip(count(first), left))`:
    # messages from the run, then the rest of the payloads (a batch), then nothing.
    cursor = _core.MessageCursor(Message, first, payloads)
    left = cursor.payloads_left()
    left_ref = iter(payloads)
    reference = map(Message, zip(count(first), left_ref))
    assert list(itertools.islice(cursor, take)) == list(itertools.islice(reference, take))
    assert left.__length_hint__() == operator.length_hint(left_ref)
    assert list(left) == list(left_ref)
    assert left.__length_hint__() == 0
    assert list(cursor) == list(reference) == []


def test_cursor_messages_are_messages() -> None:
    msg = next(_core.MessageCursor(Message, 7, [b"x"]))
    assert (msg.sequence, msg.data) == (7, b"x")
    assert repr(msg) == "Message(sequence=7, data=b'x')"
    assert msg == Message((7, b"x"))
    assert hash(msg) == hash((7, b"x"))


def test_cursor_refuses_a_class_it_cannot_fill() -> None:
    class Custom(tuple[int, bytes]):
        __slots__ = ()

        def __new__(cls, value: tuple[int, bytes]) -> Custom:
            return super().__new__(cls, value)

    with pytest.raises(TypeError, match="plain tuple subclass"):
        _core.MessageCursor(Custom, 1, [b"x"])


def test_cursor_does_not_read_past_a_shortened_list() -> None:
    payloads = [b"a", b"b", b"c"]
    cursor = _core.MessageCursor(Message, 1, payloads)
    del payloads[1:]
    assert next(cursor) == (1, b"a")
    with pytest.raises(IndexError):
        next(cursor)


def test_threads_sharing_a_cursor_get_each_message_once() -> None:
    payloads = [i.to_bytes(4, "big") for i in range(40_000)]
    cursor = _core.MessageCursor(Message, 1, payloads)
    got: list[list[int]] = [[] for _ in range(4)]

    def drain(mine: list[int]) -> None:
        mine.extend(m.sequence for m in cursor if m.sequence is not None)

    threads = [threading.Thread(target=drain, args=(g,)) for g in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(itertools.chain.from_iterable(got)) == list(range(1, 40_001))


# --- which path is in use, and the build -----------------------------------------------------


def _accelerated_in_a_child(**env: str) -> str:
    child_env = {k: v for k, v in os.environ.items() if k != PURE_PYTHON_VARIABLE} | env
    result = subprocess.run(
        [sys.executable, "-m", "soupbintcp", "--version"],
        capture_output=True,
        text=True,
        env=child_env,
        check=True,
    )
    return result.stdout.strip()


def test_the_environment_variable_forces_the_pure_path() -> None:
    assert _accelerated_in_a_child().endswith(", compiled fast path")
    assert _accelerated_in_a_child(SOUPBINTCP_PURE_PYTHON="1").endswith(
        ", pure Python (no compiled fast path)"
    )
    assert _accelerated_in_a_child(SOUPBINTCP_PURE_PYTHON="0").endswith(", compiled fast path")
    forced = os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0")
    assert soupbintcp.accelerated is not forced
