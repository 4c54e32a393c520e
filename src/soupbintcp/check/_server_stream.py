"""Server cases: heartbeats both ways, Debug, Logout, client data, framing and bad input.

Layer 4. Timing windows are short (a few seconds at most) so the whole server suite stays
well under a minute against a local server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

from ._case import Failed, Level, NotApplicable, Target, shown
from ._link import Closed, Link
from ._packets import client_heartbeat, debug, logout, packet, unsequenced
from ._registry import register
from ._server_login import both
from ._server_target import ServerTarget

SERVER = Target.SERVER
#: The longest silence tolerated from a side that must speak "more than 1 second" apart.
CADENCE_LIMIT = 1.6


async def keep_talking(link: Link, seconds: float, every: float = 0.4) -> None:
    """Send Client Heartbeats every `every` seconds for `seconds` (a logged-in client)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            await link.send(client_heartbeat())
        except Closed:
            return
        await asyncio.sleep(every)


@register(
    SERVER, "server-heartbeat-cadence", Level.MUST, sections=both("1.3", "1.3"),
    quote="The server must send a Server Heartbeat packet anytime more than 1 second has "
    "past since the server last sent any data.",
    sends="a login at 0 (nothing to replay), then Client Heartbeats every 0.4 s for 2.6 s",
    expects=f"a packet from the server at least every {CADENCE_LIMIT} s, heartbeats 'H'",
)  # fmt: skip
async def heartbeat_cadence(server: ServerTarget, version: str) -> None:
    link, _, _ = await server.logged_in(version, sequence=0)
    start = time.monotonic()
    talker = asyncio.create_task(keep_talking(link, 2.6))
    await link.collect(2.6)
    await talker
    await link.close()
    times = [start, *link.arrivals[1:], time.monotonic()]
    gap = max(b - a for a, b in itertools.pairwise(times))
    if gap > CADENCE_LIMIT:
        raise Failed(f"{gap:.2f} s without a packet from the server (got {link.types()!r})")
    if b"H" not in link.types():
        raise Failed(f"no Server Heartbeat in 2.6 s of quiet stream (got {link.types()!r})")


@register(
    SERVER, "heartbeat-timeout-enforced", Level.MUST, sections={"4.10": "2.3.1"},
    quote="Heartbeat Timeout: Failure to receive a message or a heartbeat for the specified "
    "duration causes server socket to close",
    sends="a 4.10 Login Request with Heartbeat Timeout 600 ms, then silence",
    expects="the server closes the connection between 0.5 s and 3 s after the login",
)  # fmt: skip
async def timeout_enforced(server: ServerTarget, version: str) -> None:
    link, _, _ = await server.logged_in(version, sequence=0, heartbeat_ms=600)
    start = time.monotonic()
    closed = await link.closed_within(3)
    took = time.monotonic() - start
    await link.close()
    if not closed:
        raise Failed("still open 3 s after a login asking for a 600 ms heartbeat timeout")
    if took < 0.5:
        raise Failed(f"closed {took:.2f} s after the login, before the 600 ms timeout")


@register(
    SERVER, "client-heartbeats-keep-alive", Level.MUST, sections=both("2.3.3", "1.6.3"),
    quote="The client should send a Client Heartbeat Packet anytime more than 1 second passes "
    "where no data has been sent to the server.",
    sends="Client Heartbeats 'R' every 0.3 s for 2 s (4.10: Heartbeat Timeout 1000 ms)",
    expects="the connection stays open and no error; heartbeats are not a protocol error",
)  # fmt: skip
async def heartbeats_accepted(server: ServerTarget, version: str) -> None:
    link, _, _ = await server.logged_in(version, sequence=0, heartbeat_ms=1000)
    reader = asyncio.create_task(link.closed_within(2.2))
    await keep_talking(link, 2.0, every=0.3)
    closed = await reader
    await link.close()
    if closed:
        raise Failed(f"closed while the client sent heartbeats (got {link.types()!r})")


