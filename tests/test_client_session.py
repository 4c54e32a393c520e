"""ClientSession, deterministically: time is a number we pass in."""

from __future__ import annotations

import pytest

from soupbintcp import (
    ClientState,
    Dialect,
    HeartbeatTimeout,
    LocalProtocolError,
    LoginTimeout,
    RejectReason,
    RemoteProtocolError,
    SequenceGap,
    SessionMismatch,
)
from soupbintcp.lowlevel import (
    ClientHeartbeatPacket,
    ClientSession,
    DebugPacket,
    EndOfSessionPacket,
    LoginAcceptedPacket,
    LoginRejectedPacket,
    LoginRequestPacket,
    NoMoreMessages,
    SequencedMessages,
    ServerHeartbeatPacket,
    UnsequencedDataPacket,
    decode_packet,
)

from .helpers import sequenced, wire

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path


def accepted(session: str = "SESSION1", sequence: int = 1) -> bytes:
    return LoginAcceptedPacket(session, sequence).encode()


def s(payload: bytes) -> bytes:
    return wire(b"S", payload)


def logged_in(**kwargs: object) -> ClientSession:
    client = ClientSession("user", "secret", **kwargs)  # type: ignore[arg-type]
    client.login(0.0)
    client.receive_data(accepted(), 0.0)
    return client


def test_login_request_carries_session_and_sequence() -> None:
    client = ClientSession("user", "secret", session_id="SES", sequence=7)
    assert decode_packet(client.login(0.0)) == LoginRequestPacket("user", "secret", "SES", 7)
    assert client.state is ClientState.LOGIN_SENT


def test_login_request_410_when_heartbeat_timeout_is_given() -> None:
    client = ClientSession("user", "secret", client_heartbeat_timeout_ms=5000)
    raw = client.login(0.0)
    assert len(raw) == 54
    assert decode_packet(raw) == LoginRequestPacket("user", "secret", "", 1, 5000)


def test_login_accepted() -> None:
    client = ClientSession("user", "secret")
    client.login(0.0)
    events = client.receive_data(accepted("SESSION1", 1), 0.1)
    assert events == [LoginAcceptedPacket("SESSION1", 1)]
    assert client.state is ClientState.LOGGED_IN
    assert client.session_id == "SESSION1"
    assert client.next_sequence == 1


@pytest.mark.parametrize("reason", list(RejectReason))
def test_login_rejected(reason: RejectReason) -> None:
    client = ClientSession("user", "secret")
    client.login(0.0)
    assert client.receive_data(LoginRejectedPacket(reason).encode(), 0.1) == [
        LoginRejectedPacket(reason)
    ]
    assert client.state is ClientState.REJECTED
    assert client.is_terminal
    assert client.next_timer() is None
    with pytest.raises(LocalProtocolError):
        client.login(1.0)


def test_unknown_reject_code_is_a_remote_error_not_a_hang() -> None:
    client = ClientSession("user", "secret")
    client.login(0.0)
    with pytest.raises(RemoteProtocolError, match="reject reason"):
        client.receive_data(wire(b"J", b"X"), 0.1)
    assert client.state is ClientState.ERROR


def test_debug_is_observable_during_login() -> None:
    client = ClientSession("user", "secret")
    client.login(0.0)
    events = client.receive_data(DebugPacket("hello").encode() + accepted(), 0.0)
    assert events == [DebugPacket("hello"), LoginAcceptedPacket("SESSION1", 1)]


def test_sequence_counting_ignores_unsequenced_data() -> None:
    client = logged_in()
    stream = s(b"a") + wire(b"U", b"x") + s(b"b") + wire(b"H") + wire(b"U", b"y") + s(b"c")
    events = client.receive_data(stream, 1.0)
    assert sequenced(events) == [(1, b"a"), (2, b"b"), (3, b"c")]
    assert [e for e in events if isinstance(e, UnsequencedDataPacket)] == [
        UnsequencedDataPacket(b"x"),
        UnsequencedDataPacket(b"y"),
    ]
    assert ServerHeartbeatPacket() in events
    assert client.next_sequence == 4


