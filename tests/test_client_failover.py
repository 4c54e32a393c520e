"""Clients over several addresses: failover between real servers sharing one session, a
gateway serving another session skipped, the address forms, a first login that times out
retried under the policy, and a logout that ends as soon as the server closes whatever the
client's queue holds. Both drivers, over loopback."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import soupbintcp
import soupbintcp.lowlevel
from soupbintcp import (
    AsyncClient,
    BlockingClient,
    CloseReason,
    LocalProtocolError,
    LoginTimeout,
    ReconnectPolicy,
    serve,
)
from soupbintcp.lowlevel import LoginAcceptedPacket

from .gateway_server import PASSWORD, USER, filled, payload
from .helpers import wait_for, within
from .scripted_server import ScriptedServer

CREDENTIALS = {USER: PASSWORD}
FAST = ReconnectPolicy(initial_delay=0.001, max_delay=0.02)
Address = tuple[str, int]


SCRIPT = Path(__file__).with_name("gateway_server.py")


async def free_address() -> Address:
    """A loopback address nobody listens on."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    server.close()
    await server.wait_closed()
    return host, port


class Gateways:
    """Real servers: `a` and `b` serve session FEED from one store, `other` another one (it
    rejects a login to FEED: "S"); `mismatch` accepts any login into its session OTHER."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.store = filled(n)
        self.servers: dict[str, Any] = {}

    async def start(self) -> Gateways:
        for name, store, session in (
            ("a", self.store, "FEED"),
            ("b", self.store, "FEED"),
            ("other", filled(10), "OTHER"),
        ):
            self.servers[name] = await serve(
                ("127.0.0.1", 0), store=store, session_id=session, credentials=CREDENTIALS
            )
        self.mismatch = ScriptedServer("OTHER")
        self.mismatch.login_reply = LoginAcceptedPacket("OTHER", 1).encode()
        self.mismatch_address = await self.mismatch.start()
        return self

    def address(self, name: str) -> Address:
        host, port = self.servers[name].address[:2]
        return host, port

    async def kill(self, name: str) -> None:
        """Drop the server and its connections at once (nothing more goes out)."""
        await self.servers[name].close(timeout=0)

    async def close(self) -> None:
        for server in self.servers.values():
            await server.close(timeout=0)
        await self.mismatch.close()


@pytest.fixture
async def gateways() -> AsyncIterator[Gateways]:
    g = await Gateways(100_000).start()  # 20 MB: far more than the socket buffers hold
    try:
        yield g
    finally:
        await g.close()


def check_feed(got: list[tuple[int | None, bytes]], n: int) -> None:
    assert [seq for seq, _ in got] == list(range(1, n + 1))  # exactly once, in order
    assert all(data == payload(seq) for seq, data in got if seq is not None)


async def test_async_failover_resumes_exactly_once_skipping_another_session(
    gateways: Gateways, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="soupbintcp.client")
    a, other, b = gateways.address("a"), gateways.address("other"), gateways.address("b")
    mismatch = gateways.mismatch_address
    client = await within(
        soupbintcp.connect_async(
            [a, f"{other[0]}:{other[1]}", mismatch, b],
            USER,
            PASSWORD,
            reconnect=FAST,
            max_queue=500,
        )
    )
    assert client.address == a
    assert client.addresses == (a, other, mismatch, b)
    got = [tuple(await within(client.receive_msg())) for _ in range(1_000)]
    await gateways.kill("a")  # mid-stream: most of the feed is still to come
    while len(got) < gateways.n:
        for item in await within(client.receive_batch()):
            assert isinstance(item, soupbintcp.lowlevel.SequencedMessages)
            got += [(item.first_sequence + i, m) for i, m in enumerate(item.messages)]
    check_feed(got, gateways.n)  # type: ignore[arg-type]
    assert client.address == b  # "other" and "mismatch" do not serve FEED: skipped
    assert client.session_id == "FEED"
    assert (client.failovers, client.reconnects) == (1, 1)
    assert "session not available" in caplog.text
    assert "server accepted session 'OTHER', expected 'FEED'" in caplog.text
    assert f"failed over from {a[0]}:{a[1]} to {b[0]}:{b[1]}" in caplog.text
    await client.close()


async def test_blocking_failover_resumes_exactly_once_skipping_another_session(
    gateways: Gateways, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="soupbintcp.client")
    a, other, b = gateways.address("a"), gateways.address("other"), gateways.address("b")
    mismatch = gateways.mismatch_address
    client = await asyncio.to_thread(
        soupbintcp.connect, [a, mismatch, other, b], USER, PASSWORD, reconnect=FAST, max_queue=500
    )
    try:
        got = [tuple(await asyncio.to_thread(client.receive_msg, 10.0)) for _ in range(1_000)]
        await gateways.kill("a")
        while len(got) < gateways.n:
            for item in await asyncio.to_thread(client.receive_batch, 10.0):
                assert isinstance(item, soupbintcp.lowlevel.SequencedMessages)
                got += [(item.first_sequence + i, m) for i, m in enumerate(item.messages)]
        check_feed(got, gateways.n)  # type: ignore[arg-type]
        assert client.address == b
        assert (client.failovers, client.reconnects) == (1, 1)
        assert f"failed over from {a[0]}:{a[1]} to {b[0]}:{b[1]}" in caplog.text
        assert "server accepted session 'OTHER', expected 'FEED'" in caplog.text
    finally:
        await asyncio.to_thread(client.close)


class GatewayProcess:
    """`tests/gateway_server.py` in its own process, to be SIGKILLed."""

    def __init__(self, count: int, session: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(count), session],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    async def ready(self) -> Address:
        assert self.proc.stdout is not None
        line = await within(asyncio.to_thread(self.proc.stdout.readline), timeout=60.0)
        assert line.startswith(b"ready "), line
        return "127.0.0.1", int(line.split()[1])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


async def test_sigkilled_gateway_process_resumes_on_another_exactly_once() -> None:
    n = 100_000
    procs = [GatewayProcess(n, "FEED"), GatewayProcess(10, "OTHER"), GatewayProcess(n, "FEED")]
    try:
        first, other, second = [await p.ready() for p in procs]
        client = await within(
            soupbintcp.connect_async(
                [first, other, second], USER, PASSWORD, reconnect=FAST, max_queue=500
            )
        )
        got = [tuple(await within(client.receive_msg())) for _ in range(1_000)]
        procs[0].kill()  # SIGKILL mid-stream
        while len(got) < n:
            for item in await within(client.receive_batch()):
                assert isinstance(item, soupbintcp.lowlevel.SequencedMessages)
                got += [(item.first_sequence + i, m) for i, m in enumerate(item.messages)]
        check_feed(got, n)  # type: ignore[arg-type]
        assert (client.address, client.failovers) == (second, 1)
        await client.close()
    finally:
        for p in procs:
            p.stop()


async def test_first_login_goes_on_to_the_next_address(gateways: Gateways) -> None:
    dead, b = await free_address(), gateways.address("b")
    client = await within(soupbintcp.connect_async([dead, b], USER, PASSWORD, session_id="FEED"))
    assert (client.address, client.failovers, client.reconnects) == (b, 0, 0)
    assert (await within(client.receive_msg())).sequence == 1
    await client.close()
    # Gateways of another session are refused on a first login too.
    other, mismatch = gateways.address("other"), gateways.mismatch_address
    blocking = await asyncio.to_thread(
        soupbintcp.connect, [other, mismatch, b], USER, PASSWORD, session_id="FEED"
    )
    assert (blocking.address, blocking.session_id) == (b, "FEED")
    await asyncio.to_thread(blocking.close)


async def test_every_address_failing_raises_the_last_error() -> None:
    dead1, dead2 = await free_address(), await free_address()
    with pytest.raises(ConnectionRefusedError):
        await within(soupbintcp.connect_async([dead1, dead2], USER, PASSWORD, reconnect=FAST))
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(soupbintcp.connect, [dead1, dead2], USER, PASSWORD)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (("h", 1), (("h", 1),)),
        ("h:1", (("h", 1),)),
        ("[::1]:7", (("::1", 7),)),
        (["a:1", ("b", 2)], (("a", 1), ("b", 2))),
        ((("a", 1), ("b", 2)), (("a", 1), ("b", 2))),
    ],
)
def test_address_forms(value: Any, expected: tuple[Address, ...]) -> None:
    from soupbintcp._client._options import addresses

    assert addresses(value) == expected


@pytest.mark.parametrize("value", ["h", "h:x", ":1", [], [("h", "1")], 7])
async def test_bad_addresses_are_refused_before_connecting(value: Any) -> None:
    with pytest.raises(LocalProtocolError):
        await soupbintcp.connect_async(value, USER, PASSWORD)
    with pytest.raises(LocalProtocolError):
        soupbintcp.connect(value, USER, PASSWORD)


# --- issue 15 point 7: the reconnect policy covers a first login that times out -------------


async def answer_after_first_login(scripted: ScriptedServer) -> None:
    await wait_for(lambda: len(scripted.logins) >= 1)
    scripted.silent_login = False


def scripted_address(scripted: ScriptedServer) -> Address:
    assert scripted._server is not None
    host, port = scripted._server.sockets[0].getsockname()[:2]
    return host, port


@pytest.mark.parametrize("driver", ["async", "blocking"])
async def test_policy_retries_a_first_login_that_timed_out(
    scripted: ScriptedServer, driver: str
) -> None:
    scripted.silent_login = True
    scripted.publish(b"one")
    address = scripted_address(scripted)
    kwargs: dict[str, Any] = {"reconnect": FAST, "login_timeout": 0.2}
    flip = asyncio.create_task(answer_after_first_login(scripted))
    if driver == "async":
        client: AsyncClient | BlockingClient = await within(
            soupbintcp.connect_async(address, USER, PASSWORD, **kwargs)
        )
    else:
        client = await asyncio.to_thread(soupbintcp.connect, address, USER, PASSWORD, **kwargs)
    await flip
    assert len(scripted.logins) >= 2  # the first went unanswered, a later one was accepted
    assert client.state is soupbintcp.ClientState.LOGGED_IN
    assert client.reconnects == 0  # still the first login, as far as the session goes
    if isinstance(client, AsyncClient):
        assert tuple(await within(client.receive_msg())) == (1, b"one")
        await client.close()
    else:
        assert tuple(await asyncio.to_thread(client.receive_msg, 5.0)) == (1, b"one")
        await asyncio.to_thread(client.close)


@pytest.mark.parametrize("driver", ["async", "blocking"])
async def test_login_timeouts_past_max_attempts_raise(
    scripted: ScriptedServer, driver: str
) -> None:
    scripted.silent_login = True
    policy = ReconnectPolicy(initial_delay=0.001, max_delay=0.01, max_attempts=3)
    kwargs: dict[str, Any] = {"reconnect": policy, "login_timeout": 0.1}
    address = scripted_address(scripted)
    attempt: Awaitable[object]
    if driver == "async":
        attempt = within(soupbintcp.connect_async(address, USER, PASSWORD, **kwargs))
    else:
        attempt = asyncio.to_thread(soupbintcp.connect, address, USER, PASSWORD, **kwargs)
    with pytest.raises(LoginTimeout):
        await attempt
    assert len(scripted.logins) == 3


# --- issue 13: a logout ends when the server closes, whatever the queue holds --------------


async def run_daemon(fn: Callable[[], None], timeout: float) -> bool:
    """Run `fn` in a daemon thread; True if it returned within `timeout` seconds (a thread
    still stuck does not hold up the interpreter's exit)."""
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while thread.is_alive() and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return not thread.is_alive()


# A journal far bigger than the queue and the socket buffers: the client has stopped reading
# when it logs out. The logout timeout is an hour; the test's own bound (30 s) fails it if
# the client waits for that timeout instead of seeing the server's close.
N_LOGOUT = 100_000


async def test_async_logout_with_a_full_queue_ends_when_the_server_closes() -> None:
    async with serve(
        ("127.0.0.1", 0), store=filled(N_LOGOUT), session_id="FEED", credentials=CREDENTIALS
    ) as server:
        client = await within(
            soupbintcp.connect_async(server.address[:2], USER, PASSWORD, max_queue=100)
        )
        await wait_for(lambda: client._inbox._paused, timeout=10.0)
        await within(client.logout(timeout=3600.0), timeout=30.0)
        assert client.close_reason is CloseReason.LOGOUT
        assert client.queued >= 100
        got = [tuple(m) async for m in client]  # what was received stays readable, in order
        assert got == [(seq, payload(seq)) for seq in range(1, len(got) + 1)]


async def test_blocking_logout_with_a_full_queue_ends_when_the_server_closes() -> None:
    async with serve(
        ("127.0.0.1", 0), store=filled(N_LOGOUT), session_id="FEED", credentials=CREDENTIALS
    ) as server:
        client = await asyncio.to_thread(
            soupbintcp.connect, server.address[:2], USER, PASSWORD, max_queue=100
        )
        await wait_for(lambda: client._inbox._paused, timeout=10.0)
        assert await run_daemon(lambda: client.logout(timeout=3600.0), 30.0)
        assert client.close_reason is CloseReason.LOGOUT
        assert client.queued >= 100
        got = [tuple(m) for m in client]
        assert got == [(seq, payload(seq)) for seq in range(1, len(got) + 1)]
