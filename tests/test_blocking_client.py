"""BlockingClient against the scripted asyncio server, which runs in a loop in its own thread.

Every wait is a condition with a deadline; nothing asserts on how long a sleep took.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import trustme

from soupbintcp import (
    BlockingClient,
    ClientState,
    CloseReason,
    ConnectionLost,
    HeartbeatTimeout,
    LocalProtocolError,
    LoginRejected,
    LoginTimeout,
    Message,
    ReconnectPolicy,
    RejectReason,
    RemoteProtocolError,
    SequenceGap,
    SessionEnded,
    SessionTimeout,
    connect,
)
from soupbintcp.lowlevel import (
    ClientHeartbeatPacket,
    DebugPacket,
    Event,
    LoginAcceptedPacket,
    SequencedMessages,
    ServerConnectionState,
)

from .helpers import wire
from .scripted_server import ScriptedServer, _Conn
from .test_receive_frames import frames_messages

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = [pytest.mark.fast_path, pytest.mark.timeout(30)]

T = TypeVar("T")
WAIT = 10.0  # seconds any single condition may take before the test fails
FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05)


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.002)


# --- the server, in an event loop thread ----------------------------------------------------


class _CountingSession(ServerConnectionState):
    """A ServerSession that counts the Client Heartbeats it receives."""

    def __init__(self, now: float, server: TestServer, **kwargs: Any) -> None:
        super().__init__(now, **kwargs)
        self._test_server = server

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        events = super().receive_data(data, now)
        self._test_server.client_heartbeats += sum(
            isinstance(e, ClientHeartbeatPacket) for e in events
        )
        return events


class _CountingConn(_Conn):
    def __init__(self, server: TestServer) -> None:
        super().__init__(server)
        self.session = _CountingSession(
            self.loop.time(),
            server,
            heartbeat_interval=server.heartbeat_interval,
            client_heartbeat_timeout=server.client_heartbeat_timeout,
        )


class TestServer(ScriptedServer):
    """ScriptedServer plus a count of the Client Heartbeats it received."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__()
        self.client_heartbeats = 0

    async def start(self, ssl: ssl.SSLContext | None = None) -> tuple[str, int]:
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _CountingConn(self), "127.0.0.1", 0, ssl=ssl
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port


