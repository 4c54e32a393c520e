"""Server cases: logging in, the Login Accepted and Login Rejected packets, resuming.

Layer 4. Each procedure takes the `ServerTarget` and the spec version whose packets it uses
(``4.00`` and ``omega-1.03``: a 46-byte Login Request; ``4.10``: 51 bytes).
"""

from __future__ import annotations

import asyncio

from ._case import Failed, Level, NotApplicable, Target, shown
from ._link import Closed
from ._registry import register
from ._server_target import ServerTarget, read_stream

SERVER = Target.SERVER


def both(section: str, omega: str | None = None) -> dict[str, str]:
    """The versions a rule applies to: 4.00 and 4.10 (same numbering), and Omega's section."""
    out = {"4.00": section, "4.10": section}
    if omega:
        out["omega-1.03"] = omega
    return out


@register(
    SERVER, "login-accepted-first", Level.MUST, sections=both("2.2.1", "1.5.1"), gated=False,
    quote="This packet will always be the first non-debug packet sent by the server after a "
    "successful login request.",
    sends="a valid Login Request (blank session, sequence 1; 46 bytes, 51 for 4.10)",
    expects="Login Accepted (30-byte payload) as the first non-Debug packet",
)  # fmt: skip
async def login_accepted_first(server: ServerTarget, version: str) -> None:
    link, _, _ = await server.logged_in(version)
    await link.close()


@register(
    SERVER, "sequence-number-left-padded", Level.SHOULD, sections=both("2.2.1", "1.4"),
    levels={"omega-1.03": Level.MUST},
    quote="Sequence Number: ... Left padded with spaces. (Omega 1.4: Numeric fields use ASCII "
    "digits and are padded on the left with spaces.)",
    sends="a valid Login Request",
    expects="the 20-byte Sequence Number of Login Accepted is spaces then ASCII digits",
)  # fmt: skip
async def sequence_left_padded(server: ServerTarget, version: str) -> None:
    link = await server.connect()
    await link.send(server.login(version))
    kind, payload = await link.next_of(5)
    await link.close()
    field = payload[10:30]
    text = field.lstrip(b" ")
    if kind != b"A" or not text.isdigit() or (text.startswith(b"0") and text != b"0"):
        raise Failed(f"Sequence Number field {field!r} is not left-padded with spaces")


@register(
    SERVER, "session-left-padded", Level.SHOULD, sections=both("2.2.1", "1.5.1"),
    quote="Session: The session ID of the session that is now logged into. Left padded with "
    "spaces.",
    sends="a valid Login Request",
    expects="the 10-byte Session of Login Accepted has no trailing spaces (padding on the left)",
)  # fmt: skip
async def session_left_padded(server: ServerTarget, version: str) -> None:
    link = await server.connect()
    await link.send(server.login(version))
    kind, payload = await link.next_of(5)
    await link.close()
    field = payload[:10]
    if kind != b"A" or (field.strip(b" ") and field.endswith(b" ")):
        raise Failed(f"Session field {field!r} is padded on the right")


@register(
    SERVER, "blank-session-gets-current", Level.MUST, sections=both("1.2", "1.2"),
    quote="leave the Requested Session field blank ... The client will then inspect the Login "
    "Accepted Packet to determine the currently active session.",
    sends="a Login Request with a blank (all spaces) Requested Session",
    expects="Login Accepted naming a non-blank session",
)  # fmt: skip
async def blank_session(server: ServerTarget, version: str) -> None:
    link, session, _ = await server.logged_in(version, session="")
    await link.close()
    if not session:
        raise Failed("Login Accepted names a blank session: the client cannot resume it")


@register(
    SERVER, "first-sequence-is-1", Level.MUST, sections=both("1.2", "1.2"),
    quote="The sequence number of the first sequenced message in each session is always 1.",
    sends="a Login Request at sequence 1",
    expects="Login Accepted with Sequence Number 1",
)  # fmt: skip
async def first_sequence(server: ServerTarget, version: str) -> None:
    link, _, sequence = await server.logged_in(version, sequence=1)
    await link.close()
    if sequence != 1:
        raise Failed(f"a login at 1 is accepted at {sequence}")


