"""Serving metrics over HTTP: collectors that read their source when scraped, and the endpoint.

Layer 4 (operations). prometheus-client's own HTTP server answers the scrapes in a thread of
its own. A collector reads its source only then, so nothing is counted per message. The
server's state belongs to its event loop (connections come and go while it runs), so a
server is read on its loop: the scrape thread asks the loop for one `Server.status()`
snapshot and waits for it (5 s at most), then builds the families from that in its own
thread. Clients and the MoldUDP64 drivers hold plain counters that any thread may read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Self, TypeVar

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .._client._figures import Client
from .._server._server import Server
from ..moldudp64 import AsyncListener, BlockingListener, RequestServer, Transmitter
from ._families import (
    client_families,
    gateway_families,
    listener_families,
    request_server_families,
    server_families,
    transmitter_families,
)

__all__ = [
    "ClientCollector",
    "FiguresCollector",
    "GatewayCollector",
    "MetricsEndpoint",
    "MoldUDP64Collector",
    "ServerCollector",
    "serve_metrics",
]

log = logging.getLogger("soupbintcp.metrics")

T = TypeVar("T")
#: How long a scrape waits for the server's loop to take its snapshot.
SNAPSHOT_TIMEOUT = 5.0


def on_loop(loop: asyncio.AbstractEventLoop, read: Callable[[], T]) -> T:
    """`read()` run on `loop`'s thread (at once if that is this thread), its result here."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return read()
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(read())
            except BaseException as exc:
                future.set_exception(exc)

    loop.call_soon_threadsafe(run)
    return future.result(SNAPSHOT_TIMEOUT)


