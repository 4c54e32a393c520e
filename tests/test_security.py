"""No one gets in: credentials checked in constant time and never written down, connection
caps, TLS on both clients and the server, and hostile bytes closed quietly.

"Quietly": the offending connection alone is closed, with one WARNING line and no
traceback; nothing is logged at ERROR or above, and the other clients notice nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import trustme

import soupbintcp
from soupbintcp import (
    ConnectionLost,
    LocalProtocolError,
    LoginRejected,
    LoginTimeout,
    MemoryStore,
    RemoteProtocolError,
    Server,
    SoupBinTCPError,
    serve,
)
from soupbintcp._server import _auth as _server_auth
from soupbintcp._server._auth import Credentials
from soupbintcp.lowlevel import (
    ClientSession,
    LoginRequestPacket,
    SequencedMessages,
    ServerConnectionState,
    decode_packet,
)

from .helpers import wire
from .reliability_support import numbered, numbered_range, wait_until
from .server_support import RawClient, closes, login_packet

GOOD = "Zq7Good9xK"  # 10 characters, the field's width
BAD = "Wr0ngPw9Qx"
MALFORMED = b"Qx\x01Malfrm9"  # a control byte: not a legal password field
SECRETS = (GOOD, BAD, "Malfrm", "Qx\\x01", "Qx\x01")
USER, SESSION = "user", "SESSION1"

# --- helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLS:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls() -> TLS:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return TLS(server_ctx, client_ctx)


def no_error_records(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing at ERROR or above, and no traceback, from any logger."""
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [f"{r.name} {r.levelname}: {r.getMessage()}" for r in bad]


async def receive_numbered(client: soupbintcp.AsyncClient, first: int, last: int) -> None:
    """Receive messages `first..last` exactly once, in order."""
    expected = first
    while expected <= last:
        for item in await asyncio.wait_for(client.receive_batch(), 10):
            assert type(item) is SequencedMessages
            assert item.first_sequence == expected
            assert item.messages == numbered_range(expected, item.next_sequence - 1)
            expected = item.next_sequence


@dataclass
class Bystander:
    """A logged-in client that keeps receiving while something else goes on."""

    server: Server
    client: soupbintcp.AsyncClient
    published: int = 0
    received: int = 0

    async def check(self, more: int = 100) -> None:
        first = self.published + 1
        self.published += more
        assert self.server.publish_many(numbered_range(first, self.published)) == first
        await receive_numbered(self.client, self.received + 1, self.published)
        self.received = self.published


# --- constant-time credential checks -----------------------------------------------------------

ENTRIES = {"alice": "pw-alice", "bob": "pw-bob", "carol": "Carol0pw", "dave": "d4ve", "eve": "e"}


@pytest.fixture
def compare_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every `hmac.compare_digest` call the credential check makes."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(_server_auth.hmac, "compare_digest", counting)  # type: ignore[attr-defined]
    return calls


LOGINS = {
    "first user, right password": ("alice", "pw-alice", "alice"),
    "middle user, right password": ("carol", "Carol0pw", "carol"),
    "last user, right password": ("eve", "e", "eve"),
    "username in another case": ("BOB", "pw-bob", "bob"),
    "right user, wrong password": ("alice", "pw-alicE!", None),
    "right user, password prefix": ("carol", "Carol", None),
    "right user, empty password": ("dave", "", None),
    "unknown user": ("mallor", "pw-alice", None),
    "unknown user, another's password": ("zed", "e", None),
    "empty username": ("", "", None),
}


def test_credential_check_compares_every_entry_whatever_matches(
    compare_calls: list[tuple[bytes, bytes]],
) -> None:
    """`Credentials.check` makes the same `compare_digest` calls, on operands of the same
    length, whether the user exists and where, and whether the password matches: its time
    says neither which usernames exist nor how much of a password was right."""
    creds = Credentials(ENTRIES)
    counts = {}
    for name, (username, password, expected) in LOGINS.items():
        compare_calls.clear()
        assert creds.check(username, password) == expected, name
        counts[name] = len(compare_calls)
        # compare_digest is constant-time for operands of equal length: padded fields.
        assert all(len(a) == len(b) for a, b in compare_calls), name
        assert {len(a) for a, _ in compare_calls} == {6, 10}, name
    assert set(counts.values()) == {2 * len(ENTRIES)}, counts


async def test_server_login_compares_every_entry_whatever_matches(
    compare_calls: list[tuple[bytes, bytes]],
) -> None:
    """The same through the server, Login Request by Login Request."""
    counts = {}
    async with serve(
        ("127.0.0.1", 0), store=MemoryStore(), session_id=SESSION, credentials=ENTRIES
    ) as server:
        for name, (username, password, expected) in LOGINS.items():
            raw = await RawClient.connect(server.address)
            compare_calls.clear()
            kind, _ = await raw.login(username=username or " ", password=password or " ")
            assert kind == (b"A" if expected else b"J"), name
            counts[name] = len(compare_calls)
            raw.close()
    assert set(counts.values()) == {2 * len(ENTRIES)}, counts


