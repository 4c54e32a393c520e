"""Packets: golden bytes written from the spec tables (offsets and lengths), both login
lengths, both paddings, and field validation."""

from __future__ import annotations

import pytest

from soupbintcp import LocalProtocolError, RejectReason, RemoteProtocolError
from soupbintcp._wire._packets import CLIENT_PACKETS, SERVER_PACKETS
from soupbintcp.lowlevel import (
    ClientHeartbeatPacket,
    DebugPacket,
    EndOfSessionPacket,
    LoginAcceptedPacket,
    LoginRejectedPacket,
    LoginRequestPacket,
    LogoutRequestPacket,
    Packet,
    PacketType,
    SequencedDataPacket,
    ServerHeartbeatPacket,
    UnsequencedDataPacket,
    decode_packet,
)

from .helpers import wire

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path

GOLDEN: list[tuple[Packet, bytes]] = [
    # 2.1 Debug: "+" then free text
    (DebugPacket("host abc"), b"\x00\x09+host abc"),
    # 2.2.1 Login Accepted: Session offset 3 len 10 left padded, Sequence offset 13 len 20
    (
        LoginAcceptedPacket("SESSION1", 1),
        b"\x00\x1fA" + b"  SESSION1" + b" " * 19 + b"1",
    ),
    (
        LoginAcceptedPacket("A", 12345678901234567890),
        b"\x00\x1fA" + b"         A" + b"12345678901234567890",
    ),
    # 2.2.2 Login Rejected: reason offset 3 len 1
    (LoginRejectedPacket(RejectReason.NOT_AUTHORIZED), b"\x00\x02JA"),
    (LoginRejectedPacket(RejectReason.SESSION_NOT_AVAILABLE), b"\x00\x02JS"),
    # 2.2.3 Sequenced Data / 2.2.4 Unsequenced Data: any payload
    (SequencedDataPacket(b"\x00\x01\n\xff"), b"\x00\x05S\x00\x01\n\xff"),
    (SequencedDataPacket(b""), b"\x00\x01S"),
    (UnsequencedDataPacket(b"hello"), b"\x00\x06Uhello"),
    # 2.2.5 / 2.2.6 / 2.3.3 / 2.3.4: type byte only
    (ServerHeartbeatPacket(), b"\x00\x01H"),
    (EndOfSessionPacket(), b"\x00\x01Z"),
    (ClientHeartbeatPacket(), b"\x00\x01R"),
    (LogoutRequestPacket(), b"\x00\x01O"),
    # 2.3.1 Login Request 4.00: Username 3/6, Password 9/10 (right padded),
    # Requested Session 19/10, Requested Sequence 29/20 -> payload 46, length field 47
    (
        LoginRequestPacket("user", "secret", "SESSION1", 42),
        b"\x00\x2fL" + b"user  " + b"secret    " + b"  SESSION1" + b" " * 18 + b"42",
    ),
    (
        LoginRequestPacket("abcdef", "0123456789", "", 0),
        b"\x00\x2fL" + b"abcdef" + b"0123456789" + b" " * 10 + b" " * 19 + b"0",
    ),
    # 4.10: Heartbeat Timeout at offset 49, 5 digits -> payload 51, length field 52
    (
        LoginRequestPacket("user", "secret", "", 1, 15000),
        b"\x00\x34L" + b"user  " + b"secret    " + b" " * 10 + b" " * 19 + b"1" + b"15000",
    ),
    (
        LoginRequestPacket("u", "p", "S", 7, 250),
        b"\x00\x34L" + b"u     " + b"p         " + b"         S" + b" " * 19 + b"7" + b"  250",
    ),
]


@pytest.mark.parametrize(("packet", "raw"), GOLDEN, ids=lambda v: repr(v)[:40])
def test_golden_encode(packet: Packet, raw: bytes) -> None:
    assert packet.encode() == raw


@pytest.mark.parametrize(("packet", "raw"), GOLDEN, ids=lambda v: repr(v)[:40])
def test_golden_decode(packet: Packet, raw: bytes) -> None:
    assert decode_packet(raw) == packet


def test_login_request_offsets_match_spec_table() -> None:
    raw = LoginRequestPacket("USER", "PASS", "SES", 99, 1000).encode()
    assert raw[2:3] == b"L"
    assert raw[3:9].rstrip() == b"USER"
    assert raw[9:19].rstrip() == b"PASS"
    assert raw[19:29].lstrip() == b"SES"
    assert raw[29:49].lstrip() == b"99"
    assert raw[49:54].lstrip() == b"1000"
    assert len(raw) == 54


