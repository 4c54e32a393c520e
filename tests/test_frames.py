"""The one frame walk (`soupbintcp._wire._frames`): whole input, every cut, bad headers."""

from __future__ import annotations

from array import array

from hypothesis import given
from hypothesis import strategies as st

from soupbintcp._wire._frames import Walk, frame_payloads, walk
from soupbintcp.lowlevel import SequencedDataPacket

payload_lists = st.lists(st.binary(max_size=40), max_size=30)


def frames_of(messages: list[bytes]) -> bytes:
    return b"".join(SequencedDataPacket(m).encode() for m in messages)


def records_of(messages: list[bytes]) -> bytes:
    return b"".join(len(m).to_bytes(2, "big") + m for m in messages)


@given(payload_lists)
def test_walks_every_frame_and_cuts_their_payloads(messages: list[bytes]) -> None:
    buf = frames_of(messages)
    assert walk(buf) == Walk(len(buf), len(messages), None)
    assert frame_payloads(buf, len(messages)) == messages


@given(payload_lists)
def test_walks_binaryfile_records(messages: list[bytes]) -> None:
    buf = records_of(messages)
    assert walk(buf, kind=None) == Walk(len(buf), len(messages), None)
    assert frame_payloads(buf, len(messages), typed=False) == messages


@given(payload_lists, st.data())
def test_a_cut_stops_at_the_last_whole_frame(messages: list[bytes], data: st.DataObject) -> None:
    buf = frames_of(messages)
    cut = data.draw(st.integers(0, len(buf)))
    ends = [0]
    for m in messages:
        ends.append(ends[-1] + len(m) + 3)
    whole = max(e for e in ends if e <= cut)
    assert walk(buf[:cut]) == Walk(whole, ends.index(whole), None)


@given(payload_lists, st.integers(1, 5), st.integers(0, 7))
def test_starts_are_every_nth_frame(messages: list[bytes], every: int, number: int) -> None:
    buf = frames_of(messages)
    starts: array[int] = array("Q")
    mark = (number + every - 1) // every * every  # the first multiple of `every` from `number`
    walk(buf, starts=starts, number=number, mark=mark, every=every, base=100)
    offsets = [100]
    for m in messages[:-1]:
        offsets.append(offsets[-1] + len(m) + 3)
    expected = [o for i, o in enumerate(offsets[: len(messages)]) if (number + i) % every == 0]
    assert list(starts) == expected


def test_count_limits_the_walk() -> None:
    buf = frames_of([b"a", b"bc", b"d"])
    assert walk(buf, 0, 2) == Walk(4 + 5, 2, None)
    assert walk(buf, 0, 0) == Walk(0, 0, None)


def test_bad_headers_are_faults_naming_the_frame() -> None:
    good = frames_of([b"a"])
    assert walk(good + b"\x00\x00S") == Walk(4, 1, "a zero length field")
    assert walk(good + b"\x00\x02Ux") == Walk(4, 1, "type byte b'U' instead of b'S'")
    # A header is checked as soon as its type byte is there, before the body.
    assert walk(good + b"\x00\x09U") == Walk(4, 1, "type byte b'U' instead of b'S'")
    # Two bytes of a zero length, no type byte yet: a partial frame, not a fault yet.
    assert walk(good + b"\x00\x00") == Walk(4, 1, None)
    # BinaryFILE records have no type byte, and may be empty.
    assert walk(b"\x00\x00\x00\x01U", kind=None) == Walk(5, 2, None)
