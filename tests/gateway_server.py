"""A gateway process for the client failover tests: killed with SIGKILL mid-stream.

    python tests/gateway_server.py COUNT SESSION

It serves session SESSION on 127.0.0.1 (a free port), COUNT messages already in its store:
message n is `payload(n)`, the same bytes on every gateway of one session, as gateways fed
by one log serve. It reports `ready PORT` on stdout and runs until killed or until stdin
closes (the test went away).
"""

from __future__ import annotations

import asyncio
import os
import sys

from soupbintcp import MemoryStore, serve

USER, PASSWORD = "user", "secret"


def payload(seq: int) -> bytes:
    """Message `seq`: it says its number; 200 bytes, so that a feed outgrows the socket
    buffers (megabytes on loopback) and a killed gateway really cuts it short."""
    return (b"feed-%d " % seq).ljust(200, b".")


def filled(n: int) -> MemoryStore:
    store = MemoryStore()
    for seq in range(1, n + 1):
        store.append(payload(seq))
    return store


async def run(count: int, session: str) -> None:
    loop = asyncio.get_running_loop()
    async with serve(
        ("127.0.0.1", 0), store=filled(count), session_id=session, credentials={USER: PASSWORD}
    ) as server:
        os.write(1, b"ready %d\n" % server.address[1])
        await loop.run_in_executor(None, sys.stdin.buffer.read)  # until stdin closes


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]), sys.argv[2]))
