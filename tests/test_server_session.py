"""ServerSession, deterministically: time is a number we pass in."""

from __future__ import annotations

import pytest

from soupbintcp import (
    Dialect,
    HeartbeatTimeout,
    LocalProtocolError,
    LoginTimeout,
    RejectReason,
    RemoteProtocolError,
)
from soupbintcp.lowlevel import (
    ClientHeartbeatPacket,
    DebugPacket,
    LoginAcceptedPacket,
    LoginRejectedPacket,
    LoginRequestPacket,
    LogoutRequestPacket,
    ServerConnectionState,
    ServerState,
    UnsequencedDataPacket,
    decode_packet,
)

from .helpers import wire

LOGIN_400 = LoginRequestPacket("user", "secret", "", 1).encode()
LOGIN_410 = LoginRequestPacket("user", "secret", "", 1, 2500).encode()


def logged_in(**kwargs: object) -> ServerConnectionState:
    server = ServerConnectionState(0.0, **kwargs)  # type: ignore[arg-type]
    server.receive_data(LOGIN_400, 0.0)
    server.accept("SESSION1", 1, 0.0)
    return server


def test_login_request_hands_decision_to_caller() -> None:
    server = ServerConnectionState(0.0)
    events = server.receive_data(LOGIN_400, 0.1)
    assert events == [LoginRequestPacket("user", "secret", "", 1)]
    assert server.state is ServerState.LOGIN_PENDING
    assert server.login_request == events[0]
    assert decode_packet(server.accept("SESSION1", 1, 0.2)) == LoginAcceptedPacket("SESSION1", 1)
    assert server.state is ServerState.LOGGED_IN
    assert server.next_sequence == 1


@pytest.mark.parametrize("reason", list(RejectReason))
def test_reject(reason: RejectReason) -> None:
    server = ServerConnectionState(0.0)
    server.receive_data(LOGIN_400, 0.1)
    assert decode_packet(server.reject(reason, 0.2)) == LoginRejectedPacket(reason)
    assert server.state is ServerState.REJECTED
    assert server.next_timer() is None
    with pytest.raises(LocalProtocolError):
        server.send_sequenced(b"x", 0.3)


def test_both_login_lengths_accepted() -> None:
    for raw, timeout in ((LOGIN_400, 15.0), (LOGIN_410, 2.5)):
        server = ServerConnectionState(0.0, client_heartbeat_timeout=15.0)
        server.receive_data(raw, 0.0)
        server.accept("S", 1, 0.0)
        assert server.client_heartbeat_timeout == timeout


def test_410_zero_heartbeat_timeout_means_default() -> None:
    server = ServerConnectionState(0.0, client_heartbeat_timeout=9.0)
    server.receive_data(LoginRequestPacket("u", "p", "", 1, 0).encode(), 0.0)
    assert server.client_heartbeat_timeout == 9.0


def test_login_timeout() -> None:
    server = ServerConnectionState(100.0, login_timeout=30.0)
    assert server.next_timer() == 130.0
    assert server.handle_timer(129.9) == b""
    server.receive_data(DebugPacket("still here").encode(), 120.0)  # debug is not a login
    with pytest.raises(LoginTimeout):
        server.handle_timer(130.0)
    assert server.state is ServerState.CLOSED


def test_login_timeout_runs_while_the_decision_is_pending() -> None:
    server = ServerConnectionState(0.0, login_timeout=5.0)
    server.receive_data(LOGIN_400, 1.0)
    with pytest.raises(LoginTimeout):
        server.handle_timer(5.0)


def test_heartbeat_after_one_second_without_sending() -> None:
    server = logged_in()
    assert server.next_timer() == 1.0
    assert server.handle_timer(0.99) == b""
    assert server.handle_timer(1.0) == wire(b"H")
    server.send_sequenced(b"x", 1.5)
    assert server.handle_timer(2.0) == b""
    assert server.handle_timer(2.5) == wire(b"H")


def test_enforces_the_410_client_heartbeat_timeout() -> None:
    server = ServerConnectionState(0.0, client_heartbeat_timeout=15.0)
    server.receive_data(LOGIN_410, 0.0)  # 2500 ms
    server.accept("S", 1, 0.0)
    server.receive_data(ClientHeartbeatPacket().encode(), 2.0)
    server.handle_timer(4.0)
    with pytest.raises(HeartbeatTimeout, match=r"2\.5 s"):
        server.handle_timer(4.5)
    assert server.state is ServerState.CLOSED


def test_enforces_the_default_client_heartbeat_timeout() -> None:
    server = logged_in(client_heartbeat_timeout=15.0)
    for t in range(1, 15):
        server.handle_timer(float(t))
    with pytest.raises(HeartbeatTimeout):
        server.handle_timer(15.0)


def test_client_packets_after_login() -> None:
    server = logged_in()
    raw = (
        UnsequencedDataPacket(b"order").encode()
        + ClientHeartbeatPacket().encode()
        + DebugPacket("x").encode()
        + LogoutRequestPacket().encode()
    )
    assert server.receive_data(raw, 1.0) == [
        UnsequencedDataPacket(b"order"),
        ClientHeartbeatPacket(),
        DebugPacket("x"),
        LogoutRequestPacket(),
    ]
    assert server.state is ServerState.CLOSED