@register(
    SERVER, "requested-sequence-n", Level.MUST, sections=both("2.3.1", "1.6.1"),
    quote="Requested Sequence Number: Specifies the next sequence number ... the client wants "
    "to receive upon connection.",
    sends="a Login Request at sequence 3 (the server holds at least 3 messages)",
    expects="Login Accepted at 3, then messages 3, 4, ... as a login at 1 showed them",
)  # fmt: skip
async def requested_n(server: ServerTarget, version: str) -> None:
    messages = await server.messages(3)
    base = await server.baseline()
    link, _, sequence = await server.logged_in(version, session=base.session, sequence=3)
    got, _ = await read_stream(link, server.dialect, len(messages) - 2)
    await link.close()
    if sequence != 3:
        raise Failed(f"a login at 3 is accepted at {sequence}")
    if got != messages[2:]:
        first = got[0] if got else b""
        raise Failed(
            f"from 3, {len(got)} messages arrived (first {shown(first)}); expected "
            f"{len(messages) - 2} starting {shown(messages[2])}"
        )


@register(
    SERVER, "requested-sequence-0", Level.MUST, sections=both("2.3.1", "1.6.1"),
    quote="Requested Sequence Number: ... or 0 to start receiving the most recently generated "
    "message.",
    sends="a Login Request at sequence 0 (the server holds N messages)",
    expects="Login Accepted at N or N+1, and no replay of older messages",
)  # fmt: skip
async def requested_zero(server: ServerTarget, version: str) -> None:
    messages = await server.messages(1)
    n = len(messages)
    base = await server.baseline()
    link, _, sequence = await server.logged_in(version, session=base.session, sequence=0)
    got, _ = await read_stream(link, server.dialect)
    await link.close()
    if sequence not in (n, n + 1):
        raise Failed(f"a login at 0 is accepted at {sequence}, with {n} messages held")
    if len(got) > n + 1 - sequence:
        raise Failed(f"a login at 0 replayed {len(got)} messages, first {shown(got[0])}")


@register(
    SERVER, "requested-sequence-past-end", Level.MUST, sections=both("2.3.1", "1.6.1"),
    quote="Requested Sequence Number: Specifies the next sequence number ... the client wants "
    "to receive (a number the session has not reached must still be answered).",
    sends="a Login Request at sequence N+100 (beyond the N messages held)",
    expects="an answer (Login Accepted or Rejected) within 5 s, no message replayed",
)  # fmt: skip
async def requested_past_end(server: ServerTarget, version: str) -> None:
    messages = await server.messages(0)
    base = await server.baseline()
    link = await server.connect()
    await link.send(server.login(version, session=base.session, sequence=len(messages) + 100))
    try:
        kind, payload = await link.next_of(5, skip=b"+H")
    except Closed:
        raise Failed("closed without answering a login beyond the end") from None
    except TimeoutError:
        raise Failed("no answer within 5 s to a login beyond the end") from None
    got = [] if kind != b"A" else (await read_stream(link, server.dialect))[0]
    await link.close()
    if kind not in b"AJ":
        raise Failed(f"answered a login beyond the end with {shown(kind + payload)}")
    if got:
        raise Failed(f"a login beyond the end got {len(got)} messages, first {shown(got[0])}")


@register(
    SERVER, "resume-after-cut", Level.MUST, sections=both("1.2", "1.2"),
    quote="the client can then re-log into the server indicating the current session and its "
    "next expected sequence number ... guaranteed to always receive every sequenced message "
    "in order",
    sends="a login at 1, two messages read, the connection cut; a login at 3 in that session",
    expects="the second connection gets messages 3, 4, ... exactly",
)  # fmt: skip
async def resume_after_cut(server: ServerTarget, version: str) -> None:
    messages = await server.messages(3)
    link, session, _ = await server.logged_in(version, sequence=1)
    got = [p for k, p in [await link.next_of(5, skip=b"+H") for _ in range(2)] if k == b"S"]
    await link.close()
    if got != messages[:2]:
        raise Failed(f"the first two messages were {[shown(m) for m in got]}")
    link, _, sequence = await server.logged_in(version, session=session, sequence=3)
    rest, _ = await read_stream(link, server.dialect, len(messages) - 2)
    await link.close()
    if sequence != 3 or rest != messages[2:]:
        first = rest[0] if rest else b""
        raise Failed(f"resumed at {sequence} with {len(rest)} messages, first {shown(first)}")


