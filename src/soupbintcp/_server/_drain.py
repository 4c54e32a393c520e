"""Draining: the server is closing and lets its logged-in clients finish.

Layer 3 (server driver). `Server.close` stops publishing, closes the connections not
logged in, then `drain`s the rest: each gets up to the drain timeout to receive everything
published before the close (and End of Session if the session ended), and is then closed,
saying whether it was drained or cut off.
"""

from __future__ import annotations

import asyncio
import logging

from .._session._server import ServerState
from ._connection import buffered, unacknowledged
from ._protocol import ServerProtocol

__all__ = ["drain"]


async def drain(conns: list[ServerProtocol], timeout: float) -> None:
    """Wait up to `timeout` s for `conns` to be drained, close each, and abort what is still
    unsent a second later."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(not c.closed and not drained(c) for c in conns) and loop.time() < deadline:
        await asyncio.sleep(0.01)
    for conn in conns:
        if conn.closed:
            continue
        if drained(conn):
            conn.close(*_drained_reason(conn), logging.INFO)
        else:
            conn.close(
                "drain_timeout", _undrained_reason(conn, timeout), logging.WARNING, abort=True
            )
    # What was written to the drained ones goes out (a second at most), then the rest.
    transports = [conn.transport for conn in conns]
    flushed = loop.time() + 1.0
    while any(map(buffered, transports)) and loop.time() < flushed:
        await asyncio.sleep(0.01)
    for transport in transports:
        transport.abort()  # a no-op for those already closed


def drained(conn: ServerProtocol) -> bool:
    """Everything is sent: the whole stream so far (and End of Session if it ended), out
    of our buffer and acknowledged by the client's TCP (closing with bytes still in the
    kernel's send queue could reset the connection and lose them)."""
    stream = conn.stream
    transport = conn.transport
    if stream is None or buffered(transport) or unacknowledged(transport):
        return False
    if conn.session.state is ServerState.ENDED:
        return True
    return not stream.ended and conn.session.next_sequence > stream.head


def _drained_reason(conn: ServerProtocol) -> tuple[str, str]:
    """(reason, detail) of closing a drained connection."""
    if conn.session.state is ServerState.ENDED:
        return "end_of_session", "end of session"
    return "drained", "drained: everything sent, the server is closing"


def _undrained_reason(conn: ServerProtocol, timeout: float) -> str:
    return (
        f"drain timeout ({timeout:g} s): the server is closing with {conn.connection.lag} "
        f"messages and {buffered(conn.transport)} bytes not sent"
    )