def test_sequence_numbers_advance_with_sent_data() -> None:
    server = ServerConnectionState(0.0)
    server.receive_data(LOGIN_400, 0.0)
    server.accept("S", 10, 0.0)
    server.send_sequenced(b"a", 0.0)
    server.send_unsequenced(b"u", 0.0)  # not counted
    raw = server.send_sequenced_many([b"b", b"cc", b""], 0.0)
    assert raw == wire(b"S", b"b") + wire(b"S", b"cc") + wire(b"S")
    server.sequenced_sent(5, 0.0)
    assert server.next_sequence == 19


def test_end_of_session() -> None:
    server = logged_in()
    assert server.end_session(1.0) == wire(b"Z")
    assert server.state is ServerState.ENDED
    with pytest.raises(LocalProtocolError):
        server.send_sequenced(b"x", 1.0)
    assert server.receive_data(LogoutRequestPacket().encode(), 1.1) == [LogoutRequestPacket()]


@pytest.mark.parametrize(
    ("setup", "raw", "match"),
    [
        (
            "new",
            UnsequencedDataPacket(b"x").encode(),
            "Unsequenced Data received in state 'awaiting login'",
        ),
        (
            "new",
            ClientHeartbeatPacket().encode(),
            "Client Heartbeat received in state 'awaiting login'",
        ),
        ("new", LogoutRequestPacket().encode(), "expected Debug, Login Request"),
        ("pending", LOGIN_400, "Login Request received in state 'login pending'"),
        ("pending", UnsequencedDataPacket(b"x").encode(), "'login pending'"),
        ("logged_in", LOGIN_400, "Login Request received in state 'logged in'"),
        ("logged_in", wire(b"S", b"x"), "type b'S' at offset"),
        ("logged_in", wire(b"H"), "type b'H'"),
        ("logged_in", wire(b"A", b" " * 30), "type b'A'"),
        ("new", wire(b"x"), "type b'x' at offset 2"),
        ("new", wire(b"L", b"x" * 10), "LoginRequest payload is 10 bytes"),
        ("new", b"\x00\x00", "length 0"),
    ],
)
def test_protocol_violations_end_in_a_clear_error(setup: str, raw: bytes, match: str) -> None:
    server = ServerConnectionState(0.0)
    if setup != "new":
        server.receive_data(LOGIN_400, 0.0)
    if setup == "logged_in":
        server.accept("S", 1, 0.0)
    with pytest.raises(RemoteProtocolError, match=match):
        server.receive_data(raw, 0.1)
    assert server.state is ServerState.ERROR
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"", 0.2)
    with pytest.raises(RemoteProtocolError):
        server.send_sequenced(b"x", 0.2)


def test_max_packet_length_caps_client_packets() -> None:
    server = ServerConnectionState(0.0, max_packet_length=100)
    server.receive_data(LOGIN_400, 0.0)
    server.accept("S", 1, 0.0)
    with pytest.raises(RemoteProtocolError, match="exceeds the limit of 100"):
        server.receive_data(b"\x10\x00U", 0.1)


def test_calls_out_of_order_are_local_errors() -> None:
    server = ServerConnectionState(0.0)
    with pytest.raises(LocalProtocolError, match="cannot accept in state 'awaiting login'"):
        server.accept("S", 1, 0.0)
    with pytest.raises(LocalProtocolError):
        server.send_sequenced(b"x", 0.0)
    with pytest.raises(LocalProtocolError):
        server.end_session(0.0)
    server.receive_data(LOGIN_400, 0.0)
    with pytest.raises(LocalProtocolError, match="1 or more"):
        server.accept("S", 0, 0.0)
    with pytest.raises(LocalProtocolError):
        server.accept("BAD ID", 1, 0.0)
    assert server.state is ServerState.LOGIN_PENDING  # a refused call changes nothing


def test_omega_dialect_server() -> None:
    server = ServerConnectionState(0.0, dialect=Dialect.OMEGA)
    server.receive_data(LOGIN_400, 0.0)
    server.accept("S", 1, 0.0)
    assert server.send_no_more_messages(0.0) == wire(b"S")
    assert server.next_sequence == 1
    with pytest.raises(LocalProtocolError):
        server.send_unsequenced(b"x", 0.0)
    with pytest.raises(LocalProtocolError):
        server.end_session(0.0)
    standard = logged_in()
    with pytest.raises(LocalProtocolError):
        standard.send_no_more_messages(0.0)


def test_a_server_that_paused_reading_does_not_time_out_the_client() -> None:
    # The driver stops reading when its unsequenced inbox is full: that silence is ours.
    server = ServerConnectionState(0.0, heartbeat_interval=1.0, client_heartbeat_timeout=2.0)
    server.receive_data(LOGIN_400, 0.0)
    server.accept("S1", 1, 0.0)
    server.reading_paused(0.5)
    for now in (1.0, 2.0, 3.0, 10.0):
        server.handle_timer(now)
    assert server.state is ServerState.LOGGED_IN
    assert server.next_timer() == 11.0  # only the Server Heartbeat is due
    server.reading_resumed(10.0)
    assert server.next_timer() == 11.0
    server.handle_timer(11.0)
    with pytest.raises(HeartbeatTimeout):
        server.handle_timer(12.0)


def test_client_heartbeats_while_the_login_is_pending_are_legal() -> None:
    server = ServerConnectionState(0.0)
    server.receive_data(LOGIN_400, 0.0)
    assert (
        server.receive_data(ClientHeartbeatPacket().encode() * 2, 0.5)
        == [ClientHeartbeatPacket()] * 2
    )
    assert server.state is ServerState.LOGIN_PENDING
    server.accept("S1", 1, 1.0)
    assert server.state is ServerState.LOGGED_IN