def test_login_accepted_offsets_match_spec_table() -> None:
    raw = LoginAcceptedPacket("SES", 5).encode()
    assert raw[3:13] == b"       SES"
    assert raw[13:33] == b" " * 19 + b"5"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # tolerant parsing: the other padding, zero padding
        (
            wire(b"L", b"  user" + b"    secret" + b"SESSION1  " + b"42" + b" " * 18),
            LoginRequestPacket("user", "secret", "SESSION1", 42),
        ),
        (
            wire(b"L", b"user  " + b"secret    " + b"  SESSION1" + b"0" * 18 + b"42" + b"01000"),
            LoginRequestPacket("user", "secret", "SESSION1", 42, 1000),
        ),
        (wire(b"A", b"SESSION1  " + b"7" + b" " * 19), LoginAcceptedPacket("SESSION1", 7)),
        (wire(b"A", b" " * 10 + b"0" * 19 + b"7"), LoginAcceptedPacket("", 7)),
    ],
)
def test_tolerant_parsing(raw: bytes, expected: Packet) -> None:
    assert decode_packet(raw) == expected


@pytest.mark.parametrize(
    "make",
    [
        lambda: LoginRequestPacket("toolong", "p"),
        lambda: LoginRequestPacket("u", "password123"),
        lambda: LoginRequestPacket("u", "p", "SESSION1234"),
        lambda: LoginRequestPacket("u", "p", "SES-1"),
        lambda: LoginRequestPacket("u", "p", "", -1),
        lambda: LoginRequestPacket("u", "p", "", 10**20),
        lambda: LoginRequestPacket("u", "p", "", 1, 100000),
        lambda: LoginRequestPacket("u", "p", "", 1, -1),
        lambda: LoginRequestPacket("usé", "p"),
        lambda: LoginRequestPacket("a b", "p"),
        lambda: LoginAcceptedPacket("SESSION1", -1).encode(),
        lambda: LoginAcceptedPacket("SESSION12345", 1).encode(),
        lambda: DebugPacket("héllo").encode(),
        lambda: SequencedDataPacket(b"x" * 65535).encode(),
    ],
)
def test_values_that_do_not_fit_raise_local_error(make: object) -> None:
    with pytest.raises(LocalProtocolError):
        make()  # type: ignore[operator]


def test_largest_payload_fits() -> None:
    raw = SequencedDataPacket(b"x" * 65534).encode()
    assert raw[:2] == b"\xff\xff"
    assert decode_packet(raw) == SequencedDataPacket(b"x" * 65534)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00",
        b"\x00\x01",
        b"\x00\x00",
        b"\x00\x02H",  # length says 2, one byte follows
        b"\x00\x01Q",  # unknown type
        b"\x00\x01a",  # lower-case letters are not packet types
        wire(b"J", b"X"),  # unknown reject code
        wire(b"J"),
        wire(b"A", b"x" * 29),
        wire(b"A", b"SESSION1  " + b"12a" + b" " * 17),
        wire(b"A", b"SES SION1 " + b"1" * 20),
        wire(b"L", b"x" * 45),
        wire(b"L", b"x" * 47),
        wire(b"L", b"user  secret    " + b" " * 10 + b" " * 20),  # empty sequence
        wire(b"L", b"us\xffr  secret    " + b" " * 10 + b" " * 19 + b"1"),
        wire(b"H", b"x"),
        wire(b"Z", b"x"),
    ],
)
def test_malformed_packets_raise_remote_error(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_packet(raw)


def test_direction_tables() -> None:
    assert set(SERVER_PACKETS) == {ord(c) for c in "+AJSUHZ"}
    assert set(CLIENT_PACKETS) == {ord(c) for c in "+LURO"}
    assert all(cls.packet_type == t for t, cls in SERVER_PACKETS.items())
    with pytest.raises(RemoteProtocolError, match="'L'"):
        decode_packet(LoginRequestPacket("u", "p").encode(), SERVER_PACKETS)
    with pytest.raises(RemoteProtocolError, match="'S'"):
        decode_packet(SequencedDataPacket(b"x").encode(), CLIENT_PACKETS)


def test_packet_types_are_the_spec_letters() -> None:
    assert {chr(t) for t in PacketType} == set("+AJSUHZLRO")


def test_debug_decoding_never_fails() -> None:
    assert decode_packet(wire(b"+", b"\xff\xfe")) == DebugPacket("\ufffd\ufffd")


def test_reject_reason_descriptions() -> None:
    assert RejectReason("A").description == "not authorized"
    assert RejectReason("S").description == "session not available"


def test_packets_are_frozen_and_slotted() -> None:
    packet = LoginAcceptedPacket("S", 1)
    with pytest.raises(AttributeError):
        packet.sequence = 2  # type: ignore[misc]
    assert not hasattr(packet, "__dict__")
