"""`soupbintcp serve --store FILE`: a server on a journal, and what publishes into it
(`--generate`, a paced `--import-binaryfile` replay, MoldUDP64 alongside)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl as _ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soupbintcp
from soupbintcp.gateways import soupbintcp_to_mold
from soupbintcp.store import FileStore

from ._common import UserError, describe_error, plural, stderr
from ._generate import generate, into_store
from ._ops import bind_metrics, operations
from ._replay import replay
from ._signals import Stop

__all__ = ["Plan", "ServeOptions", "anyone", "remove_journal", "serve_journal"]


def remove_journal(path: Path, made_dir: bool) -> None:
    """Remove a journal this command created and never served, with its side files."""
    for leftover in (path, *(path.with_name(path.name + s) for s in (".idx", ".crc"))):
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


def anyone(*_: object) -> bool:
    """The `authenticate` of --no-auth: any login is accepted."""
    return True


def _held(store: FileStore) -> str:
    """How many messages `store` holds, and which (a journal may start after 1)."""
    first = store.first_sequence
    held = plural(store.count - first + 1, "message")
    return held if first == 1 else f"{held}, {first:,}..{store.count:,}"


async def serve_journal(
    listen: tuple[str, int],
    store: FileStore,
    session_id: str,
    credentials: dict[str, str] | None,
    options: ServeOptions,
    plan: Plan,
    listening: list[bool],
) -> int:
    stop = Stop()
    auth = {"credentials": credentials} if credentials is not None else {"authenticate": anyone}
    # Everything the command needs is bound before anything is published: a busy port or a
    # missing extra stops it here, with the journal as it was (and the session open).
    endpoint = bind_metrics(plan.metrics)
    try:
        server = await soupbintcp.serve(
            listen, store=store, session_id=session_id, **vars(options), **auth
        )
    except BaseException:
        if endpoint is not None:
            endpoint.close()
        raise
    try:
        return await _serve(server, store, session_id, credentials, options, plan, listening,
                            stop, endpoint)  # fmt: skip
    finally:
        if endpoint is not None:
            endpoint.close()


async def _serve(
    server: soupbintcp.Server,
    store: FileStore,
    session_id: str,
    credentials: dict[str, str] | None,
    options: ServeOptions,
    plan: Plan,
    listening: list[bool],
    stop: Stop,
    endpoint: Any,
) -> int:
    loop = asyncio.get_running_loop()
    listening.append(True)
    host, port = server.address[:2]
    stderr.print(
        f"serving session {session_id!r} from {store.path} ({_held(store)}) on {host}:{port}"
        + (" with TLS" if options.ssl else "")
        + ("" if credentials is not None else " (any login accepted)")
    )
    multicast = None
    tasks: list[asyncio.Task[None]] = []
    failed: list[BaseException] = []
    stopped = False  # by the operator (Ctrl-C, SIGTERM): only then may the session end

    def task_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            failed.append(exc)
            stop.set()

    try:
        if plan.mold is not None:
            group, request_listen, interface, ttl = plan.mold
            multicast = await soupbintcp_to_mold(
                server, group, request_listen, interface=interface, ttl=ttl
            )
            where = multicast.requests.address
            stderr.print(
                f"also on MoldUDP64 {group[0]}:{group[1]}, re-requests on {where[0]}:{where[1]}"
            )
        mold_drivers = () if multicast is None else (multicast.transmitter, multicast.requests)
        async with operations(plan.metrics, server, *mold_drivers, status_of=server,
                              status_interval=plan.status_interval, endpoint=endpoint):  # fmt: skip
            if plan.generate:
                tasks.append(
                    loop.create_task(generate(into_store(server), plan.generate, stop.event))
                )
            if plan.replay is not None or plan.end_after_replay:
                tasks.append(loop.create_task(_replay_then_end(server, plan, stop.event)))
            for task in tasks:
                task.add_done_callback(task_done)
            await stop.wait()
            stopped = not failed
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        if stopped and plan.end_on_stop and not server.session_ended:
            await server.end_session()
            if multicast is not None:
                stop.waiting("End of Session to linger on the MoldUDP64 group")
                await multicast.end_session()
        if multicast is not None:
            await multicast.close()
        if clients := len(server.status().clients):
            stop.waiting(
                f"{plural(clients, 'client')} to receive the rest"
                + (" and End of Session" if server.session_ended else "")
                + f" (up to {options.drain_timeout:g} s, --drain-timeout)"
            )
        await server.close()
        ended = "ended" if server.session_ended else "left open"
        stderr.print(f"stopped: session {session_id!r} {ended}, journal holds {_held(store)}")
    if failed:
        raise UserError(f"cannot publish into {store.path}: {describe_error(failed[0])}") from None
    if multicast is not None:
        tx = multicast.transmitter
        if not tx.sends_ok and tx.last_error is not None:
            raise UserError(
                f"nothing could be sent to the MoldUDP64 group: {describe_error(tx.last_error)}"
                " (is there a route for multicast? give the interface: --mold-interface ADDR)"
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
