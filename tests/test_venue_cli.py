"""`soupbintcp venue` as a user runs it: a real process, an order over OUCH, the answer in the
account's journal and on `tail --decode ouch50`, ITCH on `tail --decode itch50`, Ctrl-C, and a
restart that resumes the day."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from soupbintcp import connect, ouch

from .pipes import finish

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
CLI = [sys.executable, "-m", "soupbintcp", "--loop", "asyncio"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class VenueProcess:
    def __init__(self, data: Path, *extra: str) -> None:
        self.ouch, self.mirror, self.itch = _free_port(), _free_port(), _free_port()
        self.proc = subprocess.Popen(
            [*CLI, "-v", "venue", "--listen", f"127.0.0.1:{self.ouch}",
             "--listen", f"127.0.0.1:{self.mirror}", "--itch-listen", f"127.0.0.1:{self.itch}",
             "--symbols", "AAPL,MSFT", "--no-auth", "--data", str(data), *extra],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=ENV,
        )  # fmt: skip
        self.lines: list[str] = []
        self.session = self.wait_for(r"venue (DAY\d+): OUCH on")

    def wait_for(self, pattern: str, timeout: float = 30) -> str:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            if m := re.search(pattern, line):
                return m[1] if m.groups() else line
        self.stop()
        raise AssertionError(f"never logged {pattern!r}: " + "".join(self.lines))

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        _, err = finish(self.proc)
        return "".join(self.lines) + err


def _run(*args: str) -> str:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=ENV)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_venue_from_the_command_line(tmp_path: Path) -> None:
    venue = VenueProcess(tmp_path / "data")
    try:
        with connect(("127.0.0.1", venue.mirror), "alice", "pw") as client:
            client.send_unseq_data(
                ouch.EnterOrder(1, ouch.Side.BUY, 100, "AAPL", 1_000_000).encode()
            )
            first = ouch.decode_outbound(client.receive_msg(timeout=5).data)
            accepted = ouch.decode_outbound(client.receive_msg(timeout=5).data)
        assert type(first) is ouch.SystemEvent
        assert type(accepted) is ouch.OrderAccepted
        venue.wait_for(r"alice -> (EnterOrder)\(")  # -v: inbound decoded
        tail = _run("tail", f"127.0.0.1:{venue.ouch}", "-u", "alice", "--password", "x",
                    "--decode", "ouch50", "--count", "2")  # fmt: skip
        assert "A OrderAccepted at " in tail
        assert "symbol=AAPL price=100.0000" in tail
        itch = _run("tail", f"127.0.0.1:{venue.itch}", "-u", "md", "--password", "x",
                    "--decode", "itch50", "--count", "6")  # fmt: skip
        assert "Add Order" in itch
    finally:
        log = venue.stop()
    assert venue.proc.returncode == 0, log
    journal = tmp_path / "data" / "accounts" / "alice.soup"
    dump = _run("journal", "dump", "--decode", "ouch50", str(journal))
    assert "S SystemEvent" in dump
    assert "A OrderAccepted" in dump
    again = VenueProcess(tmp_path / "data")  # the same day, resumed
    try:
        assert again.session == venue.session
        with connect(("127.0.0.1", again.ouch), "alice", "pw", sequence=3) as client:
            client.send_unseq_data(ouch.AccountQueryRequest().encode())
            answer = ouch.decode_outbound(client.receive_msg(timeout=5).data)
        assert answer == ouch.AccountQueryResponse(answer.timestamp, 2)  # type: ignore[attr-defined]
    finally:
        again.stop()
    fresh = VenueProcess(tmp_path / "data", "--new-day")
    fresh.stop()
    assert fresh.session != venue.session
