"""The Prometheus metric families of a server, a client, and the MoldUDP64 drivers.

Layer 4 (operations). Pure functions from figures already read to metric families: nothing
here runs per message or touches a socket. A server's figures come from one
`Server.status()` snapshot, so every value of one scrape is from the same moment.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from .._client._figures import Client
from .._server._events import CONNECTION_CLOSED_REASONS
from .._server._status import ServerStatus
from ..moldudp64 import AsyncListener, BlockingListener, RequestServer, Transmitter

__all__ = [
    "CLIENT_LABELS",
    "REFUSAL_CAPS",
    "client_families",
    "gateway_families",
    "request_server_families",
    "server_families",
    "transmitter_families",
]

#: The labels of every per-client series of a server (`peer` only with `peer_labels`).
CLIENT_LABELS = ("session", "user", "peer", "connection")
#: Caps shown at 0 before anything was refused, so that `rate()` works from the start.
REFUSAL_CAPS = ("max_connections", "max_pending_logins")
_LOGIN_RESULTS = ("accepted", "not_authorized", "session_not_available")


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _by(
    name: str, doc: str, label: str, counts: dict[str, int], always: tuple[str, ...] = ()
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key in sorted(set(always) | set(counts)):
        family.add_metric([key], counts.get(key, 0))
    return family


def server_families(status: ServerStatus, *, peer_labels: bool = True) -> Iterator[Metric]:
    """Every metric of one server snapshot."""
    stats = status.stats
    clients = status.logged_in
    yield _gauge("soupbintcp_server_clients", "Logged-in client connections.", len(clients))
    yield _gauge(
        "soupbintcp_server_pending_logins",
        "Connections accepted that have not logged in yet.",
        status.pending_logins,
    )
    yield _gauge(
        "soupbintcp_server_queued_bytes",
        "Bytes the server holds for its clients (write buffers and fan-out).",
        status.queued_bytes,
    )
    yield _counter(
        "soupbintcp_server_messages_sent",
        "Sequenced messages sent to clients, over all connections.",
        status.messages_sent,
    )
    yield _counter(
        "soupbintcp_server_bytes_sent", "Bytes sent to clients, every packet.", status.bytes_sent
    )
    yield _counter(
        "soupbintcp_server_connections_accepted",
        "Connections admitted under the caps.",
        stats.accepted,
    )
    yield _by("soupbintcp_server_logins", "Login Requests answered, by result.", "result",
              dict(stats.logins), _LOGIN_RESULTS)  # fmt: skip
    reasons = tuple(r for r in CONNECTION_CLOSED_REASONS if r != "refused")
    yield _by("soupbintcp_server_disconnects", "Connections closed, by reason.", "reason",
              dict(stats.disconnects), reasons)  # fmt: skip
    yield _by("soupbintcp_server_admission_refusals", "Connections refused at admission, by "
              "the cap that was full.", "cap", dict(stats.refusals), REFUSAL_CAPS)  # fmt: skip
    yield _by("soupbintcp_server_protocol_errors", "Connections closed for a protocol error, "
              "by kind.", "kind", dict(stats.protocol_errors))  # fmt: skip
    yield _counter(
        "soupbintcp_server_end_of_session_sent",
        "End of Session packets sent.",
        stats.end_of_session_sent,
    )
    yield from _per_client(status, peer_labels)
    yield from _journal(status)


def _per_client(status: ServerStatus, peer_labels: bool) -> Iterator[Metric]:
    labels = list(CLIENT_LABELS if peer_labels else CLIENT_LABELS[:2] + CLIENT_LABELS[3:])
    families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
        "lag": GaugeMetricFamily(
            "soupbintcp_server_client_lag_messages",
            "Messages the stream holds durably that this client has not been sent yet.",
            labels=labels,
        ),
        "send_buffer": GaugeMetricFamily(
            "soupbintcp_server_client_send_buffer_bytes",
            "Bytes written to this client and not yet taken by the kernel.",
            labels=labels,
        ),
        "next_sequence": GaugeMetricFamily(
            "soupbintcp_server_client_next_sequence",
            "Sequence number of the next message this client will be sent.",
            labels=labels,
        ),
        "paused": GaugeMetricFamily(
            "soupbintcp_server_client_paused",
            "1 while this client's write buffer is over its high-water mark.",
            labels=labels,
        ),
        "messages_sent": CounterMetricFamily(
            "soupbintcp_server_client_messages_sent",
            "Sequenced messages sent on this connection.",
            labels=labels,
        ),
        "bytes_sent": CounterMetricFamily(
            "soupbintcp_server_client_bytes_sent", "Bytes sent on this connection.", labels=labels
        ),
    }
    for client in status.logged_in:
        host, port = client.peer
        values = [client.session, client.user]
        if peer_labels:
            values.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        values.append(str(client.connection))
        for key, family in families.items():
            family.add_metric(values, float(getattr(client, key)))
    yield from families.values()


def _journal(status: ServerStatus) -> Iterator[Metric]:
    labels = ["session", "stream"]
    last = GaugeMetricFamily(
        "soupbintcp_journal_last_sequence",
        "The store's last sequence number (messages appended).",
        labels=labels,
    )
    durable = GaugeMetricFamily(
        "soupbintcp_journal_durable_sequence",
        "The last sequence number the store holds durably (the most a client may be sent).",
        labels=labels,
    )
    corrupt = GaugeMetricFamily(
        "soupbintcp_journal_corrupt_from_sequence",
        "Sequence number from which a replay or the check ahead found the journal corrupt"
        " (0: none found); nothing from there on is sent.",
        labels=labels,
    )
    for stream in status.streams:
        values = [stream.session, "feed" if stream.user is None else f"user:{stream.user}"]
        last.add_metric(values, stream.last)
        durable.add_metric(values, stream.durable)
        corrupt.add_metric(values, stream.corrupt_from)
    yield last
    yield durable
    yield corrupt
    flush = status.stats.flush
    histogram = HistogramMetricFamily(
        "soupbintcp_journal_flush_seconds",
        "Time a store's flush took (write and any fsync), as the server timed it.",
    )
    histogram.add_metric(
        [], [(_le(bound), count) for bound, count in flush.cumulative()], sum_value=flush.sum
    )
    yield histogram
    yield _counter(
        "soupbintcp_journal_flush_failures",
        "Writes to the journal that failed (a full disk...): flushes (the server retries)"
        " and appends (publish raised).",
        status.stats.flush_failures,
    )


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def client_families(client: Client, rate: float) -> Iterator[Metric]:
    """The figures of a library client (`AsyncClient` or `BlockingClient`)."""
    labels = ["session"]
    values = [client.session_id]

    def one(family: GaugeMetricFamily | CounterMetricFamily, value: float) -> Metric:
        family.add_metric(values, value)
        return family

    yield one(CounterMetricFamily("soupbintcp_client_messages_received",
              "Sequenced messages received (queued ones included).", labels=labels),
              client.messages_received)  # fmt: skip
    yield one(GaugeMetricFamily("soupbintcp_client_receive_rate",
              "Messages received per second, over the last second or more.", labels=labels),
              rate)  # fmt: skip
    yield one(GaugeMetricFamily("soupbintcp_client_next_sequence",
              "Sequence number of the next message to arrive.", labels=labels),
              client.next_sequence)  # fmt: skip
    yield one(CounterMetricFamily("soupbintcp_client_reconnects",
              "Logins after the first.", labels=labels), client.reconnects)  # fmt: skip
    yield one(CounterMetricFamily("soupbintcp_client_failovers",
              "Logins at another address than the login before.", labels=labels),
              client.failovers)  # fmt: skip
    yield one(CounterMetricFamily("soupbintcp_client_gaps_refused",
              "Logins refused because the server would have skipped messages.", labels=labels),
              client.gaps_refused)  # fmt: skip
    host, port = client.address
    address = GaugeMetricFamily("soupbintcp_client_address",
                                "1 for the address of the current connection.",
                                labels=["session", "address"])  # fmt: skip
    address.add_metric([client.session_id, f"{host}:{port}"], 1)
    yield address


def request_server_families(server: RequestServer) -> Iterator[Metric]:
    """A MoldUDP64 re-request server: requests served, and refused by why."""
    labels = ["session"]
    session = [server.session_id]
    served = CounterMetricFamily(
        "soupbintcp_moldudp64_requests_served", "Requests answered.", labels=labels
    )
    served.add_metric(session, server.answers)
    messages = CounterMetricFamily(
        "soupbintcp_moldudp64_messages_resent", "Messages sent in answers.", labels=labels
    )
    messages.add_metric(session, server.messages_answered)
    refused = CounterMetricFamily(
        "soupbintcp_moldudp64_requests_refused",
        "Requests not answered, by reason.",
        labels=["session", "reason"],
    )
    for reason in ("malformed", "other_session", "not_yet", "rate_limited", "send_failed"):
        refused.add_metric([server.session_id, reason], getattr(server, reason))
    yield served
    yield messages
    yield refused


def listener_families(listener: AsyncListener | BlockingListener) -> Iterator[Metric]:
    """A MoldUDP64 listener: its gaps and re-requests, and per line (A/B) what each line
    delivered first, missed, and what another line covered of it."""
    session = listener.session_id or ""
    stats = listener.stats
    for name, doc, key in (
        ("soupbintcp_moldudp64_listener_gaps", "Gaps found in the merged stream.", "gaps"),
        ("soupbintcp_moldudp64_listener_requests", "Re-requests sent.", "requests_sent"),
        ("soupbintcp_moldudp64_listener_duplicates", "Messages received again, dropped.",
         "duplicates"),
    ):  # fmt: skip
        family = CounterMetricFamily(name, doc, labels=["session"])
        family.add_metric([session], stats[key] or 0)
        yield family
    lines = listener.lines
    if not lines:
        return
    for name, doc, attribute in (
        ("soupbintcp_moldudp64_line_first", "Messages this line delivered before any other.",
         "first"),
        ("soupbintcp_moldudp64_line_missed", "Messages this line's own numbering skipped.",
         "missed"),
        ("soupbintcp_moldudp64_line_covered", "Messages this line missed that another line "
         "delivered (no re-request needed).", "covered"),
    ):  # fmt: skip
        family = CounterMetricFamily(name, doc, labels=["session", "line"])
        for line in lines:
            family.add_metric([session, line.name], getattr(line, attribute))
        yield family


def transmitter_families(transmitter: Transmitter) -> Iterator[Metric]:
    """A MoldUDP64 transmitter: packets and messages sent, its next sequence number."""
    labels = ["session"]
    session = [transmitter.session_id]
    for name, doc, value, cls in (
        ("soupbintcp_moldudp64_packets_sent", "Downstream packets sent.",
         transmitter.packets_sent, CounterMetricFamily),
        ("soupbintcp_moldudp64_messages_sent", "Messages sent downstream.",
         transmitter.messages_sent, CounterMetricFamily),
        ("soupbintcp_moldudp64_next_sequence", "Sequence number of the next message to send.",
         transmitter.next_sequence, GaugeMetricFamily),
        ("soupbintcp_moldudp64_send_failures", "Sends the network refused (no route to the "
         "group, no such device...), a full buffer aside.",
         transmitter.send_failures, CounterMetricFamily),
    ):  # fmt: skip
        family = cls(name, doc, labels=labels)
        family.add_metric(session, value)
        yield family


def gateway_families(gateway: Any) -> Iterator[Metric]:
    """A gateway of a replicated feed (`soupbintcp.jetstream.Gateway`, read by its figures
    alone: the two layers do not import each other): how far it is behind the log."""
    state = gateway.state
    labels = ["session"]
    session = [state.session_id or ""]
    durable = gateway.durable_count
    for name, doc, value, cls in (
        ("soupbintcp_gateway_log_entry", "The last log entry this gateway applied.",
         state.log_seq, GaugeMetricFamily),
        ("soupbintcp_gateway_log_entries_behind", "Entries of the log not applied yet (as of "
         "the last one applied): the gateway's lag behind the log.",
         gateway.log_entries_behind, GaugeMetricFamily),
        ("soupbintcp_gateway_log_messages", "Messages the log's entries applied so far hold.",
         state.count, GaugeMetricFamily),
        ("soupbintcp_gateway_durable_sequence", "Messages the gateway's cache holds durably "
         "(the most it may send).", durable, GaugeMetricFamily),
        ("soupbintcp_gateway_lag_messages", "Messages applied from the log and not yet "
         "durable in the cache.", max(0, state.count - durable), GaugeMetricFamily),
        ("soupbintcp_gateway_log_reachable", "1 while the log answers.",
         1 if gateway.log_reachable else 0, GaugeMetricFamily),
        ("soupbintcp_gateway_entries_skipped", "Log entries skipped (not the holder's, or "
         "out of line).", state.skipped, CounterMetricFamily),
        ("soupbintcp_gateway_stalled_seconds", "Seconds the gateway has not followed its log "
         "while it should (0 while it follows); past --stall-after it lets its clients go.",
         getattr(gateway, "stalled_seconds", 0.0), GaugeMetricFamily),
        ("soupbintcp_gateway_letting_clients_go", "1 while the gateway refuses logins and "
         "closes its clients because it cannot follow its log.",
         1 if getattr(gateway, "letting_go", None) else 0, GaugeMetricFamily),
        ("soupbintcp_gateway_cache_write_errors", "Writes to the cache that failed (a full "
         "disk): the follower retries them.", getattr(gateway, "cache_write_errors", 0),
         CounterMetricFamily),
        ("soupbintcp_gateway_node_moves", "Times the gateway left a log node that stopped "
         "answering for the stream.", getattr(gateway, "node_moves", 0), CounterMetricFamily),
    ):  # fmt: skip
        family = cls(name, doc, labels=labels)
        family.add_metric(session, value)
        yield family
