"""A small SoupBinTCP server for the conformance suite's own tests: correct by default, and
broken on purpose in exactly one way by naming a fault (`FAULTS`).

It is written from the spec, not from the library, so the suite's cases are seen to pass
against something other than our own server and to fail where that one rule is broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

MESSAGES = [b"m%d" % i for i in range(1, 21)]
USER, PASSWORD, SESSION = "user", "secret", "BROKEN1"

FAULTS = {
    "heartbeat-before-accept": "a Server Heartbeat before Login Accepted",
    "zero-padded-sequence": "Login Accepted's Sequence Number padded with zeros",
    "session-right-padded": "Login Accepted's Session padded on the right",
    "blank-session-in-accept": "Login Accepted names a blank session",
    "first-sequence-0": "a login at 1 accepted at 0",
    "replay-from-1": "every login replayed from 1 whatever it asked",
    "zero-replays-all": "a login at 0 treated as a login at 1",
    "hang-past-end": "no answer to a login beyond the end",
    "reject-named-session": "a login naming the session rejected 'S'",
    "accept-any-session": "any requested session accepted",
    "accept-any-password": "any password accepted",
    "case-sensitive": "username and password compared case-sensitively",
    "zero-padded-as-1": "a sequence number with leading zeros read as 1",
    "one-client-at-a-time": "a second concurrent login gets no replay",
    "no-heartbeats": "no Server Heartbeats",
    "ignore-heartbeat-timeout": "the 4.10 Heartbeat Timeout ignored (15 s)",
    "heartbeat-is-error": "a Client Heartbeat closes the connection",
    "debug-is-error": "a Debug packet closes the connection",
    "ignore-logout": "Logout Request ignored",
    "unsequenced-is-error": "Unsequenced Data closes the connection",
    "login-on-any-packet": "the first packet, whatever it is, logs in",
    "second-login-accepted": "a second Login Request accepted again",
    "partial-read-closes": "a read holding part of a packet closes the connection",
    "multi-packet-read-closes": "a read holding several packets closes the connection",
    "crash-on-zero-length": "a zero-length packet stops the server",
    "crash-on-unknown-type": "an unknown packet type stops the server",
    "accept-long-login": "a Login Request of any length accepted",
    "crash-on-truncated": "a connection closed mid-packet stops the server",
    "max-packet-1000": "packets over 1,000 bytes close the connection",
    "ended-data-after-z": "an ended session that sends data after End of Session",
    "omega-sends-z": "an Omega server that sends End of Session",
    "empty-message-mid-replay": "an Omega server that sends the empty message mid-replay",
}


def pkt(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">H", len(payload) + 1) + kind + payload


class BrokenServer:
    def __init__(self, fault: str | None = None, ended: bool = False) -> None:
        assert fault is None or fault in FAULTS, fault
        self.fault = fault
        self.ended = ended or fault == "ended-data-after-z"
        self.logged_in = 0
        self.server: asyncio.Server | None = None

    def has(self, fault: str) -> bool:
        return self.fault == fault

    def crash(self) -> None:
        if self.server is not None:
            self.server.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(self, reader, writer)
        try:
            await conn.run()
        except (ConnectionError, OSError):
            pass
        finally:
            self.logged_in -= int(conn.logged)
            writer.close()


class _Connection:
    def __init__(
        self, server: BrokenServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.s = server
        self.reader = reader
        self.writer = writer
        self.last_sent = asyncio.get_running_loop().time()
        self.last_heard = self.last_sent
        self.timeout = 15.0
        self.logged = False
        self.closed = False

    def send(self, data: bytes) -> None:
        self.writer.write(data)
        self.last_sent = asyncio.get_running_loop().time()

    async def run(self) -> None:
        timer = asyncio.create_task(self.timers())
        buffer = b""
        try:
            while not self.closed:
                chunk = await self.reader.read(65536)
                if not chunk:
                    if buffer and self.s.has("crash-on-truncated"):
                        self.s.crash()
                    return
                self.last_heard = asyncio.get_running_loop().time()
                if self.s.has("partial-read-closes") and _partial(buffer + chunk):
                    return
                if self.s.has("multi-packet-read-closes") and _count(chunk) > 1:
                    return
                buffer += chunk
                while len(buffer) >= 2 and not self.closed:
                    (length,) = struct.unpack_from(">H", buffer)
                    if length == 0:
                        if self.s.has("crash-on-zero-length"):
                            self.s.crash()
                        return
                    if len(buffer) < 2 + length:
                        break
                    kind, payload = buffer[2:3], buffer[3 : 2 + length]
                    buffer = buffer[2 + length :]
                    if self.s.has("max-packet-1000") and length > 1000:
                        return
                    await self.packet(kind, payload)
                await self.writer.drain()
        finally:
            timer.cancel()

    async def timers(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.05)
            now = loop.time()
            if now - self.last_sent > 1.0 and not self.s.has("no-heartbeats"):
                self.send(pkt(b"H"))
            if self.logged and now - self.last_heard > self.timeout:
                self.closed = True
                self.writer.close()
                return

    async def packet(self, kind: bytes, payload: bytes) -> None:
        s = self.s
        if kind == b"+":
            if s.has("debug-is-error"):
                self.closed = True
            return
        if not self.logged:
            if kind == b"L" or s.has("login-on-any-packet"):
                self.login(payload if kind == b"L" else b"")
            else:
                self.closed = True
            return
        if kind == b"R":
            self.closed = s.has("heartbeat-is-error")
        elif kind == b"U":
            self.closed = s.has("unsequenced-is-error")
        elif kind == b"O":
            self.closed = not s.has("ignore-logout")
        elif kind == b"L" and s.has("second-login-accepted"):
            self.send(pkt(b"A", SESSION.encode().rjust(10) + b"1".rjust(20)))
        else:
            if kind not in b"LO" and s.has("crash-on-unknown-type"):
                s.crash()
            self.closed = True

    def reject(self, code: bytes) -> None:
        self.send(pkt(b"J", code))
        self.closed = True

    def login(self, payload: bytes) -> None:
        s = self.s
        if len(payload) not in (46, 51) and not (s.has("accept-long-login") and len(payload) > 46):
            if not s.has("login-on-any-packet"):
                self.closed = True
                return
            payload = b" " * 46
        user, password = payload[0:6].decode().strip(), payload[6:16].decode().strip()
        session, number = payload[16:26].decode().strip(), payload[26:46].decode().strip()
        ok = (user, password) == (USER, PASSWORD)
        if not s.has("case-sensitive"):
            ok = (user.lower(), password.lower()) == (USER, PASSWORD)
        if not ok and not s.has("accept-any-password") and not s.has("login-on-any-packet"):
            return self.reject(b"A")
        if session and session != SESSION and not s.has("accept-any-session"):
            return self.reject(b"S")
        if session and s.has("reject-named-session"):
            return self.reject(b"S")
        if len(payload) >= 51 and payload[46:51].strip().isdigit():
            ms = int(payload[46:51])
            self.timeout = 15.0 if s.has("ignore-heartbeat-timeout") else ms / 1000
        n = len(MESSAGES)
        asked = int(number) if number.isdigit() else 1
        if number.startswith("0") and number != "0" and s.has("zero-padded-as-1"):
            asked = 1
        if asked > n + 1 and s.has("hang-past-end"):
            self.logged = True
            return
        start = n + 1 if asked == 0 or asked > n + 1 else asked
        if asked == 0 and s.has("zero-replays-all"):
            start = 1
        if s.has("heartbeat-before-accept"):
            self.send(pkt(b"H"))
        field = (
            SESSION.encode().ljust(10)
            if s.has("session-right-padded")
            else SESSION.encode().rjust(10)
        )
        if s.has("blank-session-in-accept"):
            field = b" " * 10
        shown = 0 if s.has("first-sequence-0") and start == 1 else start
        number_field = (
            str(shown).encode().rjust(20, b"0" if s.has("zero-padded-sequence") else b" ")
        )
        self.send(pkt(b"A", field + number_field))
        self.logged = True
        if s.has("replay-from-1"):
            start = 1
        if s.has("one-client-at-a-time") and s.logged_in:
            start = n + 1
        s.logged_in += 1
        for i, message in enumerate(MESSAGES[start - 1 :], start):
            self.send(pkt(b"S", message))
            if i == 2 and s.has("empty-message-mid-replay"):
                self.send(pkt(b"S"))
        if s.has("omega-sends-z") or s.ended:
            self.send(pkt(b"Z"))
            if s.has("ended-data-after-z"):
                self.send(pkt(b"S", b"after the end"))


def _count(data: bytes) -> int:
    n, offset = 0, 0
    while offset + 2 <= len(data):
        (length,) = struct.unpack_from(">H", data, offset)
        offset += 2 + max(length, 1)
        n += 1
    return n


def _partial(data: bytes) -> bool:
    offset = 0
    while offset + 2 <= len(data):
        (length,) = struct.unpack_from(">H", data, offset)
        offset += 2 + max(length, 1)
    return offset != len(data)


@contextlib.asynccontextmanager
async def broken_server(
    fault: str | None = None, ended: bool = False
) -> AsyncIterator[tuple[str, int]]:
    """Serve on a free loopback port; yields its address."""
    state = BrokenServer(fault, ended)
    state.server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    try:
        yield state.server.sockets[0].getsockname()[:2]
    finally:
        state.server.close()
