"""A slow `on_unsequenced` handler: the server stops reading that client, and must not blame it.

Issue 10, bug 1. When the handler falls behind, the server stops reading the client (by
design: the rest waits in the socket), and the client's heartbeats wait there too. Its
heartbeat clock must not run meanwhile, or a client that has been sending heartbeats all
along is closed and the requests still in the socket are lost.

The clock is injected: the event loop's own, which every timer, sleep and the server's
heartbeat clock read. The handler "takes" its 3 ms by moving that clock on, so the seconds of
handler time pass in a fraction of a second of real time and nothing depends on the speed of
the machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from soupbintcp import Connection, serve
from soupbintcp.lowlevel import ServerConnectionState, ServerState
from soupbintcp.store import MemoryStore

from .helpers import wire
from .server_support import CREDENTIALS, SESSION, RawClient, login_packet


class _ManualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock is real time plus what the test moved it on by."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped = 0.0

    def time(self) -> float:
        return super().time() + self.skipped

    def advance(self, seconds: float) -> None:
        self.skipped += seconds


async def _until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll the loop until `predicate()` holds; real time bounds the wait (the loop's clock
    runs faster than real time here)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)


async def _slow_handler_scenario() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, _ManualClockLoop)
    count = 1400
    seen: list[bytes] = []
    paused_while_handling = False

    async def slow(connection: Connection, data: bytes) -> None:
        nonlocal paused_while_handling
        paused_while_handling |= connection._reading_paused
        loop.advance(0.003)  # the handler's 3 ms, on the loop's clock
        await asyncio.sleep(0)
        seen.append(data)

    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials=CREDENTIALS,
        on_unsequenced=slow,
        client_heartbeat_timeout=1.0,
    ) as server:
        raw = await RawClient.connect(server.address)
        assert (await raw.login())[0] == b"A"
        (conn,) = server.connections
        requests = [b"order %d" % i for i in range(count)]
        raw.send(b"".join(wire(b"U", request) for request in requests))

        async def heartbeats() -> None:
            while True:
                await asyncio.sleep(0.2)  # on the loop's clock, as the handler moves it
                raw.send(wire(b"R"))

        beating = asyncio.create_task(heartbeats())
        try:
            await _until(lambda: len(seen) == count or conn.closed)
            await _until(lambda: len(seen) == count, 2.0 if conn.closed else 10.0)
        except AssertionError:
            pass  # said below, with the figures
        finally:
            beating.cancel()
        assert paused_while_handling  # the case in point: the server stopped reading
        assert not conn.closed, f"closed with {len(seen)} of {count} requests handled"
        assert seen == requests  # every request, in order

        # The heartbeat clock still runs once reading resumed: a silent client is closed.
        assert server.connections == [conn]
        loop.advance(1.5)
        await _until(lambda: conn.closed)
        raw.close()


def test_slow_unsequenced_handler_does_not_get_a_heartbeating_client_closed() -> None:
    with asyncio.Runner(loop_factory=_ManualClockLoop) as runner:
        runner.run(_slow_handler_scenario())


# --- the sans-IO side: the driver says it stopped reading ---------------------------------------


def test_an_ended_session_waits_for_nothing_while_the_driver_is_not_reading() -> None:
    # After End of Session only the client's timeout can be due (test_server_session.py
    # covers a logged-in session): while the server is not reading, nothing is.
    session = ServerConnectionState(0.0, heartbeat_interval=1.0, client_heartbeat_timeout=5.0)
    session.receive_data(login_packet(), 0.0)
    session.accept(SESSION, 1, 0.0)
    session.end_session(0.0)
    assert session.state is ServerState.ENDED
    session.reading_paused(0.0)
    assert session.next_timer() is None  # only the client's timeout was due, and it is off
    assert session.handle_timer(100.0) == b""
    session.reading_resumed(100.0)
    assert session.next_timer() == 105.0