async def still_open(link: Link, seconds: float, what: str) -> None:
    """`Failed` if the server closes `link` within `seconds` (heartbeating meanwhile)."""
    talker = asyncio.create_task(keep_talking(link, seconds))
    closed = await link.closed_within(seconds)
    await talker
    await link.close()
    if closed:
        raise Failed(f"closed the connection after {what} (got {link.types()!r})")


@register(
    SERVER, "debug-before-login", Level.SHOULD, sections=both("2.1"),
    quote="A debug packet can be sent by either side of a SoupBinTCP connection at anytime. "
    "Debug Packets should be ignored by both client and server",
    sends="a Debug packet '+hello', then a valid Login Request",
    expects="Login Accepted",
)  # fmt: skip
async def debug_before_login(server: ServerTarget, version: str) -> None:
    link = await server.connect()
    await link.send(debug(b"hello from the conformance suite"))
    await link.send(server.login(version))
    try:
        kind, payload = await link.next_of(3)
    except (Closed, TimeoutError) as exc:
        raise Failed(f"no Login Accepted after a Debug packet ({type(exc).__name__})") from None
    finally:
        await link.close()
    if kind != b"A":
        raise Failed(f"answered a Debug then Login Request with {shown(kind + payload)}")


@register(
    SERVER, "debug-after-login", Level.SHOULD, sections=both("2.1"),
    quote="Debug Packets should be ignored by both client and server application software.",
    sends="a Debug packet after Login Accepted",
    expects="the connection stays open (1.5 s)",
)  # fmt: skip
async def debug_after_login(server: ServerTarget, version: str) -> None:
    link, _, _ = await server.logged_in(version, sequence=0)
    await link.send(debug(b"hello"))
    await still_open(link, 1.5, "a Debug packet")


@register(
    SERVER, "logout-closes", Level.MUST, sections=both("2.3.4", "1.6.4"),
    quote="Upon receiving a Logout Request Packet, the server will immediately terminate the "
    "connection and close the associated TCP/IP socket.",
    sends="Logout Request 'O' after Login Accepted",
    expects="the socket closed within 1 s",
)  # fmt: skip
async def logout_closes(server: ServerTarget, version: str) -> None:
    link, _, _ = await server.logged_in(version, sequence=0)
    await link.send(logout())
    closed = await link.closed_within(1)
    await link.close()
    if not closed:
        raise Failed("still open 1 s after Logout Request")


@register(
    SERVER, "unsequenced-after-login", Level.MUST, sections=both("2.3.2", "1.6.2"),
    quote="SoupBinTCP also permits the client to send messages to the server using "
    "Unsequenced Data Packets at any time after the Login Accepted Packet is received.",
    sends="Unsequenced Data 'U' (an empty one and a 1,000-byte one) after Login Accepted",
    expects="the connection stays open (1.5 s)",
)  # fmt: skip
async def unsequenced_after_login(server: ServerTarget, version: str) -> None:
    link, _, _ = await server.logged_in(version, sequence=0)
    await link.send(unsequenced(b"") + unsequenced(bytes(1000)))
    await still_open(link, 1.5, "Unsequenced Data")


@register(
    SERVER, "data-before-login-refused", Level.MUST, sections=both("2.3.1", "1.6.1"),
    quote="The SoupBinTCP client must send a Login Request Packet immediately upon "
    "establishing a new TCP/IP socket connection to the server.",
    sends="Unsequenced Data before any Login Request",
    expects="no Login Accepted and no Sequenced Data (closing is fine); the server lives on",
)  # fmt: skip
async def data_before_login(server: ServerTarget, version: str) -> None:
    link = await server.connect()
    await link.send(unsequenced(b"not logged in"))
    await link.collect(1.0)
    await link.close()
    served = [k + p for k, p in link.received if k in (b"A", b"S", b"U")]
    if served:
        raise Failed(f"answered data sent before login with {shown(served[0])}")
    await server.alive(version)


@register(
    SERVER, "second-login-request", Level.SHOULD, sections=both("2.2.1", "1.5.1"),
    quote="This packet will always be the first non-debug packet sent by the server after a "
    "successful login request (once: a second would restart the client's count).",
    sends="a second Login Request on a logged-in connection",
    expects="no second Login Accepted (ignore it or close)",
)  # fmt: skip
async def second_login(server: ServerTarget, version: str) -> None:
    link, _, _ = await server.logged_in(version, sequence=0)
    await link.send(server.login(version, sequence=0))
    await link.collect(1.0)
    await link.close()
    again = [k + p for k, p in link.received[1:] if k == b"A"]
    if again:
        raise Failed(f"a second Login Request got a second Login Accepted {shown(again[0])}")