def test_counting_starts_at_the_accepted_sequence_for_sequence_zero() -> None:
    client = ClientSession("user", "secret", sequence=0)
    client.login(0.0)
    client.receive_data(accepted(sequence=500), 0.0)
    events = client.receive_data(s(b"x") + s(b"y"), 0.0)
    assert sequenced(events) == [(500, b"x"), (501, b"y")]


def test_heartbeat_sent_after_one_second_idle() -> None:
    client = logged_in()
    assert client.next_timer() == 1.0
    assert client.handle_timer(0.5) == b""
    assert client.handle_timer(1.0) == wire(b"R")
    assert client.next_timer() == 2.0
    client.send_unsequenced(b"x", 1.7)  # sending anything resets the interval
    assert client.handle_timer(2.0) == b""
    assert client.next_timer() == pytest.approx(2.7)


def test_no_heartbeat_before_login_accepted() -> None:
    client = ClientSession("user", "secret", login_timeout=5.0)
    client.login(0.0)
    assert client.next_timer() == 5.0
    assert client.handle_timer(1.5) == b""


def test_link_dead_after_configured_silence() -> None:
    client = logged_in(heartbeat_timeout=15.0)
    now = 0.0
    while now < 14.0:  # heartbeats go out; the server says nothing
        now += 1.0
        client.handle_timer(now)
    client.receive_data(wire(b"H"), 14.5)  # server heartbeat: alive
    for t in (15.5, 20.0, 29.0):
        client.handle_timer(t)
    with pytest.raises(HeartbeatTimeout, match="heartbeat timeout 15 s"):
        client.handle_timer(29.5)
    assert client.state is ClientState.DISCONNECTED


def test_login_timeout() -> None:
    client = ClientSession("user", "secret", login_timeout=3.0)
    client.login(10.0)
    assert client.next_timer() == 13.0
    client.handle_timer(12.9)
    with pytest.raises(LoginTimeout):
        client.handle_timer(13.0)
    assert client.state is ClientState.DISCONNECTED


def test_end_of_session() -> None:
    client = logged_in()
    events = client.receive_data(s(b"a") + wire(b"Z") + wire(b"H"), 1.0)
    assert sequenced(events) == [(1, b"a")]
    assert EndOfSessionPacket() in events
    assert client.state is ClientState.ENDED
    assert client.next_timer() is None
    with pytest.raises(RemoteProtocolError, match="Sequenced Data received in state 'ended'"):
        client.receive_data(s(b"late"), 2.0)


def test_logout() -> None:
    client = logged_in()
    assert client.logout(1.0) == wire(b"O")
    assert client.state is ClientState.LOGGING_OUT
    # data in flight before the server closes is still delivered
    assert sequenced(client.receive_data(s(b"a"), 1.1)) == [(1, b"a")]
    client.connection_lost()
    assert client.state is ClientState.CLOSED


def test_unsequenced_before_login_accepted_is_refused() -> None:
    client = ClientSession("user", "secret")
    with pytest.raises(LocalProtocolError, match="cannot unsequenced in state 'idle'"):
        client.send_unsequenced(b"x", 0.0)
    client.login(0.0)
    with pytest.raises(LocalProtocolError):
        client.send_unsequenced(b"x", 0.0)


