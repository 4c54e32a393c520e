"""`soupbintcp serve`: run a server on a journal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl as _ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import click

import soupbintcp
from soupbintcp.gateways import soupbintcp_to_mold
from soupbintcp.store import Durability, FileStore, MessageStore
from soupbintcp.store import import_binaryfile as import_binary_file

from ._common import (
    ADDRESS,
    UserError,
    credential_options,
    durability_options,
    plural,
    read_credentials_file,
    seconds,
    stderr,
)
from ._ops import metrics_option, operations, status_option
from ._replay import PACES, parse_pace, replay
from ._run import run_async
from ._serve_log import is_log_url, serve_log
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
    "store_spec",
    metavar="FILE|nats://HOST:PORT[,HOST:PORT...]/STREAM",
    default=str(DEFAULT_STORE),
    show_default=True,
    help="Journal to serve; created if missing. Or a feed's replicated log (NATS JetStream): "
    "this process is then one of its gateways (see docs/scale-out.md).",
)
@click.option("--cache", type=click.Path(path_type=Path, dir_okay=False),
              help="With a log --store: the local journal the gateway follows it into "
              "[default: soupbintcp-data/STREAM.cache.soup].")  # fmt: skip
@click.option("--replicas", type=click.IntRange(1, 5),
              help="With a log --store: copies of a stream the writer creates "
              "[default: 3, or the cluster's size if smaller].")  # fmt: skip
@click.option("--session", "session_id", help="Session id (default: the journal's, or SESSION1).")
@credential_options
@click.option("--no-auth", is_flag=True, help="Accept any username and password.")
@click.option(
    "--import-binaryfile",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Serve a Nasdaq BinaryFILE (e.g. ITCH 5.0) as is: imported into an empty journal.",
)
@click.option(
    "--pace",
    metavar="|".join(PACES),
    help="Replay --import-binaryfile live at its ITCH timestamps: 1x as the market "
    "did, 10x ten times faster (any factor), max as fast as possible.",
)
@click.option(
    "--end-session-after-replay",
    is_flag=True,
    help="Send End of Session once the whole --import-binaryfile is published, so "
    "that clients stop by themselves (late ones still get it all, then the end).",
)
@click.option(
    "--generate",
    type=click.FloatRange(min=0, min_open=True),
    metavar="RATE",
    help="Publish a synthetic ITCH 5.0 feed at RATE messages per second.",
)
@durability_options
@click.option(
    "--heartbeat-interval",
    type=float,
    default=1.0,
    show_default=True,
    help=seconds("Send a Server Heartbeat after this long without sending"),
)
@click.option(
    "--client-heartbeat-timeout",
    type=float,
    default=15.0,
    show_default=True,
    help=seconds("Close a client not heard from for this long"),
)
@click.option(
    "--login-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help=seconds("Close a connection (and its TLS handshake) not logged in by then"),
)
@click.option(
    "--stall-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help=seconds("Drop a client whose writes stay blocked this long (0: never)"),
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    help="Refuse connections past this many at once (default: no limit).",
)
@click.option(
    "--tls-cert",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Serve TLS with this certificate chain (PEM; may hold the key too).",
)
@click.option(
    "--tls-key",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The private key of --tls-cert (PEM), if not in that file.",
)
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
@metrics_option
@status_option
@click.pass_context
def command(
    ctx: click.Context,
    /,
    listen: tuple[str, int],
    store_spec: str,
    cache: Path | None,
    replicas: int | None,
    session_id: str | None,
    user: str | None,
    password: str | None,
    credentials_file: Path | None,
    no_auth: bool,
    import_binaryfile: Path | None,
    pace: str | None,
    end_session_after_replay: bool,
    generate: float | None,
    durability: str,
    fsync: bool,
    heartbeat_interval: float,
    client_heartbeat_timeout: float,
    login_timeout: float,
    stall_timeout: float,
    max_connections: int | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    end_session: bool,
    mold_group: tuple[str, int] | None,
    mold_request_listen: tuple[str, int] | None,
    mold_interface: str | None,
    mold_ttl: int,
    drain_timeout: float,
    metrics: tuple[str, int] | None,
    status_interval: float | None,
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
    factor = parse_pace(pace) if pace is not None else None
    if (pace or end_session_after_replay) and import_binaryfile is None:
        raise UserError("--pace and --end-session-after-replay go with --import-binaryfile")
    if pace and generate:
        raise UserError("--pace replays a file; --generate makes a feed up: choose one")
    ssl_context = None
    if tls_cert is not None:
        ssl_context = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(tls_cert, tls_key)
    elif tls_key is not None:
        raise UserError("--tls-key needs --tls-cert")
    if is_log_url(store_spec):
        if import_binaryfile is not None or mold is not None:
            raise UserError("--import-binaryfile and --mold-group need a journal --store")
        log_options: dict[str, object] = {
            "heartbeat_interval": heartbeat_interval,
            "client_heartbeat_timeout": client_heartbeat_timeout,
            "login_timeout": login_timeout,
            "stall_timeout": stall_timeout or None,
            "max_connections": max_connections,
            "drain_timeout": drain_timeout,
        }
        log_options |= {"credentials": credentials} if credentials else {"authenticate": _anyone}
        return run_async(
            serve_log(listen, store_spec, cache, session_id, replicas, generate, log_options,
                      ssl_context, end_session, credentials is None, metrics, status_interval),
            ctx.obj["loop"],
        )  # fmt: skip
    store_path = Path(store_spec)
    created = not store_path.exists()
    made_dir = not store_path.parent.exists()
    store_path.parent.mkdir(parents=True, exist_ok=True)
    store = FileStore(
        store_path, session_id=session_id, durability=Durability(durability), fsync=fsync
    )
    listening: list[bool] = []  # set once the server listens: from then on the journal stays
    try:
        if import_binaryfile is not None:
            if store.count:
                raise UserError(
                    f"--import-binaryfile needs an empty journal; {store_path} already holds "
                    f"{plural(store.count, 'message')} (give a new --store)"
                )
            if pace is None:
                imported = import_binary_file(import_binaryfile, store)
                stderr.print(f"imported {plural(imported, 'message')} from {import_binaryfile}")
        session = session_id or store.session_id or DEFAULT_SESSION
        if store.session_ended and (generate or pace is not None):
            raise UserError(
                f"session {session!r} in {store_path} has ended: nothing more can be published "
                "into it (give a new --store and --session to start the next one)"
            )
        options = ServeOptions(
            heartbeat_interval=heartbeat_interval,
            client_heartbeat_timeout=client_heartbeat_timeout,
            login_timeout=login_timeout,
            stall_timeout=stall_timeout or None,
            max_connections=max_connections,
            ssl=ssl_context,
            drain_timeout=drain_timeout,
        )
        plan = Plan(
            generate,
            import_binaryfile if pace else None,
            factor,
            pace,
            end_session_after_replay,
            end_session,
            mold,
            metrics,
            status_interval,
        )
        return run_async(
            _serve(listen, store, session, credentials, options, plan, listening),
            ctx.obj["loop"],
        )
    finally:
        empty = store.count == 0
        store.close()
        if created and empty and not listening:  # e.g. the port was busy: leave nothing
            _remove_journal(store_path, made_dir)


def _remove_journal(path: Path, made_dir: bool) -> None:
    """Remove a journal this command created and never served, with its side files."""
    for leftover in (path, path.with_name(path.name + ".idx")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    if made_dir:
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # made for it, and empty again


@dataclass(frozen=True)
class ServeOptions:
    heartbeat_interval: float
    client_heartbeat_timeout: float
    login_timeout: float
    stall_timeout: float | None
    max_connections: int | None
    ssl: _ssl.SSLContext | None
    drain_timeout: float


@dataclass(frozen=True)
class Plan:
    """What gets published: a synthetic feed, a paced replay, or nothing; and when to end."""

    generate: float | None
    replay: Path | None
    factor: float | None
    pace: str | None
    end_after_replay: bool
    end_on_stop: bool
    mold: tuple[Any, ...] | None  # also on MoldUDP64: (group, request listen, interface, ttl)
    metrics: tuple[str, int] | None = None  # --metrics HOST:PORT
    status_interval: float | None = None  # --status-interval SECONDS


def _anyone(*_: object) -> bool:
    return True


async def _serve(
    listen: tuple[str, int],
    store: FileStore,
    session_id: str,
    credentials: dict[str, str] | None,
    options: ServeOptions,
    plan: Plan,
    listening: list[bool],
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
        listen, store=store, session_id=session_id, **vars(options), **auth
    )
    listening.append(True)
    host, port = server.address[:2]
    stderr.print(
        f"serving session {session_id!r} from {store.path} ({plural(store.count, 'message')}) "
        f"on {host}:{port}"
        + (" with TLS" if options.ssl else "")
        + ("" if credentials is not None else " (any login accepted)")
    )
    multicast = None
    if plan.mold is not None:
        group, request_listen, interface, ttl = plan.mold
        multicast = await soupbintcp_to_mold(
            server, group, request_listen, interface=interface, ttl=ttl
        )
        where = multicast.requests.address
        stderr.print(
            f"also on MoldUDP64 {group[0]}:{group[1]}, re-requests on {where[0]}:{where[1]}"
        )
    tasks = []
    if plan.generate:
        tasks.append(loop.create_task(_generate(server, plan.generate, stop)))
    if plan.replay is not None or plan.end_after_replay:
        tasks.append(loop.create_task(_replay_then_end(server, plan, stop)))
    mold_drivers = () if multicast is None else (multicast.transmitter, multicast.requests)
    try:
        async with operations(plan.metrics, server, *mold_drivers, status_of=server,
                              status_interval=plan.status_interval):  # fmt: skip
            await stop.wait()
    finally:
        for task in tasks:
            await task
        if plan.end_on_stop and not server.session_ended:
            await server.end_session()
            if multicast is not None:
                await multicast.end_session()
        if multicast is not None:
            await multicast.close()
        await server.close()
        ended = "ended" if server.session_ended else "left open"
        stderr.print(
            f"stopped: session {session_id!r} {ended}, journal holds "
            f"{plural(store.count, 'message')}"
        )
    return 0


async def _replay_then_end(server: soupbintcp.Server, plan: Plan, stop: asyncio.Event) -> None:
    if plan.replay is not None:
        stderr.print(f"replaying {plan.replay} at {plan.pace} pace")
        published = await replay(server, plan.replay, plan.factor, stop)
        if stop.is_set():
            stderr.print(f"replay interrupted after {plural(published, 'message')}")
            return
        stderr.print(f"replay done: {plural(published, 'message')} published")
    if plan.end_after_replay:
        await server.end_session()
        stderr.print("End of Session sent after the replay (serving on for late clients)")
