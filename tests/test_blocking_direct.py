"""The blocking client's round trip without a thread hand-off: the thread that sends writes
the socket, the thread waiting in `receive_msg` reads it, and the I/O thread steps aside,
yet heartbeats, reconnects with exactly-once resume and the end of the session still work
while a caller waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from soupbintcp import BlockingClient, LocalProtocolError, Message, connect, serve
from soupbintcp._client import _blocking_io, _blocking_read
from soupbintcp.lowlevel import SequencedMessages
from soupbintcp.store import MemoryStore

from .test_blocking_client import (
    FAST,
    WAIT,
    Harness,
    LoopThread,
    loop_thread,  # noqa: F401  (a fixture)
    payloads,
    srv,  # noqa: F401  (a fixture)
    wait_until,
)

ROUND_TRIPS = 300


@pytest.fixture
def echo(loop_thread: LoopThread) -> Iterator[tuple[str, int]]:  # noqa: F811
    """Our server, answering each Unsequenced Data request with it as Sequenced Data."""

    def on_unsequenced(connection: Any, data: bytes) -> None:
        connection.publish(data)

    async def start() -> Any:
        return await serve(
            ("127.0.0.1", 0),
            user_store=lambda user: MemoryStore(),
            session_id="ECHO",
            authenticate=lambda *_: True,
            on_unsequenced=on_unsequenced,
        )

    server = loop_thread.run(start())
    yield server.address
    loop_thread.run(server.close())


def _count_io_wakeups(client: BlockingClient) -> list[int]:
    """How often the I/O thread's selector returns (one element, counted up)."""
    count = [0]
    selector = client._selector
    select = selector.select

    def counting(timeout: float | None = None) -> Any:
        ready = select(timeout)
        count[0] += 1
        return ready

    selector.select = counting  # type: ignore[method-assign]
    return count


def _round_trips(client: BlockingClient, n: int) -> None:
    for i in range(n):
        request = b"%08d" % i
        client.send_unseq_data(request)
        assert client.receive_msg(timeout=WAIT).data == request


def test_a_round_trip_wakes_no_other_thread(echo: tuple[str, int]) -> None:
    with connect(echo, "u1", "-") as client:
        _round_trips(client, 20)  # the I/O thread has stepped aside
        wakeups = _count_io_wakeups(client)
        _round_trips(client, ROUND_TRIPS)
        # Through the I/O thread it would be 2 per round trip (the request, the answer); a
        # look every 10 ms whether the application still reads is all that is left.
        assert wakeups[0] < ROUND_TRIPS // 10, wakeups


def test_without_a_shared_selector_the_io_thread_does_the_io(
    echo: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_blocking_io, "_SHARED_SELECTOR", False)
    with connect(echo, "u2", "-") as client:
        wakeups = _count_io_wakeups(client)
        _round_trips(client, 50)
        assert client._sock is None
        assert wakeups[0] >= 50


def test_busy_poll_round_trips_and_is_checked(echo: tuple[str, int]) -> None:
    with connect(echo, "u3", "-", busy_poll=0.0005) as client:
        _round_trips(client, 50)
    with pytest.raises(LocalProtocolError):
        connect(echo, "u3", "-", busy_poll=-1.0)


def test_a_waiting_caller_sleeps_in_recv_and_keeps_each_timeout(echo: tuple[str, int]) -> None:
    """The logged-in socket is in blocking mode (the caller sleeps in `recv()`, no `poll()`
    first); a receive timeout left on it from a longer wait must not stretch a shorter one,
    and a wait for ever must not wake for nothing."""
    with connect(echo, "u5", "-") as client:
        _round_trips(client, 5)
        sock = client._sock
        assert sock is not None
        assert sock.gettimeout() is None  # blocking mode
        for timeout, most in ((1.0, 3.0), (0.05, 0.6), (0.05, 0.6), (0.3, 2.0)):
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                client.receive_msg(timeout=timeout)
            assert timeout <= time.monotonic() - start < most, timeout
        got: list[Message] = []
        thread = threading.Thread(target=lambda: got.append(client.receive_msg()))
        thread.start()
        wait_until(lambda: client._app_reading, what="the caller reads the socket")
        time.sleep(0.4)  # past every timeout set before: the caller must still wait
        assert thread.is_alive()
        assert client._rcvtimeo == 0.0  # no timeout left on the socket
        client.send_unseq_data(b"for ever")
        thread.join(WAIT)
        assert [m.data for m in got] == [b"for ever"]
        _round_trips(client, 5)


