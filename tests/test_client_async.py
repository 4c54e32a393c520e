"""The asyncio client over loopback, against the scripted test server."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import trustme
import uvloop

import soupbintcp
import soupbintcp.lowlevel
from soupbintcp import (
    AsyncClient,
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
    SessionMismatch,
)
from soupbintcp.lowlevel import (
    DebugPacket,
    LoginAcceptedPacket,
    SequencedMessages,
    UnsequencedDataPacket,
)

from .fault_proxy import FaultProxy
from .helpers import wait_for, wire, within
from .scripted_server import ScriptedServer

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path

FAST = ReconnectPolicy(initial_delay=0.001, max_delay=0.02)


def msgs(n: int, start: int = 1) -> list[bytes]:
    return [b"msg-%d" % i for i in range(start, start + n)]


async def connect(server: ScriptedServer, **kwargs: Any) -> AsyncClient:
    assert server._server is not None
    host, port = server._server.sockets[0].getsockname()[:2]
    kwargs.setdefault("connect_timeout", 5.0)
    return await within(soupbintcp.connect_async((host, port), "user", "secret", **kwargs))


async def test_receive_sequenced_messages(scripted: ScriptedServer) -> None:
    scripted.publish(*msgs(3))
    client = await connect(scripted)
    assert client.session_id == "SESSION1"
    got = [await within(client.receive_msg()) for _ in range(3)]
    assert got == [Message((i, b"msg-%d" % i)) for i in (1, 2, 3)]
    assert got[0].sequence == 1
    assert got[0].data == b"msg-1"
    assert client.next_sequence == 4
    await client.close()


async def test_sequence_n_and_zero(scripted: ScriptedServer) -> None:
    scripted.publish(*msgs(10))
    client = await connect(scripted, sequence=8)
    assert (await within(client.receive_msg())).sequence == 8
    await client.close()
    live = await connect(scripted, sequence=0)
    scripted.publish(b"new")
    assert await within(live.receive_msg()) == Message((11, b"new"))
    await live.close()


async def test_async_for_ends_after_end_of_session(scripted: ScriptedServer) -> None:
    scripted.publish(*msgs(5))
    closed = asyncio.Event()

    async def on_close() -> None:
        closed.set()

    client = await connect(scripted, on_close_coro=on_close)
    scripted.end_session()
    await wait_for(lambda: client.is_closed)
    got = [m.sequence async for m in client]
    assert got == [1, 2, 3, 4, 5]  # every message before Z is still delivered
    with pytest.raises(SessionEnded):
        await client.receive_msg()
    assert client.close_reason is CloseReason.END_OF_SESSION
    await within(closed.wait())


async def test_on_msg_coro_sees_everything_before_on_close(scripted: ScriptedServer) -> None:
    scripted.publish(*msgs(100))
    seen: list[int | None] = []
    done = asyncio.Event()

    async def on_msg(msg: Message) -> None:
        seen.append(msg.sequence)

    async def on_close() -> None:
        seen.append(-1)
        done.set()

    await connect(scripted, on_msg_coro=on_msg, on_close_coro=on_close)
    scripted.publish(*msgs(100, 101))
    scripted.end_session()
    await within(done.wait())
    assert seen == [*range(1, 201), -1]


@pytest.mark.parametrize("reason", list(RejectReason))
async def test_login_rejected(scripted: ScriptedServer, reason: RejectReason) -> None:
    scripted.reject = reason
    with pytest.raises(LoginRejected) as info:
        await connect(scripted)
    assert info.value.reason is reason


async def test_wrong_session_is_rejected_s(scripted: ScriptedServer) -> None:
    with pytest.raises(LoginRejected) as info:
        await connect(scripted, session_id="OTHER")
    assert info.value.reason is RejectReason.SESSION_NOT_AVAILABLE


async def test_unknown_reject_code_is_an_error_not_a_hang(scripted: ScriptedServer) -> None:
    scripted.login_reply = wire(b"J", b"X")
    with pytest.raises(RemoteProtocolError, match="reject reason"):
        await connect(scripted, login_timeout=30.0)


async def test_silent_server_hits_login_timeout(scripted: ScriptedServer) -> None:
    scripted.silent_login = True
    with pytest.raises(LoginTimeout):
        await connect(scripted, login_timeout=0.2)
    assert issubclass(LoginTimeout, TimeoutError)


async def test_unreachable_server_raises_oserror() -> None:
    server = ScriptedServer()
    host, port = await server.start()
    await server.close()
    with pytest.raises(ConnectionRefusedError):
        await soupbintcp.connect_async((host, port), "user", "secret")


async def test_410_login_carries_heartbeat_timeout(scripted: ScriptedServer) -> None:
    client = await connect(scripted, client_heartbeat_timeout_ms=2500)
    assert scripted.logins[0].heartbeat_timeout_ms == 2500
    await client.close()
    client = await connect(scripted)
    assert scripted.logins[1].heartbeat_timeout_ms is None
    await client.close()


async def test_unsequenced_both_ways(scripted: ScriptedServer) -> None:
    scripted.echo_unsequenced = True
    scripted.publish(b"a")
    client = await connect(scripted)
    client.send_unseq_data(b"order-1")
    assert await within(client.receive_msg()) == Message((1, b"a"))
    assert await within(client.receive_msg()) == Message((None, b"echo:order-1"))
    assert scripted.unsequenced == [b"order-1"]
    scripted.publish(b"b")
    assert await within(client.receive_msg()) == Message((2, b"b"))  # not counted
    await client.close()


async def test_client_heartbeats_keep_the_link_alive(scripted: ScriptedServer) -> None:
    scripted.client_heartbeat_timeout = 0.3
    client = await connect(scripted, heartbeat_interval=0.05)
    await asyncio.sleep(0.8)  # idle: only heartbeats flow, well past the server's timeout
    assert scripted.connections, "server dropped the client: heartbeats were not sent"
    assert not client.is_closed
    await client.close()


async def test_link_dead_after_silence(scripted: ScriptedServer) -> None:
    scripted.silent = True
    client = await connect(scripted, heartbeat_timeout=0.2)
    with pytest.raises(HeartbeatTimeout):
        await within(client.receive_msg())
    assert client.close_reason is CloseReason.HEARTBEAT_TIMEOUT


async def test_connection_lost_without_reconnect_keeps_received_messages(
    scripted: ScriptedServer,
) -> None:
    scripted.publish(*msgs(3))
    client = await connect(scripted)
    await wait_for(lambda: client.queued == 3)
    scripted.drop_all()
    await wait_for(lambda: client.is_closed)
    assert [(await client.receive_msg()).sequence for _ in range(3)] == [1, 2, 3]
    with pytest.raises(ConnectionLost):
        await client.receive_msg()
    assert client.close_reason is CloseReason.CONNECTION_LOST


async def test_debug_is_observable_not_data(
    scripted: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    statuses: list[object] = []
    client = await connect(scripted, on_status=statuses.append)
    with caplog.at_level(logging.DEBUG, logger="soupbintcp.client"):
        scripted.send_raw(DebugPacket("hello from the server").encode())
        scripted.publish(b"x")
        assert await within(client.receive_msg()) == Message((1, b"x"))
    assert DebugPacket("hello from the server") in statuses
    assert any(isinstance(s, LoginAcceptedPacket) for s in statuses)
    assert "hello from the server" in caplog.text
    await client.close()


async def test_batch_path(scripted: ScriptedServer) -> None:
    scripted.echo_unsequenced = True
    client = await connect(scripted)
    scripted.publish(*msgs(3))
    await wait_for(lambda: client.queued == 3)
    client.send_unseq_data(b"u")
    await wait_for(lambda: client.queued == 4)
    scripted.publish(*msgs(2, 4))
    await wait_for(lambda: client.queued == 6)
    assert await within(client.receive_msg()) == Message((1, b"msg-1"))  # mixing is fine
    batch = await within(client.receive_batch())
    assert batch == [
        SequencedMessages(2, [b"msg-2", b"msg-3"]),
        UnsequencedDataPacket(b"echo:u"),
        SequencedMessages(4, [b"msg-4", b"msg-5"]),
    ]
    scripted.end_session()
    assert [b async for b in client.batches()] == []
    await client.close()


async def test_a_batch_hands_out_the_rest_of_a_begun_run_first(scripted: ScriptedServer) -> None:
    # One run queued while another is being handed out: the batch's quick path (one item
    # queued) must not skip the rest of the run `receive_msg` began.
    client = await connect(scripted)
    scripted.publish(*msgs(3))
    await wait_for(lambda: client.queued == 3)
    assert await within(client.receive_msg()) == Message((1, b"msg-1"))
    scripted.publish(*msgs(2, 4))
    await wait_for(lambda: client.queued == 4)
    assert client.receive_batch_nowait() == [
        SequencedMessages(2, [b"msg-2", b"msg-3"]),
        SequencedMessages(4, [b"msg-4", b"msg-5"]),
    ]
    assert client.queued == 0
    await client.close()


async def test_on_ready_is_told_in_the_io_callback_and_at_the_end(
    scripted: ScriptedServer,
) -> None:
    client = await connect(scripted)
    assert client.receive_batch_nowait() == []
    got: list[object] = []
    in_task: list[bool] = []

    def on_ready() -> None:
        in_task.append(asyncio.current_task() is not None)
        try:
            got.extend(client.receive_batch_nowait())
        except SessionEnded:
            got.append("end")

    client.set_on_ready(on_ready)
    scripted.publish(*msgs(2))
    await wait_for(lambda: len(got) >= 1)
    assert got == [SequencedMessages(1, [b"msg-1", b"msg-2"])]
    assert client.queued == 0  # taken in the callback: nothing waits for a task
    scripted.end_session()
    await wait_for(lambda: "end" in got)
    assert in_task
    assert not any(in_task)  # the protocol's call, not a task woken later
    client.set_on_ready(None)
    await client.close()


async def test_logout(scripted: ScriptedServer) -> None:
    client = await connect(scripted)
    await within(client.logout())
    assert scripted.logouts == 1
    assert client.close_reason is CloseReason.LOGOUT
    with pytest.raises(SessionEnded):
        await client.receive_msg()
    with pytest.raises(SessionEnded):
        client.send_unseq_data(b"late")


async def test_close_keeps_queued_messages_readable(scripted: ScriptedServer) -> None:
    scripted.publish(*msgs(50))
    client = await connect(scripted)
    await wait_for(lambda: client.queued == 50)
    await client.close()
    await client.close()  # idempotent
    assert [(await client.receive_msg()).sequence for _ in range(50)] == list(range(1, 51))
    with pytest.raises(SessionEnded):
        await client.receive_msg()
    assert client.close_reason is CloseReason.CLOSED


async def test_send_while_not_logged_in_is_refused(scripted: ScriptedServer) -> None:
    client = await connect(scripted, reconnect=ReconnectPolicy(initial_delay=5.0))
    scripted.drop_all()
    await wait_for(lambda: client.state.value == "disconnected")
    with pytest.raises(LocalProtocolError, match="reconnecting"):
        client.send_unseq_data(b"x")
    await client.close()


async def test_reconnect_resumes_at_next_sequence(scripted: ScriptedServer) -> None:
    scripted.publish(*msgs(3))
    client = await connect(scripted, reconnect=FAST)
    assert [(await within(client.receive_msg())).sequence for _ in range(3)] == [1, 2, 3]
    scripted.drop_all()
    scripted.publish(*msgs(2, 4))
    assert [(await within(client.receive_msg())).sequence for _ in range(2)] == [4, 5]
    assert client.reconnects == 1
    relogin = scripted.logins[-1]
    assert (relogin.session, relogin.sequence) == ("SESSION1", 4)
    await client.close()


async def test_reconnect_skips_resent_duplicates(scripted: ScriptedServer) -> None:
    scripted.publish(*msgs(10))
    client = await connect(scripted, reconnect=FAST)
    await wait_for(lambda: client.queued == 10)
    scripted.resend_overlap = 7
    scripted.drop_all()
    scripted.publish(*msgs(5, 11))
    got = [(await within(client.receive_msg())).sequence for _ in range(15)]
    assert got == list(range(1, 16))
    await client.close()


async def test_reconnect_gap_is_an_error(scripted: ScriptedServer) -> None:
    client = await connect(scripted, reconnect=FAST)
    scripted.login_reply = soupbintcp.lowlevel.LoginAcceptedPacket("SESSION1", 9).encode()
    scripted.drop_all()
    with pytest.raises(SequenceGap) as info:
        await within(client.receive_msg())
    assert (info.value.expected, info.value.offered) == (1, 9)
    assert client.close_reason is CloseReason.SEQUENCE_GAP


async def test_reconnect_into_another_session_is_an_error(scripted: ScriptedServer) -> None:
    client = await connect(scripted, reconnect=FAST)
    scripted.login_reply = soupbintcp.lowlevel.LoginAcceptedPacket("OTHER", 1).encode()
    scripted.drop_all()
    with pytest.raises(SessionMismatch):
        await within(client.receive_msg())


async def test_rejected_relogin_ends_the_session(scripted: ScriptedServer) -> None:
    client = await connect(scripted, reconnect=FAST)
    scripted.reject = RejectReason.NOT_AUTHORIZED
    scripted.drop_all()
    with pytest.raises(LoginRejected):
        await within(client.receive_msg())
    assert client.close_reason is CloseReason.REJECTED
    assert len(scripted.logins) == 2  # no retry loop on bad credentials


async def test_reconnect_after_heartbeat_silence(scripted: ScriptedServer) -> None:
    scripted.publish(b"a")
    client = await connect(scripted, reconnect=FAST, heartbeat_timeout=0.3)
    assert (await within(client.receive_msg())).sequence == 1
    scripted.silent = True  # this connection's heartbeats are already scheduled...
    scripted.each(lambda c: c.timer.cancel() if c.timer else None)
    await wait_for(lambda: client.reconnects == 1)
    scripted.silent = False
    scripted.publish(b"b")
    assert await within(client.receive_msg()) == Message((2, b"b"))
    await client.close()


async def test_reconnect_gives_up_after_max_attempts(scripted: ScriptedServer) -> None:
    client = await connect(
        scripted, reconnect=ReconnectPolicy(initial_delay=0.001, max_delay=0.01, max_attempts=3)
    )
    await scripted.close()
    with pytest.raises(ConnectionLost, match="gave up after 3"):
        await within(client.receive_msg())


async def test_back_pressure_bounds_the_queue(scripted: ScriptedServer) -> None:
    scripted.publish(*msgs(20_000))
    client = await connect(scripted, max_queue=1000)
    await wait_for(lambda: client._inbox._paused, 10)  # a sleep of 0.2 s was not always enough
    # Reading pauses at the high-water mark; one read (<= 256 KiB) may overshoot it.
    assert client.queued <= 1000 + 256 * 1024 // 9
    got = [(await within(client.receive_msg())).sequence for _ in range(20_000)]
    assert got == list(range(1, 20_001))
    await client.close()


async def test_tls(tmp_path: Any) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    server = ScriptedServer()
    host, port = await server.start(ssl=server_ctx)
    server.publish(*msgs(100))
    try:
        client = await within(
            soupbintcp.connect_async(
                (host, port), "user", "secret", ssl=client_ctx, server_hostname="localhost"
            )
        )
        got = [(await within(client.receive_msg())).sequence for _ in range(100)]
        assert got == list(range(1, 101))
        await client.close()
        with pytest.raises(ssl.SSLError):  # an untrusting client refuses the certificate
            await within(soupbintcp.connect_async((host, port), "user", "secret", ssl=True))
    finally:
        await server.close()


# --- reconnect under random cuts, on stock asyncio and on uvloop -----------------------------


def run_on(
    loop_factory: Callable[[], asyncio.AbstractEventLoop], coro: Coroutine[Any, Any, None]
) -> None:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(coro)


async def cut_scenario(total: int, min_cuts: int, seed: int) -> None:
    rng = random.Random(seed)
    server = ScriptedServer()
    target = await server.start()
    payloads = [rng.randbytes(rng.randint(11, 50)) for _ in range(total)]
    server.publish(*payloads[: total // 2])
    # Cut each of the first connections somewhere in its first ~120 KB (mid-packet included).
    proxy = FaultProxy(
        target, cut_at=lambda n: rng.randint(0, 120_000) if n < min_cuts + 5 else None, seed=seed
    )
    address = await proxy.start()
    try:
        client = await within(
            soupbintcp.connect_async(address, "user", "secret", reconnect=FAST), 10
        )
        live = payloads[total // 2 :]

        async def publish_live() -> None:
            for i in range(0, len(live), 500):
                server.publish(*live[i : i + 500])
                await asyncio.sleep(0.001)

        publisher = asyncio.ensure_future(publish_live())
        got: list[bytes] = []
        expected = 1
        while expected <= total:
            for item in await within(client.receive_batch(), 20):
                assert isinstance(item, SequencedMessages)
                assert item.first_sequence == expected  # no gap, no duplicate
                got.extend(item.messages)
                expected = item.next_sequence
        await publisher
        assert got == payloads
        assert proxy.cuts >= min_cuts
        assert client.reconnects >= min_cuts
        await client.close()
    finally:
        await proxy.close()
        await server.close()


@pytest.mark.parametrize(
    "loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)
def test_random_cuts_deliver_everything_exactly_once_in_order(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    run_on(loop_factory, cut_scenario(total=100_000, min_cuts=20, seed=1))


@pytest.mark.parametrize(
    "loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)
def test_single_byte_writes(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    async def scenario() -> None:
        server = ScriptedServer()
        target = await server.start()
        server.publish(*msgs(200))
        proxy = FaultProxy(target, split_bytes=True)
        address = await proxy.start()
        try:
            client = await within(soupbintcp.connect_async(address, "user", "secret"))
            got = [(await within(client.receive_msg())).data for _ in range(200)]
            assert got == msgs(200)
            await client.close()
        finally:
            await proxy.close()
            await server.close()

    run_on(loop_factory, scenario())


async def test_concurrent_consumers_share_every_message_once(scripted: ScriptedServer) -> None:
    client = await connect(scripted)
    got: list[int | None] = []

    async def consumer() -> None:
        while True:
            try:
                msg = await client.receive_msg()
            except SessionEnded:
                return
            got.append(msg.sequence)
            await asyncio.sleep(0)  # the other consumer runs between messages

    consumers = [asyncio.ensure_future(consumer()) for _ in range(2)]
    await asyncio.sleep(0.01)  # both are waiting
    # One chunk carrying two runs of sequenced data: S S S H S S S
    scripted.send_raw(b"".join(wire(b"S", b"%d" % i) for i in (1, 2, 3)) + wire(b"H")
                      + b"".join(wire(b"S", b"%d" % i) for i in (4, 5, 6)))  # fmt: skip
    await wait_for(lambda: len(got) == 6)
    await client.close()
    await within(asyncio.gather(*consumers))
    assert sorted(got) == [1, 2, 3, 4, 5, 6]  # type: ignore[type-var]
