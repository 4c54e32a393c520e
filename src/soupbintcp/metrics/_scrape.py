"""Reading a server's metrics endpoint back: what `soupbintcp top` shows.

Layer 4 (operations). Fetches the Prometheus text format, parses it with prometheus-client's
own parser, and turns two scrapes in a row into a `FeedView`: one row per connected client
(with its send rate over the interval), sorted by lag, and the feed's totals.
"""

from __future__ import annotations

import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["ClientRow", "FeedView", "Samples", "Watch", "metrics_url", "parse"]

#: (metric name, its labels) -> value.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

_CLIENT = "soupbintcp_server_client_"


def metrics_url(where: str) -> str:
    """`HOST:PORT`, `http://HOST:PORT` or a full URL: the URL of the metrics."""
    if "://" not in where:
        where = f"http://{where}"
    parts = urllib.parse.urlsplit(where)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {where!r}")
    return urllib.parse.urlunsplit(parts._replace(path=parts.path or "/metrics"))


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def fetch(url: str, timeout: float = 2.0) -> Samples:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only)
        return parse(response.read().decode("utf-8"))


@dataclass(frozen=True, slots=True)
class ClientRow:
    """One connected client, as the endpoint says; `rate` is messages sent per second."""

    session: str
    user: str
    peer: str
    connection: str
    next_sequence: int
    lag: int
    send_buffer: int
    rate: float


@dataclass(frozen=True, slots=True)
class FeedView:
    """What one refresh of `top` shows. `error` says why there is nothing new, if so."""

    url: str
    clients: list[ClientRow] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def _total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over the series that have `labels`."""
    want = set(labels.items())
    return sum(v for (n, lbl), v in samples.items() if n == name and want <= lbl)


class Watch:
    """Scrapes in a row, and the view each gives (rates are over the time between two)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._previous: tuple[float, Samples] | None = None

    def refresh(self, timeout: float = 2.0) -> FeedView:
        """Scrape now: the view, or one that says why there is none."""
        try:
            samples = fetch(self.url, timeout)
        except (OSError, ValueError) as exc:
            return FeedView(self.url, error=f"cannot scrape {self.url}: {exc}")
        return self.view(samples, time.monotonic())

    def view(self, samples: Samples, now: float) -> FeedView:
        """The view of `samples` scraped at `now` (monotonic seconds), with the rates since
        the scrape before."""
        previous = self._previous
        self._previous = (now, samples)
        then, before = previous if previous is not None else (now, {})
        elapsed = now - then

        def rate(name: str, **labels: str) -> float:
            if elapsed <= 0:
                return 0.0
            change = _total(samples, name, **labels) - _total(before, name, **labels)
            return max(0.0, change) / elapsed

        rows: dict[str, dict[str, str | float]] = {}
        for (name, labels), value in samples.items():
            if name.startswith(_CLIENT):
                key = dict(labels).get("connection", "")
                row = rows.setdefault(key, dict(labels))
                row[name[len(_CLIENT) :]] = value
        clients = [
            ClientRow(
                session=str(row.get("session", "")),
                user=str(row.get("user", "")),
                peer=str(row.get("peer", "")),
                connection=key,
                next_sequence=int(row.get("next_sequence", 0)),
                lag=int(row.get("lag_messages", 0)),
                send_buffer=int(row.get("send_buffer_bytes", 0)),
                rate=rate(f"{_CLIENT}messages_sent_total", connection=key),
            )
            for key, row in rows.items()
        ]
        clients.sort(key=lambda c: (-c.lag, c.user, c.connection))
        totals = {
            "clients": _total(samples, "soupbintcp_server_clients"),
            "pending": _total(samples, "soupbintcp_server_pending_logins"),
            "rate": rate("soupbintcp_server_messages_sent_total"),
            "bytes_rate": rate("soupbintcp_server_bytes_sent_total"),
            "journal_last": _total(samples, "soupbintcp_journal_last_sequence"),
            "journal_durable": _total(samples, "soupbintcp_journal_durable_sequence"),
            "published_rate": rate("soupbintcp_journal_last_sequence"),
            "logins": _total(samples, "soupbintcp_server_logins_total", result="accepted"),
            "rejected": _total(samples, "soupbintcp_server_logins_total")
            - _total(samples, "soupbintcp_server_logins_total", result="accepted"),
            "refused": _total(samples, "soupbintcp_server_admission_refusals_total"),
            "disconnects": _total(samples, "soupbintcp_server_disconnects_total"),
            "worst_lag": max((c.lag for c in clients), default=0),
        }
        if any(name == "soupbintcp_gateway_stalled_seconds" for name, _ in samples):
            totals["gateway_stalled"] = _total(samples, "soupbintcp_gateway_stalled_seconds")
            totals["gateway_letting_go"] = _total(samples, "soupbintcp_gateway_letting_clients_go")
            totals["gateway_cache_errors"] = _total(
                samples, "soupbintcp_gateway_cache_write_errors_total"
            )
        return FeedView(self.url, clients, totals)
