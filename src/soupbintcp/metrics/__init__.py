"""Prometheus metrics for a SoupBinTCP feed (the `metrics` extra: prometheus-client).

    server = await soupbintcp.serve(...)
    endpoint = serve_metrics(("127.0.0.1", 9100), server)   # http://127.0.0.1:9100/metrics

Every value is computed when scraped, from the server's own figures (`Server.status()`):
nothing is counted per message. Per-client series carry `session`, `user`, `peer` and
`connection` labels and disappear when the client goes. Clients (`serve_metrics(address,
client)`) and the MoldUDP64 drivers have their own; other parts of a feed add theirs with
`endpoint.add_gauge(...)` / `add_counter(...)` or `endpoint.register(collector)`. What each
metric means: docs/operations.md.
"""

try:
    import prometheus_client  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "soupbintcp.metrics needs prometheus-client: pip install 'soupbintcp[metrics]'"
    ) from exc

from ._endpoint import (
    ClientCollector,
    FiguresCollector,
    GatewayCollector,
    MetricsEndpoint,
    MoldUDP64Collector,
    ServerCollector,
    serve_metrics,
)
from ._families import CLIENT_LABELS
from ._scrape import ClientRow, FeedView, Watch, metrics_url

__all__ = [
    "CLIENT_LABELS",
    "ClientCollector",
    "ClientRow",
    "FeedView",
    "FiguresCollector",
    "GatewayCollector",
    "MetricsEndpoint",
    "MoldUDP64Collector",
    "ServerCollector",
    "Watch",
    "metrics_url",
    "serve_metrics",
]
