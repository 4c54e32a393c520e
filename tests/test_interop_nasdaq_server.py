"""Interop: our client against the server of the `nasdaq-protocols` package (PyPI).

Their server leaves replay to the application: this subclass keeps a history and streams it
from the requested sequence, as a real feed would. Every wait is bounded: their library
turns some faults into hangs rather than errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from nasdaq_protocols import common, soup

import soupbintcp
from soupbintcp import LoginRejected, Message, RejectReason, SessionEnded

from .helpers import wait_for, within

HISTORY = [b"itch-%03d" % i for i in range(1, 21)]


class FeedSession(soup.SoupServerSession):  # type: ignore[misc]
    received: ClassVar[list[bytes]] = []
    sessions: ClassVar[list[FeedSession]] = []

    async def on_login(self, msg: Any) -> Any:
        if (msg.user.strip(), msg.password.strip()) != ("user", "secret"):
            return soup.LoginRejected(soup.LoginRejectReason.NOT_AUTHORIZED)
        if msg.session.strip() not in ("", "NQSESS"):
            return soup.LoginRejected(soup.LoginRejectReason.SESSION_NOT_AVAILABLE)
        start = max(1, int(msg.sequence.strip() or 1))
        self.sessions.append(self)
        asyncio.get_running_loop().create_task(self._replay(start))
        return soup.LoginAccepted("NQSESS", start)

    async def _replay(self, start: int) -> None:
        await asyncio.sleep(0)  # Login Accepted goes out after on_login returns
        for data in HISTORY[start - 1 :]:
            self.send_seq_msg(data)

    async def on_unsequenced(self, msg: Any) -> None:
        data = bytes(msg.data)
        self.received.append(data)
        self.send_msg(soup.UnSequencedData(b"ack:" + data))


@pytest.fixture
async def nasdaq_server() -> AsyncIterator[tuple[str, int]]:
    FeedSession.received = []
    FeedSession.sessions = []
    server, task = await common.start_server(("127.0.0.1", 0), FeedSession)
    try:
        yield "127.0.0.1", server.sockets[0].getsockname()[1]
    finally:
        for session in FeedSession.sessions:
            if not session.is_closed():
                session.initiate_close()
        server.close()
        task.cancel()


async def test_login_sequenced_unsequenced_and_end_of_session(
    nasdaq_server: tuple[str, int],
) -> None:
    client = await within(soupbintcp.connect_async(nasdaq_server, "user", "secret"))
    assert client.session_id == "NQSESS"
    got = [await within(client.receive_msg()) for _ in range(20)]
    assert got == [Message((i, HISTORY[i - 1])) for i in range(1, 21)]
    client.send_unseq_data(b"order-1")
    assert await within(client.receive_msg()) == Message((None, b"ack:order-1"))
    assert FeedSession.received == [b"order-1"]
    FeedSession.sessions[0].end_session()
    with pytest.raises(SessionEnded):
        await within(client.receive_msg())
    assert client.close_reason is soupbintcp.CloseReason.END_OF_SESSION


async def test_replay_from_a_sequence(nasdaq_server: tuple[str, int]) -> None:
    client = await within(
        soupbintcp.connect_async(nasdaq_server, "user", "secret", session_id="NQSESS", sequence=15)
    )
    got = [(await within(client.receive_msg())).sequence for _ in range(6)]
    assert got == list(range(15, 21))
    await client.logout()
    await wait_for(lambda: all(s.is_closed() for s in FeedSession.sessions))


@pytest.mark.parametrize(
    ("password", "session_id", "reason"),
    [
        ("wrong", "", RejectReason.NOT_AUTHORIZED),
        ("secret", "OTHER", RejectReason.SESSION_NOT_AVAILABLE),
    ],
)
async def test_rejections(
    nasdaq_server: tuple[str, int], password: str, session_id: str, reason: RejectReason
) -> None:
    with pytest.raises(LoginRejected) as info:
        await within(
            soupbintcp.connect_async(nasdaq_server, "user", password, session_id=session_id)
        )
    assert info.value.reason is reason