# --- no credential in logs or errors -----------------------------------------------------------


def raw_login(password_field: bytes, *, v410: bool) -> bytes:
    assert len(password_field) == 10
    payload = b"user  " + password_field + b"".rjust(10) + b"1".rjust(20)
    if v410:
        payload += b"5000".rjust(5)
    return wire(b"L", payload)


async def test_no_credential_in_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    """Logins with good and bad passwords, 4.00 and 4.10, asyncio and blocking clients, and
    malformed password fields; everything logged at DEBUG and every error raised: no
    password appears anywhere."""
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials={USER: GOOD},
        login_timeout=2,
    ) as server:
        server.publish_many(numbered_range(1, 3))
        address = server.address
        for hb in (None, 5000):  # 4.00, then 4.10 with its Heartbeat Timeout field
            kw = {"client_heartbeat_timeout_ms": hb}
            client = await soupbintcp.connect_async(address, USER, GOOD, **kw)  # type: ignore[arg-type]
            assert (await client.receive_msg()).data == numbered(1)
            await client.logout()
            # Case-insensitive, as the spec says.
            client = await soupbintcp.connect_async(address, "USER", GOOD.upper(), **kw)  # type: ignore[arg-type]
            await client.close()
            blocking = await asyncio.to_thread(soupbintcp.connect, address, USER, GOOD, **kw)  # type: ignore[arg-type]
            assert (await asyncio.to_thread(blocking.receive_msg, 5)).data == numbered(1)
            await asyncio.to_thread(blocking.logout)
            with pytest.raises(LoginRejected) as rejected:
                await soupbintcp.connect_async(address, USER, BAD, **kw)  # type: ignore[arg-type]
            errors.append(rejected.value)
            with pytest.raises(LoginRejected) as rejected:
                await asyncio.to_thread(soupbintcp.connect, address, USER, BAD, **kw)  # type: ignore[arg-type]
            errors.append(rejected.value)
            for field in (MALFORMED, b"\xffMalfrm\x7f\x7f ", BAD.encode()[:9] + b"\x00"):
                raw = await RawClient.connect(address)
                raw.send(raw_login(field, v410=hb is not None))
                assert await raw.closed_by_server()
        await wait_until(lambda: not server.connections, 5, "all connections closed")
    redacted = [r for r in closes(caplog) if "password field malformed" in r.getMessage()]
    assert len(redacted) == 6  # the malformed logins were logged, without their fields
    everything = "\n".join(
        [caplog.text, *(r.getMessage() for r in caplog.records)]
        + [f"{e!s} {e!r}" for e in errors]
        + [
            repr(LoginRequestPacket(USER, GOOD, SESSION, 1, 5000)),
            str(LoginRequestPacket(USER, BAD)),
        ]
    ).lower()
    for secret in SECRETS:
        assert secret.lower() not in everything, secret
    no_error_records(caplog)