class ServerCollector(Collector):
    """A `Server`'s metrics (see docs/operations.md), read on its loop when scraped.

    `peer_labels=False` leaves the client's address out of the per-client series (their
    `connection` label still keeps them apart) where many short-lived clients would make
    too many series."""

    def __init__(
        self,
        server: Server,
        *,
        peer_labels: bool = True,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._server = server
        self._peer_labels = peer_labels
        self._loop = loop or asyncio.get_running_loop()

    def collect(self) -> Iterator[Metric]:
        try:
            status = on_loop(self._loop, self._server.status)
        except Exception as exc:  # a closed or stuck loop: this scrape has no server figures
            log.warning("reading the server's figures for a scrape failed: %r", exc)
            return
        yield from server_families(status, peer_labels=self._peer_labels)


class ClientCollector(Collector):
    """A library client's figures (`AsyncClient` or `BlockingClient`)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def collect(self) -> Iterator[Metric]:
        client = self._client
        yield from client_families(client, client.receive_rate)


class MoldUDP64Collector(Collector):
    """A MoldUDP64 transmitter's, re-request server's and/or listener's counters (a
    listener on several lines: per line)."""

    def __init__(
        self,
        *,
        transmitter: Transmitter | None = None,
        requests: RequestServer | None = None,
        listener: AsyncListener | BlockingListener | None = None,
    ) -> None:
        self._transmitter = transmitter
        self._requests = requests
        self._listener = listener

    def collect(self) -> Iterator[Metric]:
        if self._listener is not None:
            yield from listener_families(self._listener)
        if self._transmitter is not None:
            yield from transmitter_families(self._transmitter)
        if self._requests is not None:
            yield from request_server_families(self._requests)


class GatewayCollector(Collector):
    """A replicated feed's gateway (`soupbintcp.jetstream.Gateway`): its lag behind the
    log. Serve it with the gateway's server: `serve_metrics(address, gateway.server,
    GatewayCollector(gateway))`."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway

    def collect(self) -> Iterator[Metric]:
        yield from gateway_families(self._gateway)


class FiguresCollector(Collector):
    """Figures that other parts of a feed add (a replicated feed's gateway lag, say):
    each a gauge or a counter read by a function when scraped, on `loop` if given (for
    state that belongs to an event loop). See `MetricsEndpoint.add_gauge`."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._figures: list[tuple[str, str, str, Callable[[], Mapping[tuple[str, ...], float]],
                                  tuple[str, ...]]] = []  # fmt: skip

    def add(
        self,
        kind: str,
        name: str,
        documentation: str,
        read: Callable[[], float | Mapping[tuple[str, ...], float]],
        labels: tuple[str, ...] = (),
    ) -> None:
        """A figure of `kind` "gauge" or "counter" (see `MetricsEndpoint.add_gauge`)."""

        def values() -> Mapping[tuple[str, ...], float]:
            value = read()
            return value if isinstance(value, Mapping) else {(): value}

        self._figures.append((kind, name, documentation, values, labels))

    def _read(self) -> list[tuple[str, str, str, Mapping[tuple[str, ...], float], tuple[str, ...]]]:
        return [(kind, name, doc, values(), labels)
                for kind, name, doc, values, labels in self._figures]  # fmt: skip

    def collect(self) -> Iterator[Metric]:
        try:
            figures = self._read() if self._loop is None else on_loop(self._loop, self._read)
        except Exception as exc:
            log.warning("reading added figures for a scrape failed: %r", exc)
            return
        for kind, name, doc, values, labels in figures:
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            family = cls(name, doc, labels=list(labels))
            for key, value in values.items():
                family.add_metric(list(key), value)
            yield family


class MetricsEndpoint:
    """An HTTP endpoint serving the Prometheus text format at any path (`/metrics`, say),
    from a registry of its own. Close it with `close()` (or `with`)."""

    def __init__(self, address: tuple[str, int], collectors: Iterable[Collector]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self._figures = FiguresCollector(loop)
        for collector in (*collectors, self._figures):
            self.registry.register(collector)
        host, port = address
        self._httpd, self._thread = start_http_server(port, host, self.registry)
        self._closed = False

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound."""
        host, port = self._httpd.server_address[:2]
        return (str(host), int(port))

    @property
    def url(self) -> str:
        """Where to scrape: http://HOST:PORT/metrics."""
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"

    def register(self, collector: Collector) -> None:
        """Serve `collector`'s metrics too (any prometheus-client collector)."""
        self.registry.register(collector)

    def add_source(self, source: object, *, peer_labels: bool = True) -> None:
        """Serve the metrics of `source` too (what `serve_metrics` takes): an endpoint can
        be bound first, before what it reports on exists or starts."""
        self.registry.register(collector_for(source, peer_labels=peer_labels))

    def add_gauge(
        self,
        name: str,
        documentation: str,
        read: Callable[[], float | Mapping[tuple[str, ...], float]],
        labels: tuple[str, ...] = (),
    ) -> None:
        """A gauge read by `read()` at each scrape: a number, or {label values: number} for
        a gauge with `labels` (e.g. a replicated feed's gateway lag behind the log). Called
        on the event loop that made the endpoint, if there was one."""
        self._figures.add("gauge", name, documentation, read, labels)

    def add_counter(
        self,
        name: str,
        documentation: str,
        read: Callable[[], float | Mapping[tuple[str, ...], float]],
        labels: tuple[str, ...] = (),
    ) -> None:
        """As `add_gauge`, for a count that never goes back (`_total` is added to `name`)."""
        self._figures.add("counter", name, documentation, read, labels)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def collector_for(source: Any, *, peer_labels: bool = True) -> Collector:
    """The collector of a server, a client, a MoldUDP64 driver, or a collector as is."""
    if isinstance(source, Server):
        return ServerCollector(source, peer_labels=peer_labels)
    if isinstance(source, Client):
        return ClientCollector(source)
    if isinstance(source, Transmitter):
        return MoldUDP64Collector(transmitter=source)
    if isinstance(source, RequestServer):
        return MoldUDP64Collector(requests=source)
    if callable(getattr(source, "collect", None)):
        return source  # type: ignore[no-any-return]
    raise TypeError(f"no metrics for a {type(source).__name__}")


def serve_metrics(
    address: tuple[str, int], *sources: object, peer_labels: bool = True
) -> MetricsEndpoint:
    """Serve the metrics of `sources` on `address` ((host, port); port 0 picks one): each a
    `Server`, an `AsyncClient` or `BlockingClient`, a MoldUDP64 `Transmitter` or
    `RequestServer`, or any prometheus-client collector. Call it from the event loop that
    runs a server (its figures are read there). `peer_labels`: see `ServerCollector`."""
    return MetricsEndpoint(address, [collector_for(s, peer_labels=peer_labels) for s in sources])
