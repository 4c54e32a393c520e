"""A handler that fails once the session has ended must not cost the client its End of
Session (found in issue 22's third round).

After `end_session()` publishing is refused, so an `on_unsequenced` that answers a request
arriving late raises. The server used to abort that connection for the handler's bug, and
an abort drops what still waits in the connection's write buffer: the rest of the stream
and End of Session. Now the error is logged once, what the client sends after it is
dropped, and the connection ends as after End of Session. Our server, our client, over
loopback; the client stops reading (`max_queue`) so that what it is owed waits on the
server's side when the handler fails, as with a slow client.
"""

from __future__ import annotations

import contextlib
import socket

import pytest

import soupbintcp
from soupbintcp import CloseReason, Connection, ConnectionLost, serve
from soupbintcp.events import ConnectionClosed, HandlerFailed, ServerEvent
from soupbintcp.lowlevel import ServerState
from soupbintcp.store import MemoryStore

from .helpers import wait_for, within
from .server_support import CREDENTIALS, PASSWORD, SESSION, USER

MESSAGE = b"x" * 200
COUNT = 4000  # 800 KB: more than the kernel holds for a client that stopped reading


async def read_all(client: soupbintcp.AsyncClient) -> tuple[list[bytes], CloseReason | None]:
    """Every sequenced payload until the session ends for the client, and why it ended."""
    got: list[bytes] = []
    with contextlib.suppress(ConnectionLost):  # what came before the loss is kept
        async for msg in client:
            if msg.sequence is not None:
                got.append(msg.data)  # noqa: PERF401 (a comprehension loses it all on error)
    return got, client.close_reason


@pytest.mark.parametrize("where", ["end_of_session_written", "still_catching_up"])
async def test_a_handler_failing_after_the_end_keeps_end_of_session(where: str) -> None:
    events: list[ServerEvent] = []
    calls: list[bytes] = []

    def answer(conn: Connection, data: bytes) -> None:
        calls.append(data)
        conn.publish(b"answer to " + data)  # refused: the session has ended

    # Z written at once (a buffer bigger than the stream), or only once the client has
    # read the rest (a buffer smaller than the stream).
    high = 4 * 1024 * 1024 if where == "end_of_session_written" else 64 * 1024
    async with serve(
        ("127.0.0.1", 0), store=MemoryStore(), session_id=SESSION, credentials=CREDENTIALS,
        on_unsequenced=answer, on_event=events.append, write_buffer_high=high,
        end_of_session_linger=30.0,
    ) as server:  # fmt: skip
        bystander = await soupbintcp.connect_async(server.address, USER, PASSWORD)
        await wait_for(lambda: len(server.connections) == 1)
        late = await soupbintcp.connect_async(server.address, USER, PASSWORD, max_queue=10)
        await wait_for(lambda: len(server.connections) == 2)
        conn = server.connections[1]
        # Most of the stream waits in user space on the server's side, not in the kernel.
        sock = conn._transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        server.publish_many([MESSAGE] * COUNT)
        await server.end_session()
        if where == "end_of_session_written":
            await wait_for(lambda: conn.state is ServerState.ENDED)
        else:
            await wait_for(lambda: conn.paused)
            assert conn.state is ServerState.LOGGED_IN
        assert conn.write_buffer_size > 0  # what is owed waits here
        late.send_unseq_data(b"request 1")
        await wait_for(lambda: any(isinstance(e, HandlerFailed) for e in events))
        late.send_unseq_data(b"request 2")  # after the failure: dropped, not handled
        got, reason = await within(read_all(late))
        assert reason is CloseReason.END_OF_SESSION
        assert got == [MESSAGE] * COUNT
        bystanders, reason = await within(read_all(bystander))
        assert reason is CloseReason.END_OF_SESSION
        assert bystanders == [MESSAGE] * COUNT
        await wait_for(lambda: not server.connections)
    assert calls == [b"request 1"]
    failed = [e for e in events if isinstance(e, HandlerFailed)]
    assert len(failed) == 1
    assert failed[0].connection == conn.id
    assert failed[0].session_ended
    assert "End of Session" in failed[0].describe()
    closed = {e.connection: e.reason for e in events if isinstance(e, ConnectionClosed)}
    assert closed[conn.id] == "end_of_session"


async def test_a_handler_failing_before_the_end_still_closes_that_connection() -> None:
    """Unchanged while the session runs: the handler's bug closes its connection."""
    events: list[ServerEvent] = []

    def broken(conn: Connection, data: bytes) -> None:
        raise RuntimeError("the application's bug")

    async with serve(
        ("127.0.0.1", 0), store=MemoryStore(), session_id=SESSION, credentials=CREDENTIALS,
        on_unsequenced=broken, on_event=events.append,
    ) as server:  # fmt: skip
        client = await soupbintcp.connect_async(server.address, USER, PASSWORD)
        client.send_unseq_data(b"request")
        _, reason = await within(read_all(client))
        assert reason is CloseReason.CONNECTION_LOST
    (failed,) = [e for e in events if isinstance(e, HandlerFailed)]
    assert not failed.session_ended
    closed = [e.reason for e in events if isinstance(e, ConnectionClosed)]
    assert closed == ["handler_failed"]
