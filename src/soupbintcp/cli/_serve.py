"""`soupbintcp serve`: run a server on a journal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl as _ssl
from pathlib import Path
from typing import Any, Protocol

import click

import soupbintcp
from soupbintcp.gateways import soupbintcp_to_mold
from soupbintcp.store import FileStore, MessageStore
from soupbintcp.store import import_binaryfile as import_binary_file

from ._common import (
    ADDRESS,
    UserError,
    credential_options,
    read_credentials_file,
    stderr,
)
from ._run import run_async
from ._synthetic import synthetic_messages

DEFAULT_STORE = Path("soupbintcp-data") / "feed.soup"
DEFAULT_SESSION = "SESSION1"


def server_credentials(
    user: str | None, password: str | None, credentials_file: Path | None, no_auth: bool
) -> dict[str, str] | None:
    """The accepted username/password pairs, or None when any login is accepted."""
    creds: dict[str, str] = {}
    if credentials_file is not None:
        creds.update(read_credentials_file(credentials_file))
    if user is not None:
        creds[user] = password or ""
    if creds:
        return creds
    if no_auth:
        return None
    raise UserError(
        "no credentials: give --user with SOUPBINTCP_PASSWORD (or --password), "
        "--credentials-file, or --no-auth to accept any login"
    )


class Publisher(Protocol):
    """What `_generate` publishes into: a server, or (for `mold serve`) a journal."""

    @property
    def store(self) -> MessageStore: ...

    def publish_many(self, messages: list[bytes]) -> int: ...


async def _generate(server: Publisher, rate: float, stop: asyncio.Event) -> None:
    """Publish synthetic messages at `rate` per second, in 10 ms batches."""
    loop = asyncio.get_running_loop()
    tick = 0.01
    started = loop.time()
    sent = 0
    while not stop.is_set():
        due = int((loop.time() - started) * rate) - sent
        if due > 0:
            first = server.store.count + 1
            server.publish_many(synthetic_messages(first, due))
            sent += due
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), tick)


@click.command("serve")
@click.option(
    "--listen",
    type=ADDRESS,
    default="127.0.0.1:7000",
    show_default=True,
    help="Address to listen on (0.0.0.0:PORT for every interface).",
)
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_STORE,
    show_default=True,
    help="Journal to serve; created if missing.",
)
@click.option("--session", "session_id", help="Session id (default: the journal's, or SESSION1).")
@credential_options
@click.option("--no-auth", is_flag=True, help="Accept any username and password.")
@click.option(
    "--import-binaryfile",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Serve a Nasdaq BinaryFILE (e.g. ITCH 5.0) as is: imported into an empty journal.",
)
@click.option("--generate", type=click.FloatRange(min=0, min_open=True), metavar="RATE",
              help="Publish a synthetic feed at RATE messages per second.")  # fmt: skip
@click.option("--heartbeat-interval", type=float, default=1.0, show_default=True)
@click.option("--client-heartbeat-timeout", type=float, default=15.0, show_default=True)
@click.option("--login-timeout", type=float, default=30.0, show_default=True)
@click.option("--tls-cert", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--tls-key", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--end-session/--keep-session",
    default=True,
    show_default=True,
    help="On Ctrl-C, send End of Session to clients (or leave the session open for a restart).",
)
@click.option("--mold-group", type=ADDRESS, metavar="GROUP:PORT",
              help="Also transmit the journal on this MoldUDP64 multicast group.")  # fmt: skip
@click.option("--mold-request-listen", type=ADDRESS, metavar="HOST:PORT",
              help="The MoldUDP64 re-request server's address (with --mold-group).")  # fmt: skip
@click.option("--mold-interface", metavar="ADDR", help="Multicast interface for --mold-group.")
@click.option("--mold-ttl", type=click.IntRange(0, 255), default=1, show_default=True)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="On Ctrl-C, seconds the clients get to receive the rest (and End of Session).",
)
@click.pass_context
def command(
    ctx: click.Context,
    listen: tuple[str, int],
    store_path: Path,
    session_id: str | None,
    user: str | None,
    password: str | None,
    credentials_file: Path | None,
    no_auth: bool,
    import_binaryfile: Path | None,
    generate: float | None,
    heartbeat_interval: float,
    client_heartbeat_timeout: float,
    login_timeout: float,
    tls_cert: Path | None,
    tls_key: Path | None,
    end_session: bool,
    mold_group: tuple[str, int] | None,
    mold_request_listen: tuple[str, int] | None,
    mold_interface: str | None,
    mold_ttl: int,
    drain_timeout: float,
) -> int:
    """Serve the journal at --store to SoupBinTCP clients until Ctrl-C.

    Clients replay from any sequence number, then receive what is published live. Ctrl-C
    (or SIGTERM) stops publishing, sends End of Session, lets the clients receive the rest
    for up to --drain-timeout seconds and closes the journal cleanly.
    """
    credentials = server_credentials(user, password, credentials_file, no_auth)
    if (mold_group is None) != (mold_request_listen is None):
        raise UserError("--mold-group and --mold-request-listen go together")
    mold = (
        None if mold_group is None else (mold_group, mold_request_listen, mold_interface, mold_ttl)
    )
    ssl_context = None
    if tls_cert is not None:
        ssl_context = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(tls_cert, tls_key)
    elif tls_key is not None:
        raise UserError("--tls-key needs --tls-cert")
    store_path.parent.mkdir(parents=True, exist_ok=True)
    store = FileStore(store_path, session_id=session_id)
    try:
        if import_binaryfile is not None:
            if store.count:
                raise UserError(
                    f"--import-binaryfile needs an empty journal; {store_path} already holds "
                    f"{store.count:,} messages (give a new --store)"
                )
            imported = import_binary_file(import_binaryfile, store)
            stderr.print(f"imported {imported:,} messages from {import_binaryfile}")
        session = session_id or store.session_id or DEFAULT_SESSION
        return run_async(
            _serve(
                listen,
                store,
                session,
                credentials,
                generate,
                heartbeat_interval,
                client_heartbeat_timeout,
                login_timeout,
                ssl_context,
                end_session,
                mold,
                drain_timeout,
            ),
            ctx.obj["loop"],
        )
    finally:
        store.close()


async def _serve(
    listen: tuple[str, int],
    store: FileStore,
    session_id: str,
    credentials: dict[str, str] | None,
    generate: float | None,
    heartbeat_interval: float,
    client_heartbeat_timeout: float,
    login_timeout: float,
    ssl_context: _ssl.SSLContext | None,
    end_session: bool,
    mold: tuple[Any, ...] | None = None,
    drain_timeout: float = 5.0,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    auth = (
        {"credentials": credentials}
        if credentials is not None
        else {"authenticate": lambda *_: True}
    )
    server = await soupbintcp.serve(
        listen,
        store=store,
        session_id=session_id,
        heartbeat_interval=heartbeat_interval,
        client_heartbeat_timeout=client_heartbeat_timeout,
        login_timeout=login_timeout,
        ssl=ssl_context,
        drain_timeout=drain_timeout,
        **auth,
    )
    host, port = server.address[:2]
    stderr.print(
        f"serving session {session_id!r} from {store.path} ({store.count:,} messages) "
        f"on {host}:{port}"
        + (" with TLS" if ssl_context else "")
        + ("" if credentials is not None else " (any login accepted)")
    )
    multicast = None
    if mold is not None:
        group, request_listen, interface, ttl = mold
        multicast = await soupbintcp_to_mold(
            server, group, request_listen, interface=interface, ttl=ttl
        )
        where = multicast.requests.address
        stderr.print(
            f"also on MoldUDP64 {group[0]}:{group[1]}, re-requests on {where[0]}:{where[1]}"
        )
    generator = loop.create_task(_generate(server, generate, stop)) if generate else None
    try:
        await stop.wait()
    finally:
        if generator is not None:
            await generator
        if end_session:
            await server.end_session()
            if multicast is not None:
                await multicast.end_session()
        if multicast is not None:
            await multicast.close()
        await server.close()
        stderr.print(
            f"stopped: session {session_id!r} "
            f"{'ended' if end_session else 'left open'}, journal holds {store.count:,} messages"
        )
    return 0
