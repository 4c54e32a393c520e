"""Reading a server's metrics endpoint back: what `soupbintcp top` shows.

Layer 4 (operations). Fetches the Prometheus text format, parses it with prometheus-client's
own parser, and turns two scrapes in a row into a `FeedView`: one row per connected client
(with its send rate over the interval), sorted by lag, and the feed's totals.
"""

from __future__ import annotations

import http.client
import socket
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from .._wire import LoginRequest

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
    #: The URL answers, but it is not a server's metrics endpoint (`error` says what it is).
    wrong_kind: bool = False


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
        except (http.client.RemoteDisconnected, http.client.BadStatusLine) as exc:
            # Closed without an HTTP answer, or answered in another protocol: a SoupBinTCP
            # server does the first to an HTTP request, so ask it in its own protocol.
            parts = urllib.parse.urlsplit(self.url)
            where = f"{parts.hostname}:{parts.port or 80}"
            if speaks_soupbintcp(parts.hostname or "", parts.port or 80, timeout):
                found = f"{where} is a SoupBinTCP port (it answered a Login Request)"
                hint = "point top at the HOST:PORT given to `serve --metrics`"
                error = f"{found}, not a metrics endpoint: {hint}"
                return FeedView(self.url, wrong_kind=True, error=error)
            return FeedView(self.url, error=f"cannot scrape {self.url}: not HTTP ({exc})")
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return FeedView(self.url, error=f"cannot scrape {self.url}: {exc}")
        view = self.view(samples, time.monotonic())
        return view if (kind := _not_a_server(self.url, samples)) is None else kind

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


def _not_a_server(url: str, samples: Samples) -> FeedView | None:
    """A view that says what `url` is, if its metrics are not a SoupBinTCP server's."""
    names = {name for name, _ in samples}
    if any(n.startswith(("soupbintcp_server_", "soupbintcp_gateway_")) for n in names):
        return None
    if any(n.startswith("soupbintcp_client_") for n in names):
        found = "a SoupBinTCP client's metrics (soupbintcp_client_*), not a server's"
    elif any(n.startswith("soupbintcp_moldudp64_") for n in names):
        found = "MoldUDP64 metrics (soupbintcp_moldudp64_*), not a SoupBinTCP server's"
    else:
        found = f"{len(names)} metrics, none of them a SoupBinTCP server's"
    return FeedView(url, wrong_kind=True, error=(
        f"{url} has {found}: point top at the HOST:PORT given to `serve --metrics`"))  # fmt: skip


def speaks_soupbintcp(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether HOST:PORT answers a Login Request (an empty user) with a SoupBinTCP packet:
    Login Accepted or Rejected, a heartbeat or debug text."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as peer:
            peer.sendall(LoginRequest(username="", password="").encode())
            answer = b""
            while len(answer) < 3 and (chunk := peer.recv(3 - len(answer))):
                answer += chunk
            if answer[2:3] == b"A":
                peer.sendall(b"\x00\x01O")  # Logout Request: leave as a client would
    except OSError:
        return False
    return len(answer) == 3 and answer[0:2] != b"\x00\x00" and answer[2:3] in b"AJH+"
