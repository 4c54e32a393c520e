"""Client cases about resuming: what the client asks for when it logs in again after a cut.

Layer 4. The suite logs the client in, sends a stream, closes the socket and reads the
Login Request of the client's next connection; a client that does not reconnect by itself
within 5 s makes these cases "n/a".
"""

from __future__ import annotations

import asyncio

from ._case import Failed, Level, NotApplicable, Target
from ._client_cases import SESSION, versions
from ._client_target import ClientTarget, LoginFields
from ._packets import login_accepted, packet, sequenced, unsequenced
from ._registry import register

CLIENT = Target.CLIENT


async def expect_resume(login: LoginFields, sequence: int, what: str) -> None:
    if login.session.strip() != SESSION.encode():
        raise Failed(f"after {what}, resumed in session {login.session!r}, not {SESSION!r}")
    if login.sequence != sequence:
        raise Failed(
            f"after {what}, asked for sequence {login.sequence_field!r}, expected {sequence}"
        )


async def cut_and_resume(client: ClientTarget, stream: bytes, expect: int, what: str) -> None:
    """Log the client in, send `stream`, cut; its next login must resume at `expect`."""
    async with client.run() as run:
        link, _ = await run.login()
        await link.send(stream)
        await asyncio.sleep(0.3)
        await link.close()
        login = await run.reconnect_login()
    await expect_resume(login, expect, what)


@register(
    CLIENT, "resume-after-cut", Level.MUST, sections=versions("1.2", "1.2"),
    quote="If the TCP/IP connection is ever broken, the client can then re-log into the "
    "server indicating the current session and its next expected sequence number.",
    sends="Login Accepted (session CHK1, sequence 1), three Sequenced Data, the socket closed",
    expects="if the client reconnects (5 s): a Login Request for CHK1 at sequence 4",
)  # fmt: skip
async def resume_after_cut(client: ClientTarget, version: str) -> None:
    stream = login_accepted(SESSION, 1) + b"".join(sequenced(b"m%d" % i) for i in (1, 2, 3))
    await cut_and_resume(client, stream, 4, "three messages from 1")


@register(
    CLIENT, "unsequenced-not-counted", Level.MUST, sections={"4.00": "2.2.4"},
    quote="These messages are unsequenced, and must not update the client's initial sequence "
    "number for any subsequent Login attempt.",
    sends="Login Accepted at 1, Sequenced, Unsequenced, Sequenced, Unsequenced; socket closed",
    expects="if the client reconnects: a Login Request at sequence 3",
)  # fmt: skip
async def unsequenced_not_counted(client: ClientTarget, version: str) -> None:
    u = unsequenced(b"not counted")
    stream = login_accepted(SESSION, 1) + sequenced(b"a") + u + sequenced(b"b") + u
    await cut_and_resume(client, stream, 3, "2 sequenced and 2 unsequenced messages")


@register(
    CLIENT, "count-from-login-accepted", Level.MUST, sections=versions("2.2.3", "1.5.3"),
    quote="the initial sequence number of the first Sequenced Data Packet for a given TCP/IP "
    "connection is specified in the Login Accepted Packet",
    sends="Login Accepted at the sequence asked (10 for a login at 0), two Sequenced Data, "
    "socket closed",
    expects="if the client reconnects: a Login Request at that sequence + 2",
)  # fmt: skip
async def count_from_accepted(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        link, login = await run.login()
        # Where the client asked (a client that asks for 0, new messages only, is told 10).
        first = login.sequence or 10
        await link.send(login_accepted(SESSION, first) + sequenced(b"one") + sequenced(b"two"))
        await asyncio.sleep(0.3)
        await link.close()
        again = await run.reconnect_login()
    await expect_resume(again, first + 2, f"Login Accepted at {first} and two messages")


@register(
    CLIENT, "empty-message-counted", Level.MUST, sections=versions("2.2.3"),
    quote="The SoupBinTCP protocol layer is opaque to the higher-level messages, and permits "
    "any value within its messages (an empty one too).",
    sends="Login Accepted at 1, an empty Sequenced Data, one of 'x', socket closed",
    expects="if the client reconnects: a Login Request at sequence 3",
)  # fmt: skip
async def empty_counted(client: ClientTarget, version: str) -> None:
    stream = login_accepted(SESSION, 1) + sequenced(b"") + sequenced(b"x")
    await cut_and_resume(client, stream, 3, "an empty and a one-byte message")


@register(
    CLIENT, "empty-message-not-counted", Level.MUST, sections={"omega-1.03": "1.5.3"},
    quote="Message: ... zero length indicates no more messages available.",
    sends="Login Accepted at 1, Sequenced Data 'x', an empty Sequenced Data, socket closed",
    expects="if the client reconnects: a Login Request at sequence 2",
)  # fmt: skip
async def empty_not_counted(client: ClientTarget, version: str) -> None:
    stream = login_accepted(SESSION, 1) + sequenced(b"x") + sequenced(b"")
    await cut_and_resume(client, stream, 2, "one message and the no-more-messages marker")


@register(
    CLIENT, "end-of-session-honoured", Level.SHOULD, sections=versions("2.2.6"),
    quote="The connection will be closed shortly after this packet, and the user will no "
    "longer be able to reconnect to the current session.",
    sends="Login Accepted (CHK1), a Sequenced Data, End of Session, the socket closed",
    expects="no reconnect to session CHK1 within 3 s (blank or another session is fine)",
)  # fmt: skip
async def end_of_session(client: ClientTarget, version: str) -> None:
    async with client.run() as run:
        link, _ = await run.login()
        await link.send(login_accepted(SESSION, 1) + sequenced(b"a") + packet(b"Z"))
        await asyncio.sleep(0.3)
        await link.close()
        try:
            login = await run.reconnect_login(3)
        except NotApplicable:
            return
    if login.session.strip() == SESSION.encode():
        raise Failed(f"after End of Session the client logs into {SESSION} again")


@register(
    CLIENT, "session-either-padding", Level.SHOULD, sections=versions("2.2.1"),
    quote="Session: ... Left padded with spaces (some servers pad on the right: the session "
    "is the same with the padding stripped).",
    sends="Login Accepted whose Session is 'CHK1' padded on the right, two Sequenced Data, "
    "the socket closed",
    expects="if the client reconnects: a Login Request for CHK1 at sequence 3",
)  # fmt: skip
async def session_padding(client: ClientTarget, version: str) -> None:
    stream = login_accepted(SESSION, 1, left_pad=False) + sequenced(b"a") + sequenced(b"b")
    await cut_and_resume(client, stream, 3, "a right-padded session and two messages")
