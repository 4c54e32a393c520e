"""`soupbintcp serve --store nats://...`: a gateway of a feed on a replicated log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl as _ssl
from pathlib import Path
from typing import Any

from ._common import UserError, stderr
from ._generate import generate as generate_feed
from ._ops import start_operations
from ._synthetic import synthetic_messages

#: How far ahead of the log the generator may run before it waits (messages).
_GENERATOR_AHEAD = 200_000


def is_log_url(store: str) -> bool:
    return store.startswith(("nats://", "tls://"))


def default_cache(store: str) -> Path:
    stream = store.rpartition("/")[2] or "feed"
    return Path("soupbintcp-data") / f"{stream}.cache.soup"


async def serve_log(
    listen: tuple[str, int],
    store: str,
    cache: Path | None,
    session_id: str | None,
    replicas: int | None,
    generate: float | None,
    serve_options: dict[str, object],
    ssl_context: _ssl.SSLContext | None,
    end_session: bool,
    any_login: bool,
    metrics: tuple[str, int] | None = None,
    status_interval: float | None = None,
    stall_after: float | None = None,
) -> int:
    try:
        from soupbintcp import jetstream
    except ImportError as exc:
        raise UserError(f"{exc}") from None
    try:
        jetstream.parse_log_address(store)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    cache_path = cache if cache is not None else default_cache(store)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        # The first stops (clients drained within --drain-timeout), a second at once.
        nonlocal signals
        signals += 1
        if signals > 1:
            stderr.print("second signal: stopping at once")
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    extra: dict[str, object] = {} if stall_after is None else {"stall_after": stall_after}
    try:
        # The log may not answer (a typo in its address, no node up): `stop` (a signal)
        # ends the wait. Once it answers, opening goes on, and a writer then ends the
        # session as usual.
        gateway = await jetstream.open_gateway(
            store,
            listen,
            cache=cache_path,
            writer=generate is not None,
            session_id=session_id,
            replicas=replicas,
            ssl=ssl_context,
            stop=stop,
            **serve_options,  # type: ignore[arg-type]
            **extra,  # type: ignore[arg-type]
        )
    except jetstream.LogUnavailable as exc:
        if not stop.is_set():
            raise UserError(str(exc)) from None
        stderr.print(f"stopped before the log {store} answered")
        return 0
    except jetstream.LogError as exc:
        raise UserError(str(exc)) from None
    host, port = gateway.address
    role = f"writer at {generate:,.0f} msg/s" if generate else "follower"
    stderr.print(
        f"gateway of {store} ({role}): serving session {gateway.session_id!r} from cache "
        f"{cache_path} ({gateway.durable_count:,} messages) on {host}:{port}"
        + (" with TLS" if ssl_context else "")
        + (" (any login accepted)" if any_login else "")
    )
    generator = None
    writer = gateway.writer
    if generate and writer is not None:  # opened as the writer when generating
        generator = loop.create_task(
            generate_feed(
                lambda n: gateway.publish_many(synthetic_messages(gateway.next_sequence, n)),
                generate,
                stop,
                room=lambda: _room(writer),
            )
        )
    status = 1
    server = gateway.server
    ops = await start_operations(
        metrics, server, gateway=gateway, status_of=server, status_interval=status_interval
    )
    try:
        # After End of Session a gateway goes on serving: late clients replay, then get it.
        waiting: list[asyncio.Task[Any]] = [loop.create_task(stop.wait())]
        if generator is not None:
            waiting.append(generator)
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        status = 0
        if generator is not None and generator.done() and generator.exception() is not None:
            stderr.print(f"[red]error:[/] {generator.exception()}")
            status = 1
    finally:
        await ops.aclose()
        stop.set()
        if generator is not None:
            with contextlib.suppress(Exception):
                await generator
        if (
            status == 0
            and end_session
            and gateway.writer is not None
            and gateway.writer.fenced is None
            and not gateway.ended
        ):
            await gateway.end_session()
        await gateway.close()
        line = (
            f"stopped: cache {cache_path} holds {gateway.durable_count:,} messages "
            f"(log entry {gateway.state.log_seq:,})"
        )
        if writer is not None:
            # Published means held by the log, as read back from it: never more.
            line += f"; published {writer.confirmed_count:,} (the log holds them)"
            unconfirmed = writer.next_sequence - 1 - writer.confirmed_count
            if unconfirmed > 0:
                line += f", {unconfirmed:,} not confirmed by the log"
        stderr.print(line)
    return status


def _room(writer: Any) -> bool:
    """Whether the generator may publish now: `LogError` if the writer cannot append (so the
    command stops and says why rather than publishing into nothing)."""
    writer.check()
    return bool(writer.backlog < _GENERATOR_AHEAD)
