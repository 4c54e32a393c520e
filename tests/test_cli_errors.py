"""Errors that say what to do (issue 19, point 7), and the docs that misled (point 9)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from soupbintcp.store import FileStore, JournalReader

from .pipes import finish

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "soupbintcp", "--loop", "asyncio"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("SOUPBINTCP_")}
ENV["PYTHONUNBUFFERED"] = "1"


def run(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *CLI, *args], capture_output=True, text=True, timeout=60, env=ENV, check=False
    )


def test_mold_tail_without_a_multicast_route_says_to_give_an_interface() -> None:
    name = f"sbt19-err{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        out = run("mold", "tail", "--group", "239.1.1.1:5000", "--request", "127.0.0.1:5001",
                  prefix=("ip", "netns", "exec", name))  # fmt: skip
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
    assert out.returncode == 1, out.stderr
    assert "--interface ADDR" in out.stderr
    assert "239.1.1.1:5000" in out.stderr


def test_a_moldudp64_port_clash_names_the_address(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        store = str(tmp_path / "m.soup")
        out = run("mold", "serve", "--group", "239.1.1.1:5000", "--interface", "127.0.0.1",
                  "--request-listen", f"127.0.0.1:{port}", "--store", store)  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert f"cannot open the re-request server 127.0.0.1:{port}: address already in use" in (
        out.stderr
    )


def test_mold_gateway_says_what_it_checked_while_no_packet_comes(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            *CLI,
            "mold",
            "gateway",
            "--group",
            "239.1.1.7:5007",
            "--request",
            "127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
            "--store",
            str(tmp_path / "g.soup"),
            "--no-auth",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if "still waiting" in line or not line:
            break
    proc.send_signal(signal.SIGINT)
    finish(proc)
    text = "".join(seen)
    assert "still waiting for a first packet on 239.1.1.7:5007" in text
    assert "--interface 127.0.0.1" in text


def test_a_username_without_a_password_gets_a_hint(tmp_path: Path) -> None:
    journal = tmp_path / "a.soup"
    with FileStore(journal, session_id="SESSION1") as store:
        store.append(b"x")
    proc = subprocess.Popen(
        [
            *CLI,
            "serve",
            "--store",
            str(journal),
            "--listen",
            "127.0.0.1:0",
            "--user",
            "u",
            "--password",
            "p",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    while line and "serving session" not in line:
        line = proc.stderr.readline()
    address = line.rsplit(" on ", 1)[1].split()[0]
    try:
        out = run("tail", address, "--user", "u", "--count", "1")
    finally:
        proc.send_signal(signal.SIGINT)
        finish(proc)
    assert out.returncode == 1
    assert "no password was given for 'u' (set SOUPBINTCP_PASSWORD" in out.stderr


def test_journal_info_names_the_session_and_whether_it_ended(tmp_path: Path) -> None:
    journal = tmp_path / "i.soup"
    with FileStore(journal, session_id="SESSION1") as store:
        store.append(b"x")
    out = run("journal", "info", str(journal))
    assert "session      'SESSION1', not ended" in out.stdout
    with JournalReader(journal) as reader:
        assert reader.session_id == "SESSION1"


# --- 9. docs ---------------------------------------------------------------------------------


def test_the_docs_no_longer_mislead() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    # The serve(...) example works with a MemoryStore: it names the session.
    example = operations[operations.index("server = await soupbintcp.serve(") :][:200]
    assert 'session_id="SESSION1"' in example
    mold = (ROOT / "docs" / "moldudp64.md").read_text()
    assert "are not used by MoldUDP64" not in mold  # they are (decode_blocks)
    for cited in re.findall(r"`([\w/.-]+\.md)`", mold):
        assert (ROOT / cited).exists(), f"docs/moldudp64.md cites {cited}, not in the repository"
    readme = (ROOT / "README.md").read_text()
    assert "soupbintcp journal info soupbintcp-data/feed.soup" in readme  # serve's default
    api = (ROOT / "docs" / "api" / "soupbintcp.md").read_text()
    for option in ("heartbeat_interval", "reconnect", "max_queue", "connect_timeout"):
        assert f"| `{option}` |" in api
    assert "**off** in the library and **on** in the command line" in api
    assert "coroutine function" in api
    assert "SoupBinTCP 3.00" in api
    assert "connection.publish(...)" in api
