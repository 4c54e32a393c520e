"""Incremental decoding: any chunking, never half a packet, errors name the byte and offset."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soupbintcp import Dialect, ProtocolError, RejectReason, RemoteProtocolError
from soupbintcp.lowlevel import (
    ClientHeartbeatPacket,
    DebugPacket,
    EndOfSessionPacket,
    LoginAcceptedPacket,
    LoginRejectedPacket,
    LoginRequestPacket,
    LogoutRequestPacket,
    Packet,
    PacketDecoder,
    Role,
    SequencedDataPacket,
    ServerHeartbeatPacket,
    UnsequencedDataPacket,
)

from .helpers import wire

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path

ascii_token = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=0, max_size=6
)
alnum = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abc", max_size=10)
payload = st.binary(max_size=80)

server_packets = st.one_of(
    st.builds(DebugPacket, st.text(alphabet=st.characters(max_codepoint=127), max_size=20)),
    st.builds(LoginAcceptedPacket, alnum, st.integers(0, 10**20 - 1)),
    st.builds(LoginRejectedPacket, st.sampled_from(RejectReason)),
    st.builds(SequencedDataPacket, payload),
    st.builds(UnsequencedDataPacket, payload),
    st.just(ServerHeartbeatPacket()),
    st.just(EndOfSessionPacket()),
)
client_packets = st.one_of(
    st.builds(DebugPacket, st.text(alphabet=st.characters(max_codepoint=127), max_size=20)),
    st.builds(
        LoginRequestPacket,
        ascii_token,
        ascii_token,
        alnum,
        st.integers(0, 10**20 - 1),
        st.one_of(st.none(), st.integers(0, 99999)),
    ),
    st.builds(UnsequencedDataPacket, payload),
    st.just(ClientHeartbeatPacket()),
    st.just(LogoutRequestPacket()),
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def drain(decoder: PacketDecoder) -> list[Packet]:
    """Everything decodable, mixing the batch path and the packet path as a session does."""
    out: list[Packet] = []
    while True:
        out.extend(SequencedDataPacket(p) for p in decoder.next_sequenced_payloads())
        packet = decoder.next_packet()
        if packet is None:
            return out
        out.append(packet)


@given(st.lists(server_packets, max_size=30), st.lists(st.integers(0, 10_000), max_size=20))
@settings(max_examples=300)
def test_server_stream_round_trips_under_any_chunking(
    packets: list[Packet], cuts: list[int]
) -> None:
    data = b"".join(p.encode() for p in packets)
    decoder = PacketDecoder(Role.SERVER)
    got: list[Packet] = []
    for chunk in chunked(data, cuts):
        decoder.feed(chunk)
        got.extend(drain(decoder))
    assert got == packets
    assert decoder.buffered == 0
    assert decoder.offset == len(data)


@given(st.lists(client_packets, max_size=30), st.lists(st.integers(0, 10_000), max_size=20))
@settings(max_examples=300)
def test_client_stream_round_trips_under_any_chunking(
    packets: list[Packet], cuts: list[int]
) -> None:
    data = b"".join(p.encode() for p in packets)
    decoder = PacketDecoder(Role.CLIENT)
    got: list[Packet] = []
    for chunk in chunked(data, cuts):
        decoder.feed(chunk)
        got.extend(decoder)
    assert got == packets


@given(st.lists(server_packets, max_size=10))
def test_one_byte_at_a_time(packets: list[Packet]) -> None:
    data = b"".join(p.encode() for p in packets)
    decoder = PacketDecoder(Role.SERVER)
    got: list[Packet] = []
    for i in range(len(data)):
        decoder.feed(data[i : i + 1])
        got.extend(drain(decoder))
    assert got == packets


@given(st.binary(max_size=300), st.sampled_from(Role), st.sampled_from(Dialect))
@settings(max_examples=1000)
def test_any_bytes_decode_or_raise_protocol_error(
    data: bytes, sender: Role, dialect: Dialect
) -> None:
    decoder = PacketDecoder(sender, dialect=dialect, max_packet_length=200)
    decoder.feed(data)
    try:
        for _ in range(len(data) + 1):  # bounded: every step consumes >= 1 byte or stops
            if not decoder.next_sequenced_payloads() and decoder.next_packet() is None:
                break
    except ProtocolError:
        pass


def test_never_consumes_half_a_packet() -> None:
    raw = SequencedDataPacket(b"abcdef").encode()
    decoder = PacketDecoder(Role.SERVER)
    for i in range(len(raw) - 1):
        decoder.feed(raw[i : i + 1])
        assert decoder.next_sequenced_payloads() == []
        assert decoder.next_packet() is None
        assert decoder.offset == 0
    decoder.feed(raw[-1:])
    assert decoder.next_sequenced_payloads() == [b"abcdef"]
    assert decoder.offset == len(raw)


def test_batch_path_stops_at_other_packets_and_keeps_order() -> None:
    decoder = PacketDecoder(Role.SERVER)
    decoder.feed(
        wire(b"S", b"1") + wire(b"S", b"22") + wire(b"H") + wire(b"S", b"") + wire(b"S", b"4")[:3]
    )
    assert decoder.next_sequenced_payloads() == [b"1", b"22"]
    assert decoder.next_sequenced_payloads() == []
    assert decoder.next_packet() == ServerHeartbeatPacket()
    assert decoder.next_sequenced_payloads() == [b""]
    assert decoder.next_packet() is None
    decoder.feed(b"4")
    assert decoder.next_sequenced_payloads() == [b"4"]


def test_omega_empty_sequenced_data_is_not_in_the_batch() -> None:
    decoder = PacketDecoder(Role.SERVER, dialect=Dialect.OMEGA)
    decoder.feed(wire(b"S", b"1") + wire(b"S") + wire(b"S", b"2"))
    assert decoder.next_sequenced_payloads() == [b"1"]
    assert decoder.next_packet() == SequencedDataPacket(b"")
    assert decoder.next_sequenced_payloads() == [b"2"]


@pytest.mark.parametrize("letter", [b"U", b"Z"])
def test_omega_server_has_no_unsequenced_or_end_of_session(letter: bytes) -> None:
    decoder = PacketDecoder(Role.SERVER, dialect=Dialect.OMEGA)
    decoder.feed(wire(letter))
    with pytest.raises(RemoteProtocolError, match=repr(letter)):
        decoder.next_packet()


def test_unexpected_type_names_byte_and_offset() -> None:
    decoder = PacketDecoder(Role.SERVER)
    decoder.feed(wire(b"H") + wire(b"S", b"abc") + LoginRequestPacket("u", "p").encode())
    assert decoder.next_packet() == ServerHeartbeatPacket()
    assert decoder.next_sequenced_payloads() == [b"abc"]
    with pytest.raises(RemoteProtocolError, match=r"type b'L' at offset 11"):
        decoder.next_packet()
    with pytest.raises(RemoteProtocolError):  # it keeps failing: nothing was consumed
        decoder.next_packet()


def test_type_is_checked_before_the_body_arrives() -> None:
    decoder = PacketDecoder(Role.CLIENT)
    decoder.feed(b"\x10\x00S")  # a server packet type, 4 KiB announced
    with pytest.raises(RemoteProtocolError, match="type b'S' at offset 2"):
        decoder.next_packet()


def test_length_over_the_cap_fails_from_the_header() -> None:
    decoder = PacketDecoder(Role.CLIENT, max_packet_length=100)
    decoder.feed(b"\x00\x65")  # 101
    with pytest.raises(RemoteProtocolError, match="exceeds the limit of 100"):
        decoder.next_packet()
    small = PacketDecoder(Role.SERVER, max_packet_length=10)
    small.feed(wire(b"S", b"x" * 20))
    assert small.next_sequenced_payloads() == []
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        small.next_packet()


def test_zero_length_is_an_error() -> None:
    decoder = PacketDecoder(Role.SERVER)
    decoder.feed(wire(b"S", b"a") + b"\x00\x00S")
    assert decoder.next_sequenced_payloads() == [b"a"]
    with pytest.raises(RemoteProtocolError, match="length 0 at offset 4"):
        decoder.next_packet()


def test_malformed_field_error_names_the_packet_offset() -> None:
    decoder = PacketDecoder(Role.SERVER)
    decoder.feed(wire(b"H") + wire(b"J", b"X"))
    assert decoder.next_packet() == ServerHeartbeatPacket()
    with pytest.raises(RemoteProtocolError, match=r"reason code.*offset 3"):
        decoder.next_packet()