@pytest.mark.parametrize("password", ["sécret12", "Toolong4Field", "two words"])
def test_invalid_password_is_not_quoted_in_the_error(password: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        ClientSession(USER, password)
    assert password not in f"{info.value!s} {info.value!r}"


@pytest.mark.parametrize("v410", [False, True], ids=["4.00", "4.10"])
def test_malformed_password_field_is_not_quoted_in_decode_errors(v410: bool) -> None:
    packet = raw_login(MALFORMED, v410=v410)
    with pytest.raises(RemoteProtocolError) as info:
        decode_packet(packet)
    session = ServerConnectionState(0.0)
    error: BaseException | None = None
    try:
        session.receive_data(packet, 0.0)
    except SoupBinTCPError as raised:
        error = raised
    error = error or session.error
    assert error is not None
    for exc in (info.value, error):
        assert "malfrm" not in f"{exc!s} {exc!r}".lower()


# --- caps --------------------------------------------------------------------------------------


def refused(caplog: pytest.LogCaptureFixture, why: str) -> list[logging.LogRecord]:
    return [r for r in closes(caplog) if " refused: " in r.getMessage() and why in r.getMessage()]


def evicted(caplog: pytest.LogCaptureFixture, why: str) -> list[logging.LogRecord]:
    return [r for r in closes(caplog) if " evicted " in r.getMessage() and why in r.getMessage()]


def port_of(raw: RawClient) -> int:
    return int(raw.writer.get_extra_info("sockname")[1])


async def test_max_pending_logins_and_max_connections_are_enforced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "soupbintcp.server")
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials={USER: GOOD},
        max_connections=25,
        max_pending_logins=10,
        login_timeout=30,
    ) as server:
        address = server.address
        logged = [await soupbintcp.connect_async(address, USER, GOOD) for _ in range(5)]
        published = 0

        async def all_receive(clients: list[soupbintcp.AsyncClient]) -> None:
            nonlocal published
            first, published = published + 1, published + 100
            assert server.publish_many(numbered_range(first, published)) == first
            for client in clients:
                await receive_numbered(client, first, published)

        try:
            # 20 connections that never log in: 10 may wait; each one past that evicts the
            # oldest waiting, so the 10 newest are left.
            idle = [await RawClient.connect(address) for _ in range(20)]
            await wait_until(
                lambda: len(evicted(caplog, "max_pending_logins 10")) == 10, 10, "10 evictions"
            )
            out, kept = idle[:10], idle[10:]
            assert all(await asyncio.gather(*(raw.closed_by_server(5) for raw in out)))
            assert len(server.connections) == 15
            await all_receive(logged)
            # A legitimate client gets in while the pending slots are taken (issue 15)...
            logged.append(await soupbintcp.connect_async(address, USER, GOOD, sequence=1))
            await receive_numbered(logged[-1], 1, published)
            assert len(evicted(caplog, "max_pending_logins 10")) == 11
            for raw in kept:
                raw.close()
            await wait_until(lambda: len(server.connections) == 6, 5, "idle ones gone")
            # ... and so do others, up to max_connections.
            logged += [
                await soupbintcp.connect_async(address, USER, GOOD, sequence=published + 1)
                for _ in range(19)
            ]
            assert len(server.connections) == 25
            extra = [await RawClient.connect(address) for _ in range(5)]
            assert all(await asyncio.gather(*(raw.closed_by_server(5) for raw in extra)))
            assert len(refused(caplog, "max_connections 25")) == 5
            await logged.pop().close()
            await wait_until(lambda: len(server.connections) == 24, 5, "one client left")
            logged.append(
                await soupbintcp.connect_async(address, USER, GOOD, sequence=published + 1)
            )
            await all_receive(logged)
        finally:
            for client in logged:
                await client.close()
    lines = refused(caplog, "") + evicted(caplog, "")
    assert len(lines) == 5 + 11  # refused when every slot is logged in; evicted otherwise
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in lines)
    no_error_records(caplog)


# --- TLS ---------------------------------------------------------------------------------------


async def test_tls_for_asyncio_and_blocking_clients(tls: TLS) -> None:
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials={USER: GOOD},
        ssl=tls.server,
    ) as server:
        server.publish_many(numbered_range(1, 5000))
        client = await soupbintcp.connect_async(server.address, USER, GOOD, ssl=tls.client)
        blocking = await asyncio.to_thread(
            soupbintcp.connect, server.address, USER, GOOD, ssl=tls.client
        )
        try:
            server.publish_many(numbered_range(5001, 10_000))
            await receive_numbered(client, 1, 10_000)
            got: list[bytes] = []
            while len(got) < 10_000:
                for item in await asyncio.to_thread(blocking.receive_batch, 10):
                    assert type(item) is SequencedMessages
                    assert item.first_sequence == len(got) + 1
                    got += item.messages
            assert got == numbered_range(1, 10_000)
            assert client._transport is not None
            assert client._transport.get_extra_info("ssl_object") is not None
        finally:
            await client.close()
            await asyncio.to_thread(blocking.close)


async def test_plaintext_clients_against_a_tls_server_fail_cleanly(
    tls: TLS, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "soupbintcp")
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials={USER: GOOD},
        ssl=tls.server,
    ) as server:
        with pytest.raises((ConnectionLost, LoginTimeout, OSError)):
            await asyncio.wait_for(
                soupbintcp.connect_async(server.address, USER, GOOD, login_timeout=5), 10
            )
        with pytest.raises((ConnectionLost, LoginTimeout, OSError)):
            await asyncio.to_thread(soupbintcp.connect, server.address, USER, GOOD, login_timeout=5)
        # The server still serves TLS clients.
        client = await soupbintcp.connect_async(server.address, USER, GOOD, ssl=tls.client)
        await client.close()
    no_error_records(caplog)
    assert GOOD not in caplog.text


async def test_tls_clients_against_a_plaintext_server_fail_cleanly(
    tls: TLS, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "soupbintcp")
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials={USER: GOOD},
        login_timeout=0.3,
    ) as server:
        with pytest.raises((ConnectionLost, OSError)):
            await asyncio.wait_for(
                soupbintcp.connect_async(server.address, USER, GOOD, ssl=tls.client), 10
            )
        with pytest.raises((ConnectionLost, OSError)):
            await asyncio.to_thread(
                soupbintcp.connect, server.address, USER, GOOD, ssl=tls.client, connect_timeout=5
            )
        await wait_until(lambda: not server.connections, 5, "connections closed")
    assert len(closes(caplog)) == 2
    assert all(r.levelno == logging.WARNING for r in closes(caplog))
    no_error_records(caplog)