@register(
    SERVER, "named-session-accepted", Level.MUST, sections=both("2.3.1", "1.6.1"),
    quote="Requested Session: Specifies the session the client would like to log into",
    sends="a Login Request naming the session a blank login was given",
    expects="Login Accepted for that session",
)  # fmt: skip
async def named_session(server: ServerTarget, version: str) -> None:
    base = await server.baseline()
    link, session, _ = await server.logged_in(version, session=base.session)
    await link.close()
    if session != base.session:
        raise Failed(f"asked for session {base.session!r}, given {session!r}")


async def rejected(server: ServerTarget, version: str, login: bytes, code: bytes) -> None:
    link = await server.connect()
    await link.send(login)
    try:
        kind, payload = await link.next_of(5)
    except (Closed, TimeoutError) as exc:
        raise Failed(f"no Login Rejected {code!r} ({type(exc).__name__}: {exc})") from None
    closed = await link.closed_within(2)
    await link.close()
    if (kind, payload) != (b"J", code):
        raise Failed(f"expected Login Rejected {code!r}, got {shown(kind + payload)}")
    if not closed:
        raise Failed("the connection stayed open 2 s after Login Rejected")
    after = [k + p for k, p in link.received[1:] if k != b"+"]
    if after:
        raise Failed(f"sent {shown(after[0])} after Login Rejected")


@register(
    SERVER, "unknown-session-rejected", Level.MUST, sections=both("2.2.2", "1.5.2"),
    quote='"S" Session not available. The Requested Session in the Login Request Packet was '
    "either invalid or not available.",
    sends="a Login Request naming a session the server does not have (NOSUCHSES)",
    expects="Login Rejected 'S', then the socket closed",
)  # fmt: skip
async def unknown_session(server: ServerTarget, version: str) -> None:
    login = server.login(version, session=server.unknown_session)
    await rejected(server, version, login, b"S")


@register(
    SERVER, "bad-password-rejected", Level.MUST, sections=both("2.2.2", "1.5.2"),
    quote='"A" Not Authorized. There was an invalid username and password combination in the '
    "Login Request Message.",
    sends="a Login Request with a wrong password",
    expects="Login Rejected 'A', the only non-Debug packet, then the socket closed",
)  # fmt: skip
async def bad_password(server: ServerTarget, version: str) -> None:
    if not server.user:
        raise NotApplicable("no --user given: the server's credentials are unknown")
    await rejected(server, version, server.login(version, password=server.wrong_password), b"A")


@register(
    SERVER, "credentials-case-insensitive", Level.SHOULD, sections=both("2.3.1", "1.6.1"),
    quote="Both Username and Password are case-insensitive",
    sends="a Login Request with the username and password in the other letter case",
    expects="Login Accepted",
)  # fmt: skip
async def case_insensitive(server: ServerTarget, version: str) -> None:
    if (server.user + server.password).lower() == (server.user + server.password).upper():
        raise NotApplicable("the credentials have no letters")
    link, _, _ = await server.logged_in(
        version, user=server.user.swapcase(), password=server.password.swapcase()
    )
    await link.close()


@register(
    SERVER, "requested-sequence-zero-padded", Level.SHOULD, sections=both("2.3.1", "1.6.1"),
    quote="Requested Sequence Number: Numeric (a number in ASCII; clients differ in padding)",
    sends="a Login Request at 2 written 00000000000000000002",
    expects="Login Accepted at 2",
)  # fmt: skip
async def zero_padded(server: ServerTarget, version: str) -> None:
    await server.messages(2)
    link, _, sequence = await server.logged_in(version, sequence="2".rjust(20, "0"))
    await link.close()
    if sequence != 2:
        raise Failed(f"a login at 00000000000000000002 is accepted at {sequence}")


@register(
    SERVER, "two-clients-same-stream", Level.MUST, sections=both("1.2", "1.2"),
    quote="SoupBinTCP guarantees that the client receives each sequenced message generated by "
    "the server in the correct order (each client: one connection does not disturb another)",
    sends="two connections logging in at 1 at the same time",
    expects="both get the same messages as a login at 1 alone",
)  # fmt: skip
async def two_clients(server: ServerTarget, version: str) -> None:
    messages = await server.messages(1)

    async def one() -> list[bytes]:
        link, _, _ = await server.logged_in(version, sequence=1)
        got, _ = await read_stream(link, server.dialect, len(messages))
        await link.close()
        return got

    first, second = await asyncio.gather(one(), one())
    for got in (first, second):
        if got != messages:
            raise Failed(f"a concurrent login at 1 got {len(got)} of {len(messages)} messages")
