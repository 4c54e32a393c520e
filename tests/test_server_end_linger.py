"""After End of Session the server waits for a slow client to take what was sent (issue 22's
flaky failover): closing at the end-of-session linger while End of Session still waited in
our socket let the client's next heartbeat meet a closed socket, whose reset dropped the
rest, End of Session with it. A client that takes nothing at all is still closed."""

from __future__ import annotations

import asyncio
import socket
import time

from soupbintcp import serve
from soupbintcp.store import MemoryStore

from .helpers import wait_for, wire
from .server_support import CREDENTIALS, SESSION, login_packet

MESSAGE = b"x" * 200
COUNT = 1500  # 300 KB: seconds for the slow reader below, far more than the linger
LINGER = 0.1


def slow_reader(sock: socket.socket) -> tuple[bytes, str | None]:
    """Read 2 KB every 10 ms, with a Client Heartbeat each time, until End of Session (the
    last packet the server sends); then close, as a client does. Returns what was read
    and the error that ended reading early, if any."""
    got = bytearray()
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            sock.sendall(wire(b"R"))
            chunk = sock.recv(2048)
            if not chunk:
                return bytes(got), "EOF before End of Session"
            got += chunk
            if got.endswith(wire(b"Z")):
                return bytes(got), None
            time.sleep(0.01)
        return bytes(got), "timed out"
    except OSError as exc:
        return bytes(got), repr(exc)
    finally:
        sock.close()


def packets(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 2], "big")
        out.append((data[pos + 2 : pos + 3], data[pos + 3 : pos + 2 + n]))
        pos += 2 + n
    return out


async def test_end_of_session_reaches_a_slow_reader_that_still_heartbeats() -> None:
    async with serve(
        ("127.0.0.1", 0), store=MemoryStore(), session_id=SESSION, credentials=CREDENTIALS,
        end_of_session_linger=LINGER, heartbeat_interval=30.0,
    ) as server:  # fmt: skip
        server.publish_many([MESSAGE] * COUNT)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(5)
        sock.connect(server.address)
        sock.sendall(login_packet(session=SESSION))
        await wait_for(lambda: bool(server.connections) and server.connections[0].logged_in)
        # A small send buffer on our side too: most of the backlog waits in user space and
        # then in the kernel, behind the slow reader, as with a loaded client.
        ours = server.connections[0]._transport.get_extra_info("socket")
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        await server.end_session()
        data, error = await asyncio.to_thread(slow_reader, sock)
    assert error is None, error
    got = packets(data)
    assert got[0][0] == b"A"
    assert got[1:] == [(b"S", MESSAGE)] * COUNT + [(b"Z", b"")]


async def test_a_client_that_takes_nothing_is_closed_after_the_linger() -> None:
    async with serve(
        ("127.0.0.1", 0), store=MemoryStore(), session_id=SESSION, credentials=CREDENTIALS,
        end_of_session_linger=LINGER, heartbeat_interval=30.0,
    ) as server:  # fmt: skip
        server.publish_many([MESSAGE] * COUNT)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(server.address)
        sock.sendall(login_packet(session=SESSION))
        await wait_for(lambda: bool(server.connections) and server.connections[0].logged_in)
        ended = time.monotonic()
        await server.end_session()
        # Never read: once End of Session is written, nothing moves for a whole linger.
        await wait_for(lambda: not server.connections, timeout=10)
        took = time.monotonic() - ended
        sock.close()
    assert took < 5  # bounded: a stuck client does not hold the connection
