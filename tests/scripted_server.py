"""A small asyncio SoupBinTCP server for client tests, built on `ServerSession`.

It serves a history of sequenced messages from any requested sequence, then what is
published live, with heartbeats; and it can misbehave on request (never answer the login,
answer with arbitrary bytes, go silent) so the client's failure paths can be tested.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from ssl import SSLContext
from typing import cast

from soupbintcp import RejectReason, SoupBinTCPError
from soupbintcp.lowlevel import (
    LoginRequestPacket,
    LogoutRequestPacket,
    ServerConnectionState,
    UnsequencedDataPacket,
)


class _Conn(asyncio.Protocol):
    def __init__(self, server: ScriptedServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.session = ServerConnectionState(
            self.loop.time(),
            heartbeat_interval=server.heartbeat_interval,
            client_heartbeat_timeout=server.client_heartbeat_timeout,
        )
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.cursor = 0  # index into history of the next message to send
        self.received: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server.connections.add(self)
        self.server.connection_count += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.timer:
            self.timer.cancel()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.session.receive_data(data, self.loop.time())
        except SoupBinTCPError:
            self.abort()
            return
        for event in events:
            if isinstance(event, LoginRequestPacket):
                self.login(event)
            elif isinstance(event, UnsequencedDataPacket):
                self.server.unsequenced.append(event.data)
                if self.server.echo_unsequenced:
                    self.write(self.session.send_unsequenced(b"echo:" + event.data, self.now))
            elif isinstance(event, LogoutRequestPacket):
                self.server.logouts += 1
                assert self.transport is not None
                self.transport.close()

    @property
    def now(self) -> float:
        return self.loop.time()

    def login(self, request: LoginRequestPacket) -> None:
        server = self.server
        server.logins.append(request)
        if server.silent_login:
            return
        if server.login_reply is not None:
            self.write(server.login_reply)
            return
        if server.reject is not None:
            self.write(self.session.reject(server.reject, self.now))
            assert self.transport is not None
            self.transport.close()
            return
        if request.session not in ("", server.session_id):
            self.write(self.session.reject(RejectReason.SESSION_NOT_AVAILABLE, self.now))
            assert self.transport is not None
            self.transport.close()
            return
        end = len(server.history) + 1
        start = end if request.sequence == 0 else min(max(request.sequence, 1), end)
        start = max(1, start - server.resend_overlap)
        self.write(self.session.accept(server.session_id, start, self.now))
        self.cursor = start - 1
        self.flush()
        self.schedule()

    def flush(self) -> None:
        from soupbintcp.lowlevel import ServerState

        if self.session.state is not ServerState.LOGGED_IN:
            return
        history = self.server.history
        if self.cursor < len(history):
            self.write(self.session.send_sequenced_many(history[self.cursor :], self.now))
            self.cursor = len(history)
        if self.server.ended:
            self.write(self.session.end_session(self.now))

    def schedule(self) -> None:
        deadline = self.session.next_timer()
        if deadline is not None and not self.server.silent:
            self.timer = self.loop.call_at(deadline, self.on_timer)

    def on_timer(self) -> None:
        try:
            out = self.session.handle_timer(self.now)
        except SoupBinTCPError:
            self.abort()
            return
        if out:
            self.write(out)
        self.schedule()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class ScriptedServer:
    def __init__(self, session_id: str = "SESSION1") -> None:
        self.session_id = session_id
        self.history: list[bytes] = []
        self.connections: set[_Conn] = set()
        self.logins: list[LoginRequestPacket] = []
        self.unsequenced: list[bytes] = []
        self.logouts = 0
        self.connection_count = 0
        self.ended = False
        # misbehaviour knobs
        self.silent_login = False  # never answer a Login Request
        self.silent = False  # no heartbeats
        self.login_reply: bytes | None = None  # raw bytes instead of an answer
        self.reject: RejectReason | None = None
        self.resend_overlap = 0  # resume this many messages before the requested one
        self.echo_unsequenced = False
        self.heartbeat_interval = 1.0
        self.client_heartbeat_timeout = 15.0
        self._server: asyncio.Server | None = None

    async def start(self, ssl: SSLContext | None = None) -> tuple[str, int]:
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Conn(self), "127.0.0.1", 0, ssl=ssl
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    def publish(self, *messages: bytes) -> None:
        self.history.extend(messages)
        for conn in list(self.connections):
            conn.flush()

    def end_session(self) -> None:
        self.ended = True
        for conn in list(self.connections):
            conn.flush()

    def send_raw(self, data: bytes) -> None:
        for conn in list(self.connections):
            conn.write(data)

    def each(self, fn: Callable[[_Conn], None]) -> None:
        for conn in list(self.connections):
            fn(conn)

    def drop_all(self) -> None:
        self.each(lambda c: c.abort())

    async def close(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