@register(
    SERVER, "split-packets", Level.MUST, sections=both("1.1", "1.1"),
    quote="The SoupBinTCP logical packets do not necessarily map directly to physical packets "
    "on the underlying network socket; they may be broken apart",
    sends="a valid Login Request one byte per write, 10 ms apart",
    expects="Login Accepted",
)  # fmt: skip
async def split_packets(server: ServerTarget, version: str) -> None:
    link = await server.connect()
    try:
        for byte in server.login(version):
            await link.send(bytes((byte,)))
            await asyncio.sleep(0.01)
        kind, payload = await link.next_of(3)
    except (Closed, TimeoutError) as exc:
        raise Failed(f"a login sent byte by byte got no answer ({type(exc).__name__})") from None
    finally:
        await link.close()
    if kind != b"A":
        raise Failed(f"a login sent byte by byte was answered {shown(kind + payload)}")


@register(
    SERVER, "coalesced-packets", Level.MUST, sections=both("1.1", "1.1"),
    quote="... they may be broken apart or aggregated by the TCP/IP stack.",
    sends="Login Request then, after Login Accepted, Heartbeat, Unsequenced Data and "
    "Heartbeat in one write",
    expects="Login Accepted and the connection open (1 s)",
)  # fmt: skip
async def coalesced(server: ServerTarget, version: str) -> None:
    link, _, _ = await server.logged_in(version, sequence=0)
    beat = client_heartbeat()
    await link.send(beat + unsequenced(b"x") + beat)
    await still_open(link, 1.0, "three packets in one write")


async def survives(server: ServerTarget, version: str, data: bytes, logged_in: bool) -> None:
    """Send `data` (after logging in, or instead of it); the server may close this
    connection, but must not send data for it and must keep serving new ones."""
    if logged_in:
        link, _, _ = await server.logged_in(version, sequence=0)
    else:
        link = await server.connect()
    with contextlib.suppress(Closed):
        await link.send(data)
    await link.collect(0.5)
    await link.close()
    await server.alive(version)


@register(
    SERVER, "zero-length-packet", Level.MUST, sections=both("1.1", "1.1"),
    quote="a two byte big-endian length that indicates the length of rest of the packet (the "
    "packet type included: never 0); one bad connection must not take down the server",
    sends="after login: a packet of length 0 (b'\\x00\\x00')",
    expects="the server closes or ignores it, and a fresh connection still logs in",
)  # fmt: skip
async def zero_length(server: ServerTarget, version: str) -> None:
    await survives(server, version, b"\x00\x00" + client_heartbeat(), logged_in=True)


@register(
    SERVER, "unknown-packet-type", Level.MUST, sections=both("2.3", "1.6"),
    quote="Logical Packets Sent by the SoupBinTCP Client: L, U, R, O (and Debug); anything "
    "else is not SoupBinTCP and must not take down the server",
    sends="after login: a packet of type 'X' (b'\\x00\\x01X')",
    expects="the server closes or ignores it, and a fresh connection still logs in",
)  # fmt: skip
async def unknown_type(server: ServerTarget, version: str) -> None:
    await survives(server, version, packet(b"X"), logged_in=True)


@register(
    SERVER, "oversize-login-request", Level.MUST, sections=both("2.3.1", "1.6.1"),
    quote="Login Request Packet: 46 bytes of payload (51 with the 4.10 Heartbeat Timeout); "
    "a longer one is malformed and must not take down the server",
    sends="a Login Request of 1,000 bytes of payload",
    expects="no Login Accepted for it (reject or close), and a fresh connection still logs in",
)  # fmt: skip
async def oversize_login(server: ServerTarget, version: str) -> None:
    link = await server.connect()
    await link.send(packet(b"L", server.login(version)[3:] + b"9" * 949))
    await link.collect(1.0)
    await link.close()
    accepted = [k + p for k, p in link.received if k == b"A"]
    if accepted:
        raise Failed(f"accepted a 1,000-byte Login Request: {shown(accepted[0])}")
    await server.alive(version)