class LoopThread:
    """An asyncio loop running in a daemon thread, with thread-safe calls into it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    def call(self, fn: Callable[[], T]) -> T:
        async def in_loop() -> T:
            return fn()

        return self.run(in_loop())

    def close(self) -> None:
        async def settle() -> None:
            for _ in range(3):
                await asyncio.sleep(0)

        with contextlib.suppress(Exception):
            self.run(settle())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT)
        self.loop.close()


class Harness:
    """The test's handle on the server: every call runs in the server's loop."""

    def __init__(self, loop: LoopThread, server: TestServer, address: tuple[str, int]) -> None:
        self.loop = loop
        self.server = server
        self.address = address
        self.clients: list[BlockingClient] = []

    def call(self, fn: Callable[[], T]) -> T:
        return self.loop.call(fn)

    def publish(self, *messages: bytes) -> None:
        self.call(lambda: self.server.publish(*messages))

    def drop_all(self) -> None:
        self.call(self.server.drop_all)

    def end_session(self) -> None:
        self.call(self.server.end_session)

    def send_unsequenced(self, data: bytes) -> None:
        self.call(
            lambda: self.server.each(lambda c: c.write(c.session.send_unsequenced(data, c.now)))
        )

    def connect(self, **kwargs: Any) -> BlockingClient:
        kwargs.setdefault("login_timeout", 5.0)
        kwargs.setdefault("connect_timeout", 5.0)
        client = connect(self.address, "user", "secret", **kwargs)
        self.clients.append(client)
        return client


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


def _harness(
    loop: LoopThread, server: TestServer, tls: ssl.SSLContext | None = None
) -> Iterator[Harness]:
    address = loop.run(server.start(tls))
    harness = Harness(loop, server, address)
    try:
        yield harness
    finally:
        for client in harness.clients:
            client.close()
        loop.run(server.close())


@pytest.fixture
def srv(loop_thread: LoopThread) -> Iterator[Harness]:
    yield from _harness(loop_thread, TestServer())


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


@pytest.fixture
def tls_srv(
    loop_thread: LoopThread, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> Iterator[Harness]:
    yield from _harness(loop_thread, TestServer(), tls_contexts[0])


def payloads(first: int, last: int, size: int = 0) -> list[bytes]:
    return [str(i).encode().ljust(size, b".") for i in range(first, last + 1)]


def wait_reconnects(client: BlockingClient, n: int) -> None:
    wait_until(lambda: client.reconnects >= n, what=f"{n} reconnects")


def publish_and_drop(srv: Harness, messages: list[bytes]) -> None:
    """Publish, then cut every connection at once: some of it is still in flight."""

    def publish_then_drop() -> None:
        srv.server.publish(*messages)
        srv.server.drop_all()

    srv.call(publish_then_drop)


def receive_n(client: BlockingClient, n: int) -> list[Message]:
    return [client.receive_msg(timeout=WAIT) for _ in range(n)]


# --- login ----------------------------------------------------------------------------------


def test_login_accepted(srv: Harness) -> None:
    srv.publish(b"a")
    with srv.connect(sequence=1) as client:
        assert client.session_id == "SESSION1"
        assert client.state is ClientState.LOGGED_IN
        assert client.receive_msg(timeout=WAIT) == Message((1, b"a"))
        assert client.next_sequence == 2
        assert client.close_reason is None
        login = srv.call(lambda: srv.server.logins[0])
        assert (login.username, login.password, login.session, login.sequence) == (
            "user",
            "secret",
            "",
            1,
        )
        assert client.reconnects == 0


@pytest.mark.parametrize("reason", list(RejectReason))
def test_login_rejected(srv: Harness, reason: RejectReason) -> None:
    srv.server.reject = reason
    with pytest.raises(LoginRejected) as info:
        srv.connect()
    assert info.value.reason is reason


def test_unknown_reject_code_is_a_remote_protocol_error(srv: Harness) -> None:
    srv.server.login_reply = b"\x00\x02JX"
    started = time.monotonic()
    with pytest.raises(RemoteProtocolError):
        srv.connect(login_timeout=30.0)
    assert time.monotonic() - started < WAIT  # at once, not after the login timeout


def test_silent_login_times_out(srv: Harness) -> None:
    srv.server.silent_login = True
    with pytest.raises(LoginTimeout):
        srv.connect(login_timeout=0.2)


def test_connection_refused_is_the_os_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        connect(("127.0.0.1", port), "user", "secret", connect_timeout=5.0)


def test_login_410_heartbeat_timeout_field_and_session_resume(srv: Harness) -> None:
    srv.publish(*payloads(1, 5))
    with srv.connect(session_id="SESSION1", sequence=4, client_heartbeat_timeout_ms=2500) as c:
        assert [m.sequence for m in receive_n(c, 2)] == [4, 5]
        login = srv.call(lambda: srv.server.logins[-1])
        assert login.heartbeat_timeout_ms == 2500
        assert login.sequence == 4


# --- receiving ------------------------------------------------------------------------------


def test_sequence_numbers_with_interleaved_unsequenced(srv: Harness) -> None:
    with srv.connect() as client:

        def script() -> None:
            srv.server.publish(b"s1", b"s2")
            srv.server.each(lambda c: c.write(c.session.send_unsequenced(b"u1", c.now)))
            srv.server.publish(b"s3")
            srv.server.each(lambda c: c.write(c.session.send_unsequenced(b"u2", c.now)))

        srv.call(script)
        got = receive_n(client, 5)
        assert got == [
            Message((1, b"s1")),
            Message((2, b"s2")),
            Message((None, b"u1")),
            Message((3, b"s3")),
            Message((None, b"u2")),
        ]
        assert [m.sequence for m in got] == [1, 2, None, 3, None]
        assert client.next_sequence == 4


def test_receive_batch_keeps_stream_order(srv: Harness) -> None:
    with srv.connect() as client:

        def script() -> None:
            srv.server.publish(b"s1", b"s2")
            srv.server.each(lambda c: c.write(c.session.send_unsequenced(b"u1", c.now)))
            srv.server.publish(b"s3")

        srv.call(script)
        first = client.receive_msg(timeout=WAIT)  # a run is split by receive_msg
        assert first == Message((1, b"s1"))
        wait_until(lambda: client.queued == 3)
        items = client.receive_batch(timeout=WAIT)
        flat: list[tuple[int | None, bytes]] = []
        for item in items:
            if isinstance(item, SequencedMessages):
                flat.extend(item.to_messages())
            else:
                flat.append((None, item.data))
        assert flat == [(2, b"s2"), (None, b"u1"), (3, b"s3")]
        with pytest.raises(TimeoutError):
            client.receive_batch(timeout=0.01)


def test_receive_timeout_is_the_builtin_timeout_error(srv: Harness) -> None:
    with srv.connect() as client:
        with pytest.raises(TimeoutError) as info:
            client.receive_msg(timeout=0.05)
        assert not isinstance(info.value, SessionTimeout)
        assert not client.is_closed
        srv.publish(b"late")
        assert client.receive_msg(timeout=WAIT) == Message((1, b"late"))


def test_end_of_session_delivers_everything_then_ends(srv: Harness) -> None:
    srv.publish(*payloads(1, 100))
    client = srv.connect()
    srv.publish(*payloads(101, 150))
    srv.end_session()
    got = list(client)  # iteration stops at End of Session
    assert [m.sequence for m in got] == list(range(1, 151))
    assert [m.data for m in got] == payloads(1, 150)
    with pytest.raises(SessionEnded):
        client.receive_msg(timeout=WAIT)
    assert client.close_reason is CloseReason.END_OF_SESSION
    assert client.state is ClientState.ENDED
    assert list(client) == []
    client.close()
    assert client.close_reason is CloseReason.END_OF_SESSION


def test_debug_packets_go_to_on_status_and_the_log(
    srv: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Event] = []
    lock = threading.Lock()

    def on_status(event: Event) -> None:
        with lock:
            seen.append(event)

    caplog.set_level(logging.DEBUG, logger="soupbintcp.client")
    with srv.connect(on_status=on_status) as client:
        srv.call(lambda: srv.server.send_raw(DebugPacket("hello there").encode()))
        srv.publish(b"data")
        assert client.receive_msg(timeout=WAIT) == Message((1, b"data"))
        wait_until(lambda: any(isinstance(e, DebugPacket) for e in list(seen)))
        with lock:
            assert isinstance(seen[0], LoginAcceptedPacket)
            assert DebugPacket("hello there") in seen
        assert "hello there" in caplog.text
        with pytest.raises(TimeoutError):
            client.receive_msg(timeout=0.01)  # the debug text was not delivered as data


# --- sending --------------------------------------------------------------------------------


def test_send_unseq_data_reaches_the_server(srv: Harness) -> None:
    srv.server.echo_unsequenced = True
    with srv.connect() as client:
        for i in range(100):
            client.send_unseq_data(b"order %d" % i)
        wait_until(lambda: srv.call(lambda: len(srv.server.unsequenced)) == 100)
        assert srv.call(lambda: list(srv.server.unsequenced)) == [
            b"order %d" % i for i in range(100)
        ]
        got = receive_n(client, 100)
        assert got == [Message((None, b"echo:order %d" % i)) for i in range(100)]


def test_send_after_close_raises(srv: Harness) -> None:
    client = srv.connect()
    client.close()
    with pytest.raises(SessionEnded):
        client.send_unseq_data(b"x")


def test_logout(srv: Harness) -> None:
    srv.publish(b"a")
    client = srv.connect()
    wait_until(lambda: client.queued == 1)
    client.logout(timeout=WAIT)
    assert client.close_reason is CloseReason.LOGOUT
    assert srv.call(lambda: srv.server.logouts) == 1
    assert client.receive_msg(timeout=WAIT) == Message((1, b"a"))
    with pytest.raises(SessionEnded):
        client.receive_msg(timeout=WAIT)
    client.logout()  # idempotent
    client.close()
    assert client.close_reason is CloseReason.LOGOUT


# --- heartbeats -----------------------------------------------------------------------------


def test_heartbeats_flow_while_the_caller_is_idle(srv: Harness) -> None:
    srv.server.client_heartbeat_timeout = 0.3  # the server drops a client silent for 0.3 s
    srv.server.heartbeat_interval = 0.05
    with srv.connect(heartbeat_interval=0.05, heartbeat_timeout=0.3) as client:
        # The caller receives nothing for many heartbeat timeouts on either side.
        wait_until(lambda: srv.call(lambda: srv.server.client_heartbeats) >= 20)
        assert srv.call(lambda: srv.server.connection_count) == 1
        assert srv.call(lambda: len(srv.server.connections)) == 1
        assert client.state is ClientState.LOGGED_IN
        assert not client.is_closed
        srv.publish(b"still here")
        assert client.receive_msg(timeout=WAIT) == Message((1, b"still here"))


def test_silent_server_is_a_heartbeat_timeout(srv: Harness) -> None:
    srv.server.silent = True
    client = srv.connect(heartbeat_interval=0.05, heartbeat_timeout=0.3)
    with pytest.raises(HeartbeatTimeout):
        client.receive_msg(timeout=WAIT)
    assert client.close_reason is CloseReason.HEARTBEAT_TIMEOUT
    client.close()
    assert client.close_reason is CloseReason.HEARTBEAT_TIMEOUT


def test_silent_server_reconnects_and_resumes(srv: Harness) -> None:
    srv.server.silent = True
    srv.server.heartbeat_interval = 0.05
    srv.publish(*payloads(1, 3))
    with srv.connect(heartbeat_interval=0.05, heartbeat_timeout=0.3, reconnect=FAST) as client:
        assert [m.sequence for m in receive_n(client, 3)] == [1, 2, 3]
        wait_until(lambda: client.reconnects >= 1)  # the link went dead, the client came back
        # Healthy from now on. Whether the connection in hand recovers (the flag is read at
        # each timer) or times out once more depends on the timing; either way the client
        # must resume after 3, so the test does not count reconnects it cannot predict.
        srv.server.silent = False
        srv.publish(*payloads(4, 10))
        assert [m.sequence for m in receive_n(client, 7)] == list(range(4, 11))
        assert srv.call(lambda: srv.server.logins[-1].sequence) >= 4
        assert not client.is_closed


# --- reconnect ------------------------------------------------------------------------------


def test_reconnect_delivers_exactly_once_in_order(srv: Harness) -> None:
    total, drops = 5_000, 5
    per_round = total // drops
    with srv.connect(reconnect=FAST, sequence=1) as client:
        got: list[Message] = []
        for r in range(drops):
            first = r * per_round + 1
            publish_and_drop(srv, payloads(first, first + per_round - 1, size=20))
            got.extend(receive_n(client, per_round // 2))  # read while reconnecting
            wait_reconnects(client, r + 1)
        got.extend(receive_n(client, total - len(got)))
        assert [m.sequence for m in got] == list(range(1, total + 1))
        assert [m.data for m in got] == payloads(1, total, size=20)
        assert client.reconnects == drops
        assert client.next_sequence == total + 1
        with pytest.raises(TimeoutError):
            client.receive_msg(timeout=0.05)  # no duplicates after the end
        logins = srv.call(lambda: [login.sequence for login in srv.server.logins])
        assert logins[0] == 1
        assert len(logins) == drops + 1
        assert logins == sorted(logins)


def test_resend_overlap_is_deduplicated(srv: Harness) -> None:
    srv.server.resend_overlap = 3
    srv.publish(*payloads(1, 10))
    with srv.connect(reconnect=FAST) as client:
        assert [m.sequence for m in receive_n(client, 10)] == list(range(1, 11))
        srv.drop_all()
        wait_until(lambda: client.reconnects == 1)
        srv.publish(*payloads(11, 20))
        got = receive_n(client, 10)
        assert [m.sequence for m in got] == list(range(11, 21))
        assert [m.data for m in got] == payloads(11, 20)
        assert srv.call(lambda: srv.server.logins[-1].sequence) == 11
        with pytest.raises(TimeoutError):
            client.receive_msg(timeout=0.05)


def test_relogin_rejected_ends_the_session(srv: Harness) -> None:
    srv.publish(b"a")
    client = srv.connect(reconnect=FAST)
    wait_until(lambda: client.queued == 1)
    srv.server.reject = RejectReason.NOT_AUTHORIZED
    srv.drop_all()
    assert client.receive_msg(timeout=WAIT) == Message((1, b"a"))  # kept
    with pytest.raises(LoginRejected) as info:
        client.receive_msg(timeout=WAIT)
    assert info.value.reason is RejectReason.NOT_AUTHORIZED
    assert client.close_reason is CloseReason.REJECTED
    client.close()


def test_gap_on_relogin_is_a_sequence_gap(srv: Harness) -> None:
    srv.publish(*payloads(1, 5))
    client = srv.connect(reconnect=FAST)
    assert [m.sequence for m in receive_n(client, 5)] == [1, 2, 3, 4, 5]
    srv.publish(*payloads(6, 10))
    wait_until(lambda: client.queued == 5)
    srv.server.resend_overlap = -2  # the server resumes two messages past the one asked for
    srv.drop_all()
    assert [m.sequence for m in receive_n(client, 5)] == [6, 7, 8, 9, 10]
    with pytest.raises(SequenceGap) as info:
        client.receive_msg(timeout=WAIT)
    assert (info.value.expected, info.value.offered) == (11, 13)
    assert client.close_reason is CloseReason.SEQUENCE_GAP
    client.close()


def test_lost_connection_without_reconnect_is_connection_lost(srv: Harness) -> None:
    srv.publish(b"a")
    client = srv.connect()
    wait_until(lambda: client.queued == 1)
    srv.drop_all()
    assert client.receive_msg(timeout=WAIT) == Message((1, b"a"))
    with pytest.raises(ConnectionLost):
        client.receive_msg(timeout=WAIT)
    assert client.close_reason is CloseReason.CONNECTION_LOST
    client.close()


def test_reconnect_gives_up_after_max_attempts(srv: Harness) -> None:
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, max_attempts=3)
    client = srv.connect(reconnect=policy)
    srv.loop.run(srv.server.close())  # stop listening, drop the connection
    with pytest.raises(ConnectionLost, match="gave up after 3"):
        client.receive_msg(timeout=WAIT)
    assert client.close_reason is CloseReason.CONNECTION_LOST
    client.close()


def test_close_during_reconnect_backoff_is_prompt(srv: Harness) -> None:
    client = srv.connect(reconnect=ReconnectPolicy(initial_delay=60.0, max_delay=60.0))
    srv.drop_all()
    wait_until(lambda: client.state is ClientState.DISCONNECTED)
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 3.0  # the 60 s backoff was interrupted
    assert client.close_reason is CloseReason.CLOSED
    with pytest.raises(SessionEnded):
        client.receive_msg(timeout=0)


# --- back-pressure and close ----------------------------------------------------------------


def test_back_pressure_with_a_small_queue_delivers_everything(srv: Harness) -> None:
    total = 20_000
    srv.server.heartbeat_interval = 0.05
    srv.server.client_heartbeat_timeout = 0.5
    client = srv.connect(max_queue=8, heartbeat_interval=0.05, heartbeat_timeout=0.3)
    srv.publish(*payloads(1, total, size=500))  # ~10 MB: more than the socket buffers hold
    wait_until(lambda: client._inbox._paused, what="reading paused")
    # Paused for many times the heartbeat timeout: our own pause is not a dead link, and
    # our heartbeats keep the server from dropping us.
    seen = srv.call(lambda: srv.server.client_heartbeats)
    wait_until(lambda: srv.call(lambda: srv.server.client_heartbeats) >= seen + 15)
    assert client._inbox._paused
    assert not client.is_closed
    assert srv.call(lambda: srv.server.connection_count) == 1
    got = receive_n(client, total)
    assert [m.sequence for m in got] == list(range(1, total + 1))
    assert got[-1].data == payloads(total, total, size=500)[0]
    assert client.reconnects == 0
    client.close()


def test_close_keeps_queued_messages_readable(srv: Harness) -> None:
    srv.publish(*payloads(1, 50))
    client = srv.connect()
    wait_until(lambda: client.queued == 50)
    client.close()
    client.close()  # idempotent
    assert client.close_reason is CloseReason.CLOSED
    wait_until(lambda: srv.call(lambda: srv.server.logouts) == 1, what="the Logout Request")
    got = list(client)
    assert [m.sequence for m in got] == list(range(1, 51))
    with pytest.raises(SessionEnded):
        client.receive_msg(timeout=WAIT)
    with pytest.raises(SessionEnded):
        client.receive_batch(timeout=WAIT)


def test_close_wakes_a_blocked_receiver(srv: Harness) -> None:
    client = srv.connect()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            client.receive_msg()  # no timeout
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    wait_until(lambda: srv.call(lambda: len(srv.server.logins)) == 1)
    client.close()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], SessionEnded)


def test_send_before_logged_in_state_is_a_local_error(srv: Harness) -> None:
    client = srv.connect(reconnect=ReconnectPolicy(initial_delay=60.0, max_delay=60.0))
    srv.drop_all()
    wait_until(lambda: client.state is ClientState.DISCONNECTED)
    with pytest.raises(LocalProtocolError):
        client.send_unseq_data(b"x")
    client.close()


# --- TLS ------------------------------------------------------------------------------------


def test_tls_stream_back_pressure_send_and_reconnect(
    tls_srv: Harness, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    total = 6_000
    tls_srv.server.echo_unsequenced = True
    client = tls_srv.connect(
        ssl=tls_contexts[1], server_hostname="localhost", reconnect=FAST, max_queue=16
    )
    assert client.session_id == "SESSION1"
    half = total // 2
    tls_srv.publish(*payloads(1, half, size=300))
    client.send_unseq_data(b"ping")
    got = receive_n(client, half + 1)  # the echo is not resent: read it before the drops
    tls_srv.drop_all()
    wait_reconnects(client, 1)
    messages = payloads(half + 1, total, size=300)

    def publish_and_drop() -> None:
        tls_srv.server.publish(*messages)
        tls_srv.server.drop_all()  # some of it is still in flight

    tls_srv.call(publish_and_drop)
    got += receive_n(client, total - half)
    wait_reconnects(client, 2)
    with pytest.raises(TimeoutError):
        client.receive_msg(timeout=0.05)  # no duplicates after the resume
    sequenced = [m for m in got if m.sequence is not None]
    assert [m.sequence for m in sequenced] == list(range(1, total + 1))
    assert [m.data for m in sequenced] == payloads(1, total, size=300)
    assert Message((None, b"echo:ping")) in got
    assert tls_srv.call(lambda: tls_srv.server.unsequenced) == [b"ping"]
    client.close()


def test_tls_wrong_hostname_fails_the_handshake(
    tls_srv: Harness, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_srv.connect(ssl=tls_contexts[1], server_hostname="not-localhost")


# --- more of the API ------------------------------------------------------------------------


def test_next_and_batches_iterate_until_end_of_session(srv: Harness) -> None:
    srv.publish(*payloads(1, 10))
    client = srv.connect()
    assert next(client) == Message((1, b"1"))
    srv.end_session()
    sequences: list[int] = []
    for batch in client.batches():
        for item in batch:
            assert isinstance(item, SequencedMessages)
            sequences.extend(range(item.first_sequence, item.next_sequence))
    assert sequences == list(range(2, 11))
    with pytest.raises(StopIteration):
        next(client)
    client.close()


def test_concurrent_readers_share_the_stream_exactly_once(srv: Harness) -> None:
    total = 20_000
    client = srv.connect(max_queue=64)
    got: list[list[int]] = [[], []]

    def reader(out: list[int]) -> None:
        for msg in client:
            assert msg.sequence is not None
            out.append(msg.sequence)

    threads = [threading.Thread(target=reader, args=(out,)) for out in got]
    for thread in threads:
        thread.start()
    srv.publish(*payloads(1, total))
    srv.end_session()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert sorted(got[0] + got[1]) == list(range(1, total + 1))
    assert got[0] == sorted(got[0])
    assert got[1] == sorted(got[1])
    client.close()


def test_close_from_on_status_does_not_deadlock(srv: Harness) -> None:
    holder: list[BlockingClient] = []

    def on_status(event: Event) -> None:
        if isinstance(event, DebugPacket) and holder:
            holder[0].close()  # in the I/O thread

    client = srv.connect(on_status=on_status)
    holder.append(client)
    srv.publish(b"a")
    wait_until(lambda: client.queued == 1)
    srv.call(lambda: srv.server.send_raw(DebugPacket("bye").encode()))
    assert client.wait_closed(WAIT)
    assert client.close_reason is CloseReason.CLOSED
    assert client.receive_msg(timeout=WAIT) == Message((1, b"a"))
    with pytest.raises(SessionEnded):
        client.receive_msg(timeout=WAIT)
    client.close()


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs")
def test_connect_timeout_is_connection_lost() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        # Fill the accept queue: Linux then drops further SYNs and connect() hangs.
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(address)
            with pytest.raises(ConnectionLost, match="in time"):
                connect(address, "user", "secret", connect_timeout=0.3)
        finally:
            for filler in fillers:
                filler.close()


def test_a_second_reader_does_not_replace_a_run_in_use(srv: Harness) -> None:
    """Two readers wait; one chunk brings two runs (split by a heartbeat). The reader that
    wakes second must continue the first run, not start the second over it."""
    client = srv.connect()
    barrier = threading.Barrier(2, timeout=WAIT)
    got: list[list[int | None]] = [[], []]

    def reader(out: list[int | None]) -> None:
        out.append(client.receive_msg(timeout=WAIT).sequence)
        barrier.wait()  # both have one message before either reads on
        out.extend(m.sequence for m in client)

    threads = [threading.Thread(target=reader, args=(out,)) for out in got]
    for thread in threads:
        thread.start()
    waiters = vars(client._cond)["_waiters"]
    # One reads the socket itself, the other waits for it (or both wait for the I/O thread).
    wait_until(lambda: len(waiters) + client._app_reading == 2, what="both readers waiting")
    chunk = [wire(b"S", b"%d" % i) for i in (1, 2, 3)] + [wire(b"H")]
    chunk += [wire(b"S", b"%d" % i) for i in (4, 5, 6)] + [wire(b"Z")]
    srv.call(lambda: srv.server.send_raw(b"".join(chunk)))
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert sorted(s for out in got for s in out if s is not None) == [1, 2, 3, 4, 5, 6]
    client.close()


# --- the zero-copy view (tests/test_receive_frames.py has the rest) --------------------------


def test_blocking_frames_across_reconnects(srv: Harness) -> None:
    total, drops = 3_000, 3
    per_round = total // drops
    with srv.connect(reconnect=FAST, sequence=1) as client:
        got: list[tuple[int | None, bytes]] = []
        for r in range(drops):
            first = r * per_round + 1
            publish_and_drop(srv, payloads(first, first + per_round - 1, size=20))
            got += frames_messages(client.receive_frames(timeout=WAIT))
            wait_reconnects(client, r + 1)
        while len(got) < total:
            got += frames_messages(client.receive_frames(timeout=WAIT))
        assert got == [(i, m) for i, m in enumerate(payloads(1, total, size=20), 1)]
        assert client.reconnects == drops


def test_blocking_frames_time_out_like_a_batch(srv: Harness) -> None:
    with srv.connect() as client, pytest.raises(TimeoutError):
        client.receive_frames(timeout=0.05)
