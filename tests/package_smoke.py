"""Smoke test of an installed soupbintcp, run by tests/package_check.py inside a fresh venv.

Prints which path is in use (the compiled fast path or pure Python), serves three messages
over loopback and reads them back with the asyncio client. With an argument (``compiled`` or
``pure``) it fails unless that is the path in use.
"""

from __future__ import annotations

import asyncio
import sys

import soupbintcp


async def round_trip() -> list[bytes]:
    store = soupbintcp.MemoryStore()
    async with soupbintcp.serve(
        ("127.0.0.1", 0), store=store, session_id="SMOKE", credentials={"user": "secret"}
    ) as server:
        server.publish_many([b"one", b"two", b"three"])
        session = await soupbintcp.connect_async(server.address, "user", "secret", sequence=1)
        got = [(await asyncio.wait_for(session.receive_msg(), 10)).data for _ in range(3)]
        await session.close()
    return got


def main() -> int:
    path = "compiled" if soupbintcp.accelerated else "pure"
    where = soupbintcp.__file__
    print(f"soupbintcp {soupbintcp.__version__} from {where}: {path} path")
    got = asyncio.run(round_trip())
    if got != [b"one", b"two", b"three"]:
        print(f"round trip returned {got!r}", file=sys.stderr)
        return 1
    if len(sys.argv) > 1 and sys.argv[1] != path:
        print(f"expected the {sys.argv[1]} path, found the {path} path", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
