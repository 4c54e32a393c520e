"""`serve --metrics --status-interval` and `record --metrics`, as subprocesses over loopback:
both endpoints scraped and parsed, the status lines read from the server's log."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .pipes import finish
from .test_cli import CLI, ENV, Serve


def scrape(url: str) -> dict[str, float]:
    """Unlabelled and single-series metrics by sample name (labels dropped: one client)."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metrics_url(lines: list[str]) -> str:
    for line in lines:
        if m := re.search(r"metrics on (http://\S+)", line):
            return m[1]
    raise AssertionError("no metrics URL in: " + "".join(lines))


def test_serve_and_record_serve_metrics_and_status_lines(tmp_path: Path) -> None:
    server = Serve("--store", str(tmp_path / "feed.soup"), "--user", "user", "--generate",
                   "2000", "--metrics", "127.0.0.1:0", "--status-interval", "0.3")  # fmt: skip
    record = None
    try:
        server.wait_for("metrics on http://")
        server_url = metrics_url(server.lines)
        record = subprocess.Popen(
            [*CLI, "record", server.address, str(tmp_path / "copy.soup"), "-u", "user",
             "--metrics", "127.0.0.1:0"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=ENV,
        )  # fmt: skip
        assert record.stderr is not None
        lines: list[str] = []
        while not any("metrics on http://" in line for line in lines):
            line = record.stderr.readline()
            assert line, "record ended: " + "".join(lines)
            lines.append(line)
        record_url = metrics_url(lines)
        server.wait_for("status: 1 clients (0 awaiting login)")
        figures = scrape(server_url)
        assert figures["soupbintcp_server_clients"] == 1
        assert figures["soupbintcp_journal_last_sequence"] > 0
        deadline = time.monotonic() + 30
        received = 0.0
        while received < 1000 and time.monotonic() < deadline:
            received = scrape(record_url)["soupbintcp_client_messages_received_total"]
            time.sleep(0.1)
        assert received >= 1000
        mine = scrape(record_url)
        assert mine["soupbintcp_client_reconnects_total"] == 0
        assert mine["soupbintcp_client_address"] == 1
        status = next(line for line in server.lines if "status: 1 clients" in line)
        assert re.search(r"sending [\d,]+ msg/s .* journal at [\d,]+ .* worst lag [\d,]+ \(user",
                         status), status  # fmt: skip
        record.send_signal(signal.SIGINT)
        _, err = finish(record)  # not communicate(): it loses what readline() buffered
        assert "0 reconnects, 0 failovers, 0 gaps refused" in err, err
    finally:
        if record is not None and record.poll() is None:
            record.kill()
            record.communicate()
        server.stop()
