"""`soupbintcp serve`: run a server on a journal."""

from __future__ import annotations

import ssl as _ssl
from pathlib import Path

import click

import soupbintcp
import soupbintcp.moldudp64
from soupbintcp.store import Durability, FileStore

from ._common import (
    ADDRESS,
    DEFAULT_SESSION,
    DEFAULT_STORE,
    UserError,
    credential_options,
    describe_error,
    durability_options,
    library_default,
    plural,
    seconds,
    server_credentials,
    stderr,
)
from ._ops import metrics_option, status_option
from ._replay import PACES, import_source, parse_pace, source_first
from ._run import run_async
from ._serve_journal import Plan, ServeOptions, anyone, remove_journal, serve_journal
from ._serve_log import is_log_url, serve_log


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
@click.option(
    "--no-auth",
    is_flag=True,
    help="Accept any username and password, whatever SOUPBINTCP_USER and SOUPBINTCP_PASSWORD "
    "say (with --user, --password or --credentials-file given too: an error).",
)
@click.option(
    "--import-binaryfile",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Serve a Nasdaq BinaryFILE (e.g. ITCH 5.0) as is: imported into the journal, "
    "resumably (an interrupted import goes on after the messages the journal holds, once they "
    "are checked to be the file's first).",
)
@click.option(
    "--import-journal",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Serve a journal made by `journal import --pcap` as is (into an empty --store); "
    "with --pace, live at its capture times.",
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
    default=library_default(soupbintcp.serve, "heartbeat_interval"),
    show_default=True,
    help=seconds("Send a Server Heartbeat after this long without sending"),
)
@click.option(
    "--client-heartbeat-timeout",
    type=float,
    default=library_default(soupbintcp.serve, "client_heartbeat_timeout"),
    show_default=True,
    help=seconds("Close a client not heard from for this long"),
)
@click.option(
    "--login-timeout",
    type=float,
    default=library_default(soupbintcp.serve, "login_timeout"),
    show_default=True,
    help=seconds("Close a connection (and its TLS handshake) not logged in by then"),
)
@click.option(
    "--stall-timeout",
    type=float,
    default=library_default(soupbintcp.serve, "stall_timeout"),
    show_default=True,
    help=seconds("Drop a client whose writes stay blocked this long (0: never)"),
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=library_default(soupbintcp.serve, "max_connections"),
    show_default=True,
    help="Refuse connections past this many at once (the library's default keeps a "
    "server's memory within its stated budget).",
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
@click.option("--mold-ttl", type=click.IntRange(0, 255), show_default=True,
              default=library_default(soupbintcp.moldudp64.Transmitter, "ttl"))  # fmt: skip
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=library_default(soupbintcp.serve, "drain_timeout"),
    show_default=True,
    help="On Ctrl-C, seconds the clients get to receive the rest (and End of Session).",
)
@click.option(
    "--stall-after",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="With a nats:// --store: seconds the gateway may go without following its log "
    "(a full disk, a failed follower, an unanswering node) before it refuses logins and "
    "closes its clients' connections so that they fail over to another gateway.",
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
    import_journal: Path | None,
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
    stall_after: float,
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
    if import_journal is not None:
        if import_binaryfile is not None:
            raise UserError("give --import-binaryfile or --import-journal, not both")
        import_binaryfile = import_journal  # a replay source: paced by its capture times
    if (pace or end_session_after_replay) and import_binaryfile is None:
        raise UserError(
            "--pace and --end-session-after-replay go with --import-binaryfile or --import-journal"
        )
    if pace and generate:
        raise UserError("--pace replays a file; --generate makes a feed up: choose one")
    ssl_context = None
    if tls_cert is not None:
        ssl_context = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(tls_cert, tls_key)
        except (_ssl.SSLError, OSError) as exc:
            key = f" with key {tls_key}" if tls_key else " (the key in the same file)"
            raise UserError(
                f"cannot load the TLS certificate {tls_cert}{key}: give a PEM certificate "
                "chain and its private key (--tls-key if it is in its own file), unencrypted, "
                "that belong together (OpenSSL could not read them as such)"
                if isinstance(exc, _ssl.SSLError)
                else f"cannot load the TLS certificate {tls_cert}{key}: {describe_error(exc)}"
            ) from None
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
        log_options |= {"credentials": credentials} if credentials else {"authenticate": anyone}
        return run_async(
            serve_log(listen, store_spec, cache, session_id, replicas, generate, log_options,
                      ssl_context, end_session, credentials is None, metrics, status_interval,
                      stall_after),
            ctx.obj["loop"],
        )  # fmt: skip
    store_path = Path(store_spec)
    created = not store_path.exists()
    made_dir = not store_path.parent.exists()
    store_path.parent.mkdir(parents=True, exist_ok=True)
    # A journal made from a replay source keeps its numbers (a capture's journal may start
    # after 1).
    first = source_first(import_binaryfile) if created and import_binaryfile else None
    store = FileStore(
        store_path, session_id=session_id, durability=Durability(durability), fsync=fsync,
        first_sequence=first,
    )  # fmt: skip
    listening: list[bool] = []  # set once the server listens: from then on the journal stays
    try:
        if import_binaryfile is not None:
            held = store.count - store.first_sequence + 1
            if held and pace is not None:
                raise UserError(
                    f"--pace needs an empty journal; {store_path} already holds "
                    f"{plural(held, 'message')} (give a new --store)"
                )
            if pace is None:
                imported = import_source(import_binaryfile, store)
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
            serve_journal(listen, store, session, credentials, options, plan, listening),
            ctx.obj["loop"],
        )
    finally:
        empty = store.count < store.first_sequence
        store.close()
        if created and empty and not listening:  # e.g. the port was busy: leave nothing
            remove_journal(store_path, made_dir)
