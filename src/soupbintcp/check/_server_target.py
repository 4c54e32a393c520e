"""The server under test, as the server cases reach it: connect, log in, and what it serves.

Layer 4. Before the cases that need them, the suite learns the session and the messages the
server holds by logging in at 1 and reading until the stream goes quiet (the baseline).
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
import time
from dataclasses import dataclass, field

from ._case import Failed, NotApplicable, shown
from ._link import Closed, Link, open_link
from ._packets import login_request, parse_number

__all__ = ["Baseline", "ServerTarget", "accepted_fields"]

#: How long a stream must stay without Sequenced Data to count as caught up.
QUIET = 0.4
#: At most this many messages are read for the baseline.
BASELINE_CAP = 20_000


@dataclass
class Baseline:
    """What one login at 1 showed: the session, the messages, every packet type seen."""

    session: str
    first: int
    messages: list[bytes]
    types: bytes
    #: Whether the login at 1 ended with End of Session (the session is over).
    ended: bool = False


def accepted_fields(kind: bytes, payload: bytes) -> tuple[str, int]:
    """Session and sequence number of a Login Accepted; `Failed` if it is not one."""
    if kind != b"A":
        raise Failed(f"expected Login Accepted, got {shown(kind + payload)}")
    if len(payload) != 30:
        raise Failed(f"Login Accepted of {len(payload)} payload bytes, not 30: {shown(payload)}")
    number = parse_number(payload[10:30])
    if number is None:
        raise Failed(f"Login Accepted sequence number {payload[10:30]!r} is not numeric")
    return payload[:10].decode("ascii", "replace").strip(), number


@dataclass
class ServerTarget:
    """Where the server listens and how to log into it."""

    host: str
    port: int
    user: str = ""
    password: str = ""
    session: str = ""
    dialect: str = "soupbintcp"
    tls: _ssl.SSLContext | None = None
    #: Wrong credentials and unknown sessions, for the rejection cases.
    wrong_password: str = "wrong-pw"  # noqa: S105 - a deliberately wrong one
    unknown_session: str = "NOSUCHSES"
    _baseline: Baseline | None = field(default=None, repr=False)
    _speaks: dict[str, str | None] = field(default_factory=dict, repr=False)
    _learning: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def connect(self) -> Link:
        """A new connection to the server (not logged in)."""
        return await open_link(self.host, self.port, self.tls)

    def login(
        self,
        version: str,
        *,
        session: str | None = None,
        sequence: int | str = 1,
        heartbeat_ms: int = 15_000,
        user: str | None = None,
        password: str | None = None,
    ) -> bytes:
        """A Login Request as `version` lays it out (4.10: with the Heartbeat Timeout)."""
        return login_request(
            self.user if user is None else user,
            self.password if password is None else password,
            self.session if session is None else session,
            sequence,
            heartbeat_ms if version == "4.10" else None,
        )

    async def logged_in(self, version: str, **login: object) -> tuple[Link, str, int]:
        """A connection logged in with `login`'s fields: link, session, next sequence number."""
        link = await self.connect()
        await link.send(self.login(version, **login))  # type: ignore[arg-type]
        try:
            kind, payload = await link.next_of(5)
        except Closed as exc:
            await link.close()
            raise Failed(f"closed instead of answering a valid Login Request ({exc})") from None
        except TimeoutError:
            await link.close()
            raise Failed("no answer to a valid Login Request within 5 s") from None
        if kind == b"J":
            await link.close()
            raise Failed(f"a valid Login Request was rejected: {shown(kind + payload)}")
        try:
            session, sequence = accepted_fields(kind, payload)
        except Failed:
            await link.close()
            raise
        return link, session, sequence

    async def gate(self, version: str) -> None:
        """`NotApplicable` if the server does not answer `version`'s Login Request at all
        (a 4.00 server and the 51-byte 4.10 one): asked once per version."""
        async with self._learning:
            if version not in self._speaks:
                link = await self.connect()
                try:
                    await link.send(self.login(version, sequence=0))
                    await link.next_of(5)
                    self._speaks[version] = None
                except (Closed, TimeoutError, Failed) as exc:
                    length = len(self.login(version)) - 3
                    self._speaks[version] = (
                        f"the server does not answer a {version} Login Request ({length} bytes: "
                        f"{type(exc).__name__}); see {version}/*/login-accepted-first"
                    )
                finally:
                    await link.close()
        reason = self._speaks[version]
        if reason is not None:
            raise NotApplicable(reason)

    async def baseline(self) -> Baseline:
        """The session and messages the server holds (read once, then kept)."""
        async with self._learning:
            if self._baseline is None:
                # 46 bytes: the Login Request every version takes.
                version = "4.00" if self.dialect == "soupbintcp" else "omega-1.03"
                link, session, first = await self.logged_in(version, sequence=1)
                messages, ended = await read_stream(link, self.dialect)
                await link.close()
                self._baseline = Baseline(session, first, messages, link.types(), ended)
            return self._baseline

    async def messages(self, at_least: int) -> list[bytes]:
        """The baseline's messages; `NotApplicable` when the server has fewer than needed."""
        base = await self.baseline()
        if base.first != 1:
            raise NotApplicable(f"a login at 1 starts at {base.first}: the history is not kept")
        if len(base.messages) < at_least:
            raise NotApplicable(
                f"the server holds {len(base.messages)} messages; the case needs {at_least}"
            )
        return base.messages

    async def alive(self, version: str) -> None:
        """`Failed` unless a fresh connection still logs in (the server survived)."""
        try:
            link, _, _ = await self.logged_in(version, sequence=0)
        except (Failed, Closed, OSError, TimeoutError) as exc:
            raise Failed(f"afterwards a fresh connection no longer logs in: {exc}") from None
        await link.close()


async def read_stream(
    link: Link, dialect: str, cap: int = BASELINE_CAP
) -> tuple[list[bytes], bool]:
    """The Sequenced Data that arrives until the stream is quiet, and whether it ended (End
    of Session, or the connection closed). An Omega empty message ends the replay too."""
    messages: list[bytes] = []
    deadline = time.monotonic() + 10
    last = time.monotonic()
    while len(messages) < cap and time.monotonic() < deadline:
        try:
            kind, payload = await link.packet(max(0.01, last + QUIET - time.monotonic()))
        except TimeoutError:
            return messages, False
        except Closed:
            return messages, True
        if kind == b"S":
            if not payload and dialect == "omega":
                return messages, False
            messages.append(payload)
            last = time.monotonic()
        elif kind == b"Z":
            return messages, True
    return messages, False
