"""MoldUDP64 packets: golden bytes from the spec's tables, every malformed datagram our own
error with its fault, and Hypothesis round trips."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soupbintcp._errors import LocalProtocolError, MoldUDP64Error, MoldUDP64Fault
from soupbintcp._wire._moldudp64 import (
    DEFAULT_MAX_PAYLOAD,
    Downstream,
    Request,
    decode_blocks,
    decode_header,
    pack_downstream,
    session_field,
)

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path

SESSION = b"SESSION1  "


def test_downstream_golden_bytes() -> None:
    # Session offset 0 len 10 (right padded), Sequence offset 10 len 8, Count offset 18 len 2,
    # then each block: 2-byte length, data.
    packet = Downstream("SESSION1", 5, (b"ab", b"", b"xyz"))
    wire = (
        SESSION
        + (5).to_bytes(8, "big")
        + (3).to_bytes(2, "big")
        + b"\x00\x02ab"
        + b"\x00\x00"
        + b"\x00\x03xyz"
    )
    assert packet.encode() == wire
    assert Downstream.decode(wire) == packet
    assert packet.next_sequence == 8


def test_heartbeat_and_end_of_session_golden_bytes() -> None:
    heartbeat = Downstream("S1", 42)
    assert heartbeat.is_heartbeat
    assert heartbeat.encode() == b"S1        " + (42).to_bytes(8, "big") + b"\x00\x00"
    end = Downstream("S1", 42, end_of_session=True)
    assert end.encode() == b"S1        " + (42).to_bytes(8, "big") + b"\xff\xff"
    assert Downstream.decode(end.encode()) == end
    assert not end.is_heartbeat


def test_request_golden_bytes() -> None:
    request = Request("ABC", 2**40, 0xFFFF)
    wire = b"ABC       " + (2**40).to_bytes(8, "big") + b"\xff\xff"
    assert request.encode() == wire
    assert Request.decode(wire) == request


def test_sessions_compare_with_padding_stripped() -> None:
    left_padded = b"  SESSION1" + (1).to_bytes(8, "big") + b"\x00\x00"
    assert Downstream.decode(left_padded).session == "SESSION1"


@pytest.mark.parametrize(
    ("data", "fault"),
    [
        (b"", MoldUDP64Fault.SHORT_PACKET),
        (SESSION + b"\x00" * 9, MoldUDP64Fault.SHORT_PACKET),
        # a count that lies high: two blocks announced, one present
        (SESSION + b"\x00" * 8 + b"\x00\x02" + b"\x00\x01a", MoldUDP64Fault.BLOCK_OVERRUN),
        # a block length running past the end
        (SESSION + b"\x00" * 8 + b"\x00\x01" + b"\x00\x09abc", MoldUDP64Fault.BLOCK_OVERRUN),
        # half a length field
        (SESSION + b"\x00" * 8 + b"\x00\x01" + b"\x00", MoldUDP64Fault.BLOCK_OVERRUN),
        # a count that lies low: bytes left over
        (SESSION + b"\x00" * 8 + b"\x00\x01" + b"\x00\x01a" + b"zz", MoldUDP64Fault.TRAILING_BYTES),
        # a heartbeat or End of Session with blocks after it
        (SESSION + b"\x00" * 8 + b"\x00\x00" + b"x", MoldUDP64Fault.TRAILING_BYTES),
        (SESSION + b"\x00" * 8 + b"\xff\xff" + b"\x00\x00", MoldUDP64Fault.TRAILING_BYTES),
        (b"SES ION1  " + b"\x00" * 8 + b"\x00\x00", MoldUDP64Fault.BAD_SESSION),
        (b" " * 10 + b"\x00" * 8 + b"\x00\x00", MoldUDP64Fault.BAD_SESSION),
        (b"\xffESSION1  " + b"\x00" * 8 + b"\x00\x00", MoldUDP64Fault.BAD_SESSION),
    ],
)
def test_malformed_downstream_raises_its_fault(data: bytes, fault: MoldUDP64Fault) -> None:
    with pytest.raises(MoldUDP64Error) as info:
        Downstream.decode(data)
    assert info.value.fault is fault


@pytest.mark.parametrize(
    ("data", "fault"),
    [
        (SESSION + b"\x00" * 9, MoldUDP64Fault.SHORT_PACKET),
        (SESSION + b"\x00" * 11, MoldUDP64Fault.TRAILING_BYTES),
        (b"!" * 10 + b"\x00" * 10, MoldUDP64Fault.BAD_SESSION),
    ],
)
def test_malformed_request_raises_its_fault(data: bytes, fault: MoldUDP64Fault) -> None:
    with pytest.raises(MoldUDP64Error) as info:
        Request.decode(data)
    assert info.value.fault is fault


@pytest.mark.parametrize("session", ["", "TOOLONGSESS", "a b", "sé"])
def test_bad_session_is_the_callers_error(session: str) -> None:
    with pytest.raises(LocalProtocolError):
        session_field(session)


def test_limits_are_the_callers_error() -> None:
    with pytest.raises(LocalProtocolError):
        Downstream("S", -1).encode()
    with pytest.raises(LocalProtocolError):
        Downstream("S", 1, (b"x" * 0x10000,)).encode()
    with pytest.raises(LocalProtocolError):
        Downstream("S", 1, end_of_session=True, messages=(b"x",))
    with pytest.raises(LocalProtocolError):
        Request("S", 1, 0x10000).encode()


def test_pack_downstream_fills_up_to_the_payload_limit() -> None:
    messages = [bytes([i % 256]) * (10 + i % 40) for i in range(500)]
    start = 0
    seen: list[bytes] = []
    while start < len(messages):
        datagram, n = pack_downstream(SESSION, 1 + start, messages, start)
        assert n >= 1
        assert len(datagram) <= DEFAULT_MAX_PAYLOAD
        if start + n < len(messages):
            # the next message would not have fit
            assert len(datagram) + 2 + len(messages[start + n]) > DEFAULT_MAX_PAYLOAD
        raw, sequence, count = decode_header(datagram)
        assert (raw, sequence, count) == (SESSION, 1 + start, n)
        seen += decode_blocks(datagram, count)
        start += n
    assert seen == messages


def test_pack_downstream_sends_an_oversized_message_alone() -> None:
    big = b"x" * 3000
    datagram, n = pack_downstream(SESSION, 7, [big, b"y"], 0)
    assert n == 1
    assert Downstream.decode(datagram).messages == (big,)


_sessions = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abc", min_size=1, max_size=10)
_messages = st.lists(st.binary(max_size=300), max_size=40)


@given(_sessions, st.integers(0, 2**64 - 1), _messages, st.booleans())
def test_downstream_round_trip(
    session: str, sequence: int, messages: list[bytes], end: bool
) -> None:
    packet = Downstream(session, sequence, () if end else tuple(messages), end)
    assert Downstream.decode(packet.encode()) == packet


@given(_sessions, st.integers(0, 2**64 - 1), st.integers(0, 0xFFFF))
def test_request_round_trip(session: str, sequence: int, count: int) -> None:
    request = Request(session, sequence, count)
    assert Request.decode(request.encode()) == request


@given(st.binary(max_size=200))
def test_any_datagram_decodes_or_raises_our_error(data: bytes) -> None:
    for decode in (Downstream.decode, Request.decode):
        with contextlib.suppress(MoldUDP64Error):
            decode(data)


@given(_messages, st.integers(0, 40), st.data())
def test_any_corruption_of_a_packet_decodes_or_raises_our_error(
    messages: list[bytes], cut: int, data: st.DataObject
) -> None:
    wire = bytearray(Downstream("S1", 1, tuple(messages)).encode())
    if len(wire) > 20:
        position = data.draw(st.integers(18, len(wire) - 1))
        wire[position] = data.draw(st.integers(0, 255))
    del wire[len(wire) - min(cut, len(wire)) :]
    try:
        packet = Downstream.decode(bytes(wire))
    except MoldUDP64Error:
        return
    # What decodes fills the datagram exactly.
    assert packet.encode() == bytes(wire)