@pytest.mark.parametrize(
    ("before", "raw", "match"),
    [
        ("login_sent", wire(b"S", b"x"), "Sequenced Data received in state 'login sent'"),
        ("login_sent", wire(b"U", b"x"), "UnsequencedData packet received in state 'login sent'"),
        ("login_sent", wire(b"Z"), "EndOfSession packet received"),
        ("logged_in", accepted(), "LoginAccepted packet received in state 'logged in'"),
        ("logged_in", wire(b"J", b"A"), "LoginRejected packet received"),
        ("logged_in", LoginRequestPacket("u", "p").encode(), "type b'L' at offset"),
        ("logged_in", wire(b"R"), "type b'R'"),
        ("logged_in", wire(b"O"), "type b'O'"),
        ("logged_in", wire(b"?"), "type b'\\?'"),
    ],
)
def test_out_of_order_packets_end_in_a_clear_error(before: str, raw: bytes, match: str) -> None:
    client = ClientSession("user", "secret")
    client.login(0.0)
    if before == "logged_in":
        client.receive_data(accepted(), 0.0)
    with pytest.raises(RemoteProtocolError, match=match):
        client.receive_data(raw, 0.1)
    assert client.state is ClientState.ERROR
    with pytest.raises(RemoteProtocolError):  # every later call fails at once
        client.receive_data(wire(b"H"), 0.2)
    with pytest.raises(RemoteProtocolError):
        client.send_unsequenced(b"x", 0.2)


def test_events_before_a_fault_are_not_lost() -> None:
    client = logged_in()
    events = client.receive_data(s(b"a") + s(b"b") + wire(b"?"), 0.1)
    assert sequenced(events) == [(1, b"a"), (2, b"b")]
    assert isinstance(client.error, RemoteProtocolError)
    assert client.state is ClientState.ERROR
    with pytest.raises(RemoteProtocolError, match="type b'\\?'"):
        client.receive_data(b"", 0.2)


def test_resume_after_connection_lost_asks_for_next_sequence() -> None:
    client = logged_in()
    client.receive_data(s(b"a") + s(b"b") + s(b"c")[:2], 0.1)  # half a packet in flight
    client.connection_lost()
    assert client.state is ClientState.DISCONNECTED
    request = decode_packet(client.login(1.0))
    assert request == LoginRequestPacket("user", "secret", "SESSION1", 3)
    client.receive_data(accepted(sequence=3), 1.0)
    assert sequenced(client.receive_data(s(b"c"), 1.1)) == [(3, b"c")]


def test_first_login_beyond_the_end_starts_where_the_server_says() -> None:
    client = ClientSession("user", "secret", sequence=1000)
    client.login(0.0)
    client.receive_data(accepted(sequence=11), 0.0)  # the server has only 10 messages
    assert client.next_sequence == 11
    assert sequenced(client.receive_data(s(b"k"), 0.1)) == [(11, b"k")]


def test_resume_lower_than_expected_skips_duplicates() -> None:
    client = logged_in()
    client.receive_data(s(b"a") + s(b"b") + s(b"c"), 0.1)
    client.connection_lost()
    client.login(1.0)
    client.receive_data(accepted(sequence=2), 1.0)  # server resends 2 and 3
    events = client.receive_data(s(b"b") + s(b"c") + s(b"d"), 1.1)
    assert sequenced(events) == [(4, b"d")]
    assert client.next_sequence == 5


def test_resume_skip_spans_several_chunks() -> None:
    client = logged_in()
    client.receive_data(b"".join(s(bytes([i])) for i in range(5)), 0.1)
    client.connection_lost()
    client.login(1.0)
    client.receive_data(accepted(sequence=1), 1.0)
    assert client.receive_data(s(b"\x00") + s(b"\x01"), 1.1) == []
    events = client.receive_data(b"".join(s(bytes([i])) for i in range(2, 7)), 1.2)
    assert sequenced(events) == [(6, b"\x05"), (7, b"\x06")]


def test_resume_higher_than_expected_is_a_gap() -> None:
    client = logged_in()
    client.receive_data(s(b"a"), 0.1)
    client.connection_lost()
    client.login(1.0)
    with pytest.raises(SequenceGap) as info:
        client.receive_data(accepted(sequence=5), 1.0)
    assert (info.value.expected, info.value.offered) == (2, 5)
    assert client.state is ClientState.ERROR


