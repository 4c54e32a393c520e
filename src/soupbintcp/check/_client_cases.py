"""Client cases: the suite is a scripted server and judges what the client sends.

Layer 4. Each procedure takes the `ClientTarget` and the version its id names; the client is
started (or reconnects) for each case. Cases that need the client to reconnect by itself
(resuming after a cut) answer "n/a" for a client that does not.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from ._case import Failed, Level, NotApplicable, Target
from ._client_target import ClientTarget
from ._link import Closed, Link
from ._packets import (
    debug,
    login_accepted,
    login_rejected,
    sequenced,
    server_heartbeat,
    unsequenced,
)
from ._registry import register

CLIENT = Target.CLIENT
SESSION = "CHK1"
CADENCE_LIMIT = 1.6


async def beat_for(link: Link, seconds: float, every: float = 0.5) -> bool:
    """Send Server Heartbeats for `seconds` while reading; True if the client closed."""

    async def talk() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                await link.send(server_heartbeat())
            except Closed:
                return
            await asyncio.sleep(every)

    talker = asyncio.create_task(talk())
    closed = await link.closed_within(seconds)
    talker.cancel()
    return closed


async def stays(link: Link, seconds: float, after: str) -> None:
    """`Failed` if the client closes within `seconds` (heartbeating meanwhile). Whether it
    keeps sending is the cadence case's business, not this one's."""
    if await beat_for(link, seconds):
        raise Failed(f"the client closed after {after} (it sent {link.types()!r})")


def versions(section: str, omega: str | None = None) -> dict[str, str]:
    out = {"4.10": section}
    if omega:
        out["omega-1.03"] = omega
    return out


@register(
    CLIENT, "login-request-first", Level.MUST, sections=versions("2.3.1", "1.6.1"),
    quote="The SoupBinTCP client must send a Login Request Packet immediately upon "
    "establishing a new TCP/IP socket connection to the server.",
    sends="nothing: waits for the client's first packet",
    expects="a Login Request 'L' as the first non-Debug packet, within 5 s",
)  # fmt: skip
async def login_first(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        await run.login()


@register(
    CLIENT, "login-request-length", Level.MUST, sections=versions("2.3.1", "1.6.1"),
    quote="Login Request Packet: Username 6, Password 10, Requested Session 10, Requested "
    "Sequence Number 20 (4.10: and Heartbeat Timeout 5)",
    sends="nothing: reads the Login Request",
    expects="a payload of 46 bytes, or 51 with the 4.10 Heartbeat Timeout (Omega: 46)",
)  # fmt: skip
async def login_length(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        _, login = await run.login()
    allowed = (46,) if version.startswith("omega") else (46, 51)
    if len(login.payload) not in allowed:
        raise Failed(f"a Login Request payload of {len(login.payload)} bytes, not {allowed}")


@register(
    CLIENT, "credentials-right-padded", Level.SHOULD, sections=versions("2.3.1", "1.6.1"),
    quote="Both Username and Password are case-insensitive and should be padded on the right "
    "with spaces.",
    sends="nothing: reads the Login Request",
    expects="Username and Password fields: printable text, then spaces only",
)  # fmt: skip
async def credentials_padded(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        _, login = await run.login()
    for name, raw in (("Username", login.user), ("Password", login.password)):
        text = raw.rstrip(b" ")
        if (raw.startswith(b" ") and text) or not all(32 < c < 127 for c in text):
            raise Failed(f"{name} field {raw!r} is not text padded on the right with spaces")


@register(
    CLIENT, "requested-sequence-numeric", Level.MUST, sections=versions("2.3.1", "1.4"),
    quote="Requested Sequence Number: Numeric ... in ASCII (Omega 1.4: ASCII digits padded "
    "on the left with spaces)",
    sends="nothing: reads the Login Request",
    expects="the 20-byte field holds ASCII digits and spaces only (Omega: spaces on the left)",
)  # fmt: skip
async def sequence_numeric(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        _, login = await run.login()
    field = login.sequence_field
    if login.sequence is None:
        raise Failed(f"Requested Sequence Number {field!r} is not a number in ASCII")
    if version.startswith("omega") and not field.lstrip(b" ").isdigit():
        raise Failed(f"Requested Sequence Number {field!r} is not padded on the left")


@register(
    CLIENT, "requested-session-alphanumeric", Level.MUST, sections=versions("2.3.1"),
    quote="Requested Session: Alphanumeric ... or all blanks to log into the currently active "
    "session.",
    sends="nothing: reads the Login Request",
    expects="the 10-byte Requested Session is all spaces, or letters and digits with spaces",
)  # fmt: skip
async def session_alphanumeric(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        _, login = await run.login()
    text = login.session.strip(b" ")
    if text and not text.isalnum():
        raise Failed(f"Requested Session {login.session!r} is not alphanumeric or blank")


@register(
    CLIENT, "heartbeat-timeout-numeric", Level.MUST, sections=versions("2.3.1"),
    quote="Heartbeat Timeout: offset 49, length 5, Numeric: Client Heartbeat Timeout in "
    "milliseconds.",
    sends="nothing: reads the Login Request",
    expects="in a 51-byte Login Request, the last 5 bytes are ASCII digits and spaces",
)  # fmt: skip
async def timeout_numeric(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        _, login = await run.login()
    if login.timeout_field is None:
        raise NotApplicable("a 4.00 Login Request (46 bytes): no Heartbeat Timeout")
    if len(login.payload) != 51 or parse_timeout(login.timeout_field) is None:
        raise Failed(f"Heartbeat Timeout {login.timeout_field!r} is not numeric")


def parse_timeout(raw: bytes) -> int | None:
    text = raw.strip(b" ")
    return int(text) if text.isdigit() else None


@register(
    CLIENT, "client-heartbeat-cadence", Level.MUST, sections=versions("1.3", "1.3"),
    quote="once logged in, the client must send a Client Heartbeat packet anytime more than "
    "1 second has passed since the client last sent anything.",
    sends="Login Accepted, then only Server Heartbeats every 0.5 s for 2.6 s",
    expects=f"a packet from the client at least every {CADENCE_LIMIT} s after Login Accepted",
)  # fmt: skip
async def heartbeat_cadence(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        link, _ = await run.login()
        await link.send(login_accepted(SESSION, 1))
        start, first = time.monotonic(), len(link.received)
        closed = await beat_for(link, 2.6)
        times = [start, *link.arrivals[first:], start + 2.6]
    gap = max(b - a for a, b in itertools.pairwise(times))
    if closed:
        raise Failed(f"the client closed while the server sent heartbeats ({link.types()!r})")
    if gap > CADENCE_LIMIT:
        raise Failed(f"{gap:.2f} s without a packet from the client ({link.types()!r})")


@register(
    CLIENT, "server-heartbeat-before-accept", Level.MUST, sections=versions("2.2.5", "1.5.4"),
    quote="The server should send a Server Heartbeat Packet anytime more than 1 second passes "
    "where no data has been sent to the client (a login answered late comes after some).",
    sends="Server Heartbeats for 1.2 s before Login Accepted, then heartbeats",
    expects="the client stays connected after Login Accepted (1.6 s)",
)  # fmt: skip
async def heartbeat_before_accept(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        link, _ = await run.login()
        if await beat_for(link, 1.2, every=0.3):
            raise Failed("the client closed on Server Heartbeats before Login Accepted")
        await link.send(login_accepted(SESSION, 1))
        await stays(link, 1.6, "Server Heartbeats before Login Accepted")


@register(
    CLIENT, "debug-tolerated", Level.SHOULD, sections=versions("2.1"),
    quote="A debug packet can be sent by either side ... at anytime. Debug Packets should be "
    "ignored by both client and server application software.",
    sends="Debug before Login Accepted and after it, then heartbeats",
    expects="the client stays connected (1.6 s)",
)  # fmt: skip
async def debug_tolerated(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        link, _ = await run.login()
        await link.send(debug(b"conformance suite") + login_accepted(SESSION, 1) + debug(b"x"))
        await stays(link, 1.6, "Debug packets")


@register(
    CLIENT, "server-unsequenced-tolerated", Level.MUST, sections={"4.00": "2.2.4"},
    quote="5.5.1 Added unsequenced data packets from the server to the client (4.00: a 4.x "
    "client must take them)",
    sends="Login Accepted, Sequenced, Unsequenced, Sequenced Data, then heartbeats",
    expects="the client stays connected (1.6 s)",
)  # fmt: skip
async def unsequenced_tolerated(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        link, _ = await run.login()
        await link.send(
            login_accepted(SESSION, 1) + sequenced(b"a") + unsequenced(b"u") + sequenced(b"b")
        )
        await stays(link, 1.6, "server Unsequenced Data")


@register(
    CLIENT, "split-packets", Level.MUST, sections=versions("1.1"),
    quote="The SoupBinTCP logical packets do not necessarily map directly to physical packets "
    "on the underlying network socket; they may be broken apart",
    sends="Login Accepted and three Sequenced Data one byte per write, then heartbeats",
    expects="the client stays connected (1.6 s)",
)  # fmt: skip
async def split_packets(client: ClientTarget, version: str) -> None:
    stream = login_accepted(SESSION, 1) + b"".join(sequenced(b"m%d" % i) for i in (1, 2, 3))
    async with client.run() as run:
        link, _ = await run.login()
        try:
            for byte in stream:
                await link.send(bytes((byte,)))
                await asyncio.sleep(0.002)
        except Closed:
            raise Failed("the client closed while packets came a byte at a time") from None
        await stays(link, 1.6, "packets sent a byte at a time")


@register(
    CLIENT, "large-message", Level.MUST, sections=versions("1.1"),
    quote="The SoupBinTCP protocol does not define a maximum payload length.",
    sends="Login Accepted, Sequenced Data of 65,534 bytes and one of 'x', then heartbeats",
    expects="the client stays connected (1.6 s)",
)  # fmt: skip
async def large_message(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        link, _ = await run.login()
        await link.send(login_accepted(SESSION, 1) + sequenced(bytes(0xFFFE)) + sequenced(b"x"))
        await stays(link, 1.6, "a 65,534-byte message")


@register(
    CLIENT, "login-rejected-no-storm", Level.SHOULD, sections=versions("2.2.2", "1.5.2"),
    quote="The server closes the socket connection after sending the Login Reject Packet "
    "(a client that reconnects at once, again and again, only gets the same answer).",
    sends="Login Rejected 'A' to every login, the socket closed, for 3 s",
    expects="at most 3 connections in those 3 s",
)  # fmt: skip
async def no_storm(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        deadline = time.monotonic() + 3
        count = 0
        while time.monotonic() < deadline:
            try:
                link = await run.accept(max(0.01, deadline - time.monotonic()))
            except Failed:
                break
            count += 1
            await link.send(login_rejected(b"A"))
            await link.close()
    if count > 3:
        raise Failed(f"{count} connections in 3 s after Login Rejected 'A'")


@register(
    CLIENT, "no-data-before-accept", Level.MUST, sections=versions("1.2", "1.2"),
    quote="SoupBinTCP also permits the client to send messages to the server using "
    "Unsequenced Data Packets at any time after the Login Accepted Packet is received.",
    sends="no answer to the Login Request for 1.2 s, then Login Accepted",
    expects="no Unsequenced Data 'U' before Login Accepted",
)  # fmt: skip
async def no_data_before_accept(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        link, _ = await run.login()
        await link.collect(1.2)
        early = [p for k, p in link.received if k == b"U"]
        if early:
            raise Failed(f"Unsequenced Data {early[0]!r} sent before Login Accepted")
        await link.send(login_accepted(SESSION, 1))