@register(
    SERVER, "truncated-login-then-close", Level.MUST, sections=both("1.1", "1.1"),
    quote="logical packets ... may be broken apart (and a peer may vanish mid-packet: the "
    "server must not wait on it or fail)",
    sends="the first 20 bytes of a Login Request, then the socket closed",
    expects="a fresh connection still logs in",
)  # fmt: skip
async def truncated_login(server: ServerTarget, version: str) -> None:
    link = await server.connect()
    await link.send(server.login(version)[:20])
    await link.close()
    await asyncio.sleep(0.1)
    await server.alive(version)


@register(
    SERVER, "largest-packet-accepted", Level.SHOULD, sections=both("1.1", "1.1"),
    quote="The SoupBinTCP protocol does not define a maximum payload length.",
    sends="Unsequenced Data of 65,534 bytes (the largest the length field allows)",
    expects="the connection stays open (1.5 s)",
)  # fmt: skip
async def largest_packet(server: ServerTarget, version: str) -> None:
    link, _, _ = await server.logged_in(version, sequence=0)
    await link.send(unsequenced(bytes(0xFFFE)))
    await still_open(link, 1.5, "a 65,534-byte Unsequenced Data")


@register(
    SERVER, "end-of-session-last", Level.MUST, sections=both("2.2.6"),
    quote="The server will send an End of Session Packet to denote that the current session "
    "is finished. The connection will be closed shortly after this packet",
    sends="a login at 1 to a session that has ended",
    expects="End of Session after the last message, nothing after it, the socket closed",
)  # fmt: skip
async def end_of_session_last(server: ServerTarget, version: str) -> None:
    base = await server.baseline()
    if b"Z" not in base.types:
        raise NotApplicable("the session has not ended: no End of Session to judge")
    link, _, _ = await server.logged_in(version, sequence=1)
    closed = await link.closed_within(10)
    await link.close()
    kinds = link.types().replace(b"+", b"")
    if b"Z" not in kinds or kinds.rstrip(b"H").index(b"Z") != len(kinds.rstrip(b"H")) - 1:
        raise Failed(f"End of Session is not the last data packet: {kinds[-20:]!r}")
    if not closed:
        raise Failed("the connection stayed open 10 s after End of Session")


@register(
    SERVER, "no-server-unsequenced-or-end", Level.MUST, sections={"omega-1.03": "1.5"},
    quote="Logical Packets Sent by Server: Login Accepted, Login Rejected, Sequenced Data, "
    "Server Heartbeat (no Unsequenced Data, no End of Session)",
    sends="a login at 1, the replay read until quiet",
    expects="no packet of type 'U' or 'Z'",
)  # fmt: skip
async def omega_packet_set(server: ServerTarget, version: str) -> None:
    base = await server.baseline()
    extra = bytes(sorted(set(base.types) - set(b"AJSH")))
    if extra:
        raise Failed(f"sent packet types {extra!r}, which Omega 1.03 has not: {base.types!r}")


@register(
    SERVER, "empty-message-ends-replay", Level.MAY, sections={"omega-1.03": "1.5.3"},
    quote="Message: Defined by a higher-level protocol, zero length indicates no more "
    "messages available.",
    sends="a login at 1, the replay read",
    expects="if an empty Sequenced Data comes, it follows every message held, not one mid-way",
)  # fmt: skip
async def omega_no_more(server: ServerTarget, version: str) -> None:
    await server.messages(1)
    link, _, _ = await server.logged_in(version, sequence=1)
    got = [p for k, p in await link.collect(1.0) if k == b"S"]
    await link.close()
    if b"" not in got:
        raise NotApplicable("no empty Sequenced Data was sent")
    held = [m for m in got if m]
    if got.index(b"") < len(held):
        raise Failed(
            f"an empty Sequenced Data came after {got.index(b'')} messages, {len(held)} "
            f"follow it (next {shown(held[got.index(b'')])})"
        )