def test_resume_into_a_different_session_is_an_error() -> None:
    client = logged_in()
    client.connection_lost()
    client.login(1.0)
    with pytest.raises(SessionMismatch):
        client.receive_data(accepted(session="OTHER"), 1.0)


def test_cannot_login_after_end_of_session_or_twice() -> None:
    client = logged_in()
    with pytest.raises(LocalProtocolError):
        client.login(0.5)
    client.receive_data(wire(b"Z"), 1.0)
    client.connection_lost()
    assert client.state is ClientState.ENDED
    with pytest.raises(LocalProtocolError):
        client.login(2.0)


def test_login_accepted_with_sequence_zero_is_refused() -> None:
    client = ClientSession("user", "secret")
    client.login(0.0)
    with pytest.raises(RemoteProtocolError, match="sequence number 0"):
        client.receive_data(accepted(sequence=0), 0.0)


def test_omega_dialect_no_more_messages() -> None:
    client = ClientSession("user", "secret", dialect=Dialect.OMEGA)
    assert len(client.login(0.0)) == 49  # no heartbeat timeout field
    client.receive_data(accepted(), 0.0)
    events = client.receive_data(s(b"a") + s(b"") + s(b"b"), 0.1)
    assert events == [
        SequencedMessages(1, [b"a"]),
        NoMoreMessages(2),
        SequencedMessages(2, [b"b"]),
    ]
    with pytest.raises(RemoteProtocolError, match="b'Z'"):
        client.receive_data(wire(b"Z"), 0.2)


def test_omega_dialect_refuses_410_login() -> None:
    with pytest.raises(LocalProtocolError):
        ClientSession("user", "secret", dialect=Dialect.OMEGA, client_heartbeat_timeout_ms=100)


def test_standard_dialect_empty_sequenced_message_is_a_message() -> None:
    client = logged_in()
    assert sequenced(client.receive_data(s(b""), 0.1)) == [(1, b"")]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"username": "toolong"},
        {"password": "x" * 11},
        {"session_id": "bad id"},
        {"sequence": -1},
        {"heartbeat_interval": 0},
        {"client_heartbeat_timeout_ms": 100000},
    ],
)
def test_bad_options_fail_at_construction(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"username": "user", "password": "secret", **kwargs}
    with pytest.raises(LocalProtocolError):
        ClientSession(**args)  # type: ignore[arg-type]


def test_debug_can_be_sent() -> None:
    client = logged_in()
    assert client.send_debug("hi", 0.5) == wire(b"+", b"hi")
    assert client.next_timer() == 1.5


def test_a_server_heartbeat_before_the_login_answer_is_a_sign_of_life_not_the_answer() -> None:
    # Some servers send heartbeats from accept, before they answer the Login Request.
    client = ClientSession("user", "secret", login_timeout=5.0)
    client.login(0.0)
    assert client.receive_data(wire(b"H"), 1.0) == [ServerHeartbeatPacket()]
    assert client.state is ClientState.LOGIN_SENT
    assert client.next_timer() == 5.0  # the login deadline still stands
    events = client.receive_data(accepted(), 2.0)
    assert client.state is ClientState.LOGGED_IN
    assert any(isinstance(e, LoginAcceptedPacket) for e in events)


def test_a_client_that_paused_reading_is_not_timed_out_for_the_servers_silence() -> None:
    client = ClientSession("user", "secret", heartbeat_interval=1.0, heartbeat_timeout=3.0)
    client.login(0.0)
    client.receive_data(accepted(), 0.0)
    client.reading_paused(0.5)
    for now in (1.0, 2.0, 3.0, 10.0, 30.0):  # heartbeats still go out, no timeout
        assert client.next_timer() is not None
        assert client.handle_timer(now) in (b"", ClientHeartbeatPacket().encode())
    assert client.state is ClientState.LOGGED_IN
    client.reading_resumed(30.0)
    assert client.next_timer() == 31.0
    client.handle_timer(31.0)
    with pytest.raises(HeartbeatTimeout):
        client.handle_timer(33.0)
