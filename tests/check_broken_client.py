"""A small SoupBinTCP client for the conformance suite's own tests: correct by default
(reconnecting, resuming at the next sequence number), broken on purpose in one way by
naming a fault (`FAULTS`). Written from the spec, not from the library."""

from __future__ import annotations

import asyncio
import contextlib
import struct

FAULTS = {
    "heartbeat-first": "a Client Heartbeat before the Login Request",
    "login-47-bytes": "a Login Request of 47 bytes",
    "credentials-left-padded": "username and password padded on the left",
    "sequence-not-numeric": "the Requested Sequence Number written as a word",
    "session-with-dash": "a Requested Session with a dash",
    "timeout-not-numeric": "the Heartbeat Timeout field not numeric",
    "no-heartbeats": "no Client Heartbeats",
    "heartbeat-before-accept-is-error": "a Server Heartbeat before Login Accepted closes",
    "debug-is-error": "a Debug packet closes",
    "unsequenced-is-error": "server Unsequenced Data closes (a 3.00 client)",
    "resume-from-1": "every reconnect asks for sequence 1",
    "counts-unsequenced": "server Unsequenced Data counted as sequenced",
    "counts-from-requested": "counts from what it asked (0), not from Login Accepted",
    "skips-empty-messages": "an empty Sequenced Data not counted (SoupBinTCP)",
    "counts-empty-marker": "the Omega no-more-messages marker counted",
    "partial-read-closes": "a read holding part of a packet closes",
    "max-message-1000": "a message over 1,000 bytes closes",
    "rejoins-after-end": "logs into the ended session again after End of Session",
    "reconnect-storm": "reconnects at once after Login Rejected, again and again",
    "sends-before-accept": "Unsequenced Data right after the Login Request",
    "session-padding-strict": "a Session padded on the right read as blank",
}


def pkt(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">H", len(payload) + 1) + kind + payload


class BrokenClient:
    def __init__(self, host: str, port: int, fault: str | None, dialect: str) -> None:
        assert fault is None or fault in FAULTS, fault
        self.address = (host, port)
        self.fault = fault
        self.omega = dialect == "omega"
        self.session = ""
        self.next = 0 if fault == "counts-from-requested" else 1
        self.stopped = False

    def has(self, fault: str) -> bool:
        return self.fault == fault

    def login(self) -> bytes:
        user, password = b"user".ljust(6), b"secret".ljust(10)
        if self.has("credentials-left-padded"):
            user, password = b"user".rjust(6), b"secret".rjust(10)
        session = self.session.encode().rjust(10)
        if self.has("session-with-dash"):
            session = b"-".rjust(10)
        number = str(self.next).encode().rjust(20)
        if self.has("sequence-not-numeric"):
            number = b"one".rjust(20)
        payload = user + password + session + number
        if not self.omega:
            payload += b"abcde" if self.has("timeout-not-numeric") else b" 5000"
        if self.has("login-47-bytes"):
            payload = payload[:46] + b" "
        return pkt(b"L", payload)

    async def run(self) -> None:
        while not self.stopped:
            try:
                reader, writer = await asyncio.open_connection(*self.address)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            try:
                again = await self.connection(reader, writer)
            except (ConnectionError, OSError):
                again = True
            finally:
                writer.close()
            if not again:
                return
            await asyncio.sleep(0 if self.has("reconnect-storm") else 0.1)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One connection; whether to reconnect afterwards."""
        if self.has("heartbeat-first"):
            writer.write(pkt(b"R"))
        writer.write(self.login())
        if self.has("sends-before-accept"):
            writer.write(pkt(b"U", b"too early"))
        logged = False
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        buffer = b""
        requested = self.next
        while True:
            if logged and loop.time() - last_sent > 0.5 and not self.has("no-heartbeats"):
                writer.write(pkt(b"R"))
                last_sent = loop.time()
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.1)
            except TimeoutError:
                continue
            if not chunk:
                return True
            if self.has("partial-read-closes") and _partial(buffer + chunk):
                return False
            buffer += chunk
            while len(buffer) >= 3 and len(buffer) >= 2 + struct.unpack_from(">H", buffer)[0]:
                (length,) = struct.unpack_from(">H", buffer)
                kind, payload = buffer[2:3], buffer[3 : 2 + length]
                buffer = buffer[2 + length :]
                if kind == b"+" and self.has("debug-is-error"):
                    return False
                if kind == b"H" and not logged and self.has("heartbeat-before-accept-is-error"):
                    return False
                if kind == b"A":
                    field = payload[:10]
                    self.session = field.decode().strip()
                    if self.has("session-padding-strict") and field.endswith(b" "):
                        self.session = ""
                    self.next = int(payload[10:30])
                    if self.has("counts-from-requested"):
                        self.next = requested
                    logged = True
                elif kind == b"J":
                    return self.has("reconnect-storm")
                elif kind == b"S":
                    if self.has("max-message-1000") and len(payload) > 1000:
                        return False
                    empty = not payload
                    counted = not empty or not self.omega or self.has("counts-empty-marker")
                    if counted and not (empty and self.has("skips-empty-messages")):
                        self.next += 1
                elif kind == b"U":
                    if self.has("unsequenced-is-error"):
                        return False
                    if self.has("counts-unsequenced"):
                        self.next += 1
                elif kind == b"Z":
                    return self.has("rejoins-after-end")
            if self.has("resume-from-1"):
                self.next, self.session = 1, self.session


def _partial(data: bytes) -> bool:
    offset = 0
    while offset + 2 <= len(data):
        offset += 2 + max(struct.unpack_from(">H", data, offset)[0], 1)
    return offset != len(data)


class Running:
    def __init__(self, client: BrokenClient) -> None:
        self.client = client
        self.task = asyncio.create_task(client.run())

    async def stop(self) -> None:
        self.client.stopped = True
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task


def launcher(fault: str | None, dialect: str = "soupbintcp"):  # type: ignore[no-untyped-def]
    async def launch(host: str, port: int) -> Running:
        return Running(BrokenClient(host, port, fault, dialect))

    return launch
