"""What `serve`, `record` and `tail` share for people who run a feed: `--metrics HOST:PORT`
(a Prometheus endpoint) and, for `serve`, `--status-interval SECONDS` (a status log line)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import click

import soupbintcp

from ._common import ADDRESS, UserError, describe_error, plural, stderr

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("soupbintcp.server")


def metrics_option(function: F) -> F:
    return click.option(
        "--metrics",
        "metrics",
        type=ADDRESS,
        metavar="HOST:PORT",
        help="Serve Prometheus metrics on http://HOST:PORT/metrics (needs the 'metrics' extra).",
    )(function)


def status_option(function: F) -> F:
    return click.option(
        "--status-interval",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="Log a status line every SECONDS: clients, rates, the worst lag.",
    )(function)


def bind_metrics(metrics: tuple[str, int] | None) -> Any:
    """The metrics endpoint of `--metrics`, bound now with nothing in it yet (None without
    `--metrics`): a command binds it before it publishes or accepts anything, so that a
    busy port or a missing extra stops it before it has changed anything. `UserError` if
    it cannot be."""
    if metrics is None:
        return None
    try:
        from soupbintcp.metrics import serve_metrics
    except ImportError as exc:
        raise UserError(str(exc)) from None
    try:
        return serve_metrics(metrics)
    except OSError as exc:
        raise UserError(
            f"cannot serve metrics on {metrics[0]}:{metrics[1]}: {describe_error(exc)}"
        ) from None


@contextlib.asynccontextmanager
async def operations(
    metrics: tuple[str, int] | None,
    *sources: object,
    status_of: soupbintcp.Server | None = None,
    status_interval: float | None = None,
    gateway: object | None = None,
    endpoint: Any = None,
) -> AsyncIterator[None]:
    """A metrics endpoint for `sources` (and a replicated feed's `gateway`) and status lines
    for `status_of`, while inside. `endpoint`: one `bind_metrics` made already, to serve
    them from (it is closed on the way out)."""
    if endpoint is None:
        endpoint = bind_metrics(metrics)
    if endpoint is not None:
        from soupbintcp.metrics import GatewayCollector

        if gateway is not None:
            sources = (*sources, GatewayCollector(gateway))
        for source in sources:
            endpoint.add_source(source)
        stderr.print(f"metrics on {endpoint.url}")
    status = None
    if status_of is not None and status_interval is not None:
        status = asyncio.create_task(_status_lines(status_of, status_interval))
    try:
        yield
    finally:
        if status is not None:
            status.cancel()
            await asyncio.gather(status, return_exceptions=True)
        if endpoint is not None:
            await asyncio.to_thread(endpoint.close)


async def start_operations(
    metrics: tuple[str, int] | None, *sources: object, **options: Any
) -> AsyncExitStack:
    """`operations(metrics, *sources, **options)` entered now: `aclose()` the stack to stop
    them."""
    stack = AsyncExitStack()
    await stack.enter_async_context(operations(metrics, *sources, **options))
    return stack


def client_figures(client: soupbintcp.AsyncClient) -> str:
    """What a client's summary line says of its connections."""
    host, port = client.address
    return (
        f"{plural(client.reconnects, 'reconnect')}, {plural(client.failovers, 'failover')}, "
        f"{plural(client.gaps_refused, 'gap')} refused, last at {host}:{port}"
    )


async def _status_lines(server: soupbintcp.Server, interval: float) -> None:
    previous = server.status()
    while True:
        await asyncio.sleep(interval)
        current = server.status()
        log.info("%s", soupbintcp.status_line(current, previous))
        previous = current