async def test_untrusted_server_certificate_is_refused(
    tls: TLS, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = ssl.create_default_context()
    trustme.CA().configure_trust(stranger)  # another CA: the server's certificate is unknown
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials={USER: GOOD},
        ssl=tls.server,
    ) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.wait_for(
                soupbintcp.connect_async(server.address, USER, GOOD, ssl=stranger), 10
            )
        with pytest.raises((ssl.SSLCertVerificationError, ConnectionLost)):
            await asyncio.to_thread(soupbintcp.connect, server.address, USER, GOOD, ssl=stranger)
    no_error_records(caplog)


async def test_tls_connection_that_never_handshakes_is_closed_at_the_login_timeout(
    tls: TLS,
) -> None:
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials={USER: GOOD},
        ssl=tls.server,
        login_timeout=0.2,
    ) as server:
        raw = await RawClient.connect(server.address)
        try:
            assert await raw.closed_by_server(timeout=3)  # 15 login timeouts
        finally:
            raw.close()


async def test_tls_connections_in_the_handshake_count_against_the_caps(tls: TLS) -> None:
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials={USER: GOOD},
        ssl=tls.server,
        max_pending_logins=2,
        login_timeout=30,
    ) as server:
        raws = [await RawClient.connect(server.address) for _ in range(5)]
        try:
            closed = await asyncio.gather(*(raw.closed_by_server(timeout=2) for raw in raws))
            assert sum(closed) == 3
        finally:
            for raw in raws:
                raw.close()


# --- hostile bytes -----------------------------------------------------------------------------


def client_hello() -> bytes:
    """The first flight of a TLS client: what a TLS client sends a plaintext server."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


_rng = random.Random(41)
GARBAGE: dict[str, bytes] = {
    f"random {n} bytes #{i}": _rng.randbytes(n)
    for i, n in enumerate([1, 2, 3, 7, 64, 500, 4096, 70_000])
}
GARBAGE |= {
    "HTTP request": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8\r\n\r\n",
    "TLS ClientHello": client_hello(),
    "zeros": bytes(1000),
    "maximum length, then little": b"\xff\xffL" + b"x" * 100,
    "login then random bytes": login_packet(password=GOOD) + _rng.randbytes(3000),
    "login then HTTP": login_packet(password=GOOD) + b"POST / HTTP/1.1\r\n\r\n",
    "SSH banner": b"SSH-2.0-OpenSSH_9.6\r\n",
}


@pytest.fixture
async def bystander(caplog: pytest.LogCaptureFixture) -> AsyncIterator[Bystander]:
    caplog.set_level(logging.DEBUG)
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials={USER: GOOD},
        login_timeout=0.3,
        client_heartbeat_timeout=2,
    ) as server:
        client = await soupbintcp.connect_async(server.address, USER, GOOD)
        try:
            yield Bystander(server, client)
        finally:
            await client.close()


@pytest.mark.parametrize("case", list(GARBAGE))
async def test_garbage_is_closed_without_traceback_or_error(
    bystander: Bystander, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    await bystander.check()
    raw = await RawClient.connect(bystander.server.address)
    port = port_of(raw)
    raw.send(GARBAGE[case])
    await bystander.check()
    assert await raw.closed_by_server(timeout=5)
    await bystander.check()
    await wait_until(lambda: len(bystander.server.connections) == 1, 5, "closed")
    (line,) = [r for r in closes(caplog) if f":{port}" in r.getMessage()]
    assert line.levelno == logging.WARNING
    no_error_records(caplog)
    # The server still takes new clients.
    client = await soupbintcp.connect_async(bystander.server.address, USER, GOOD)
    assert tuple(await asyncio.wait_for(client.receive_msg(), 5)) == (1, numbered(1))
    await client.close()


@pytest.mark.parametrize("case", ["random 500 bytes #5", "HTTP request", "zeros"])
async def test_garbage_to_a_tls_server_is_closed_without_traceback_or_error(
    tls: TLS, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(
        ("127.0.0.1", 0),
        store=MemoryStore(),
        session_id=SESSION,
        credentials={USER: GOOD},
        ssl=tls.server,
        login_timeout=0.3,
    ) as server:
        client = await soupbintcp.connect_async(server.address, USER, GOOD, ssl=tls.client)
        watcher = Bystander(server, client)
        try:
            raw = await RawClient.connect(server.address)
            raw.send(GARBAGE[case])
            await watcher.check()
            assert await raw.closed_by_server(timeout=5)
            await watcher.check()
        finally:
            await client.close()
    no_error_records(caplog)