def test_heartbeats_flow_both_ways_while_a_caller_waits_in_receive(srv: Harness) -> None:  # noqa: F811
    srv.server.client_heartbeat_timeout = 0.3  # the server drops a client silent for 0.3 s
    srv.server.heartbeat_interval = 0.05
    with srv.connect(heartbeat_interval=0.05, heartbeat_timeout=0.3) as client:
        start = srv.call(lambda: srv.server.client_heartbeats)
        # The caller reads the socket itself for a whole second: the server's heartbeats
        # must reach the session (else a heartbeat timeout), ours must go out.
        with pytest.raises(TimeoutError):
            client.receive_msg(timeout=1.0)
        assert srv.call(lambda: srv.server.client_heartbeats) - start >= 10
        assert not client.is_closed
        assert srv.call(lambda: srv.server.connection_count) == 1
        srv.publish(b"still here")
        assert client.receive_msg(timeout=WAIT) == Message((1, b"still here"))


def test_a_reconnect_under_a_waiting_caller_resumes_exactly_once(srv: Harness) -> None:  # noqa: F811
    srv.publish(*payloads(1, 3))
    with srv.connect(reconnect=FAST) as client:
        assert [client.receive_msg(timeout=WAIT).sequence for _ in range(3)] == [1, 2, 3]
        got: list[int | None] = []

        def reader() -> None:
            got.extend(client.receive_msg(timeout=WAIT).sequence for _ in range(3))

        thread = threading.Thread(target=reader)
        thread.start()
        wait_until(lambda: client._app_reading, what="the caller reads the socket")
        srv.drop_all()  # under the reading caller
        wait_until(lambda: client.reconnects >= 1, what="a reconnect")
        srv.publish(*payloads(4, 6))
        thread.join(WAIT)
        assert got == [4, 5, 6]
        assert srv.call(lambda: srv.server.logins[-1].sequence) == 4


def test_the_end_of_the_session_reaches_a_waiting_caller(srv: Harness) -> None:  # noqa: F811
    client = srv.connect()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            client.receive_msg(timeout=WAIT)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    wait_until(lambda: client._app_reading, what="the caller reads the socket")
    client.close()  # from another thread, while the caller waits on the socket
    thread.join(WAIT)
    assert not thread.is_alive()
    assert [type(e).__name__ for e in errors] == ["SessionEnded"]


def test_a_heartbeat_timeout_wakes_a_caller_waiting_for_ever(srv: Harness) -> None:  # noqa: F811
    """The server goes silent without closing: the I/O thread ends the connection and must
    get the caller out of its wait on the socket (no timeout to save it)."""
    srv.server.silent = True
    client = srv.connect(heartbeat_interval=0.05, heartbeat_timeout=0.3)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            client.receive_msg()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert [type(e).__name__ for e in errors] == ["HeartbeatTimeout"]
    client.close()


def test_streams_and_round_trips_mixed_arrive_once_in_order(echo: tuple[str, int]) -> None:
    """Bursts (read by the I/O thread while the application works) and single answers
    (read by the waiting caller) alternate: every message once, in order."""
    with connect(echo, "u4", "-") as client:
        sequences: list[int | None] = []
        for burst in range(3):
            for i in range(2000):
                client.send_unseq_data(b"%04d%06d" % (burst, i) + bytes(100))
            while len(sequences) < (burst + 1) * 2000 + burst * 50:
                for item in client.receive_batch(timeout=WAIT):
                    assert isinstance(item, SequencedMessages)
                    sequences.extend(range(item.first_sequence, item.next_sequence))
            for i in range(50):
                client.send_unseq_data(b"ping%06d" % i)
                sequences.append(client.receive_msg(timeout=WAIT).sequence)
        assert sequences == list(range(1, len(sequences) + 1))


def test_a_slow_reader_is_not_taken_for_a_dead_link(
    srv: Harness,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The caller holds the socket but is slow to read it (descheduled, on a loaded host):
    what waits there shows the server alive, as when the I/O thread read before it looked
    at its timers."""
    srv.server.heartbeat_interval = 0.05
    real = _blocking_read.read_directly

    def slow(*args: Any) -> bytes:
        time.sleep(0.6)  # two heartbeat timeouts, the server's heartbeats waiting unread
        return real(*args)  # the bytes read, for the caller to hand to the session

    monkeypatch.setattr(_blocking_read, "read_directly", slow)
    with srv.connect(heartbeat_interval=0.05, heartbeat_timeout=0.3) as client:
        srv.publish(b"late")
        assert client.receive_msg(timeout=WAIT) == Message((1, b"late"))
        assert client.reconnects == 0
        assert not client.is_closed
