"""`soupbintcp check` on the command line: the commands docs/conformance.md shows, the report
files, the exit status (1 only when a MUST case fails), --cases/--exclude/--list."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from soupbintcp.cli._app import run
from soupbintcp.moldudp64 import serve_requests, transmit
from soupbintcp.store import MemoryStore

from . import check_peers as peers
from .check_broken_server import broken_server
from .mold_support import random_group

SOUPBINTCP = [sys.executable, "-m", "soupbintcp"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


async def cli(*args: str, timeout: float = 90) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *SOUPBINTCP, *args, env=ENV,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_server_reports_and_exit_status_zero(tmp_path: Path) -> None:
    async with peers.our_server() as (host, port):
        code, out, err = await cli(
            "check", "server", f"{host}:{port}", "-u", "user", "--password", "secret",
            "--cases", "*/2.2.2/*", "--cases", "login-accepted-first", "--exclude", "omega",
            "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"),
            "--html", str(tmp_path / "r.html"),
        )  # fmt: skip
    assert code == 0, out + err
    assert "soupbintcp check: 6/6 (MUST 6/6), 0 n/a" in out
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["exit_status"] == 0
    assert sorted(document["cases"]) == [
        "4.00/2.2.1/login-accepted-first",
        "4.00/2.2.2/bad-password-rejected",
        "4.00/2.2.2/unknown-session-rejected",
        "4.10/2.2.1/login-accepted-first",
        "4.10/2.2.2/bad-password-rejected",
        "4.10/2.2.2/unknown-session-rejected",
    ]
    suite = ET.parse(tmp_path / "r.xml").getroot()  # noqa: S314 - our own report
    assert (suite.get("tests"), suite.get("failures")) == ("6", "0")
    page = (tmp_path / "r.html").read_text()
    assert "4.10/2.2.2/bad-password-rejected" in page
    assert "<script" not in page
    assert "http" not in page.split("</title>", 1)[1]


async def test_a_failed_must_exits_1_and_a_failed_should_0(tmp_path: Path) -> None:
    async with broken_server("accept-any-password") as (host, port):
        code, out, err = await cli(
            "check", "server", f"{host}:{port}", "-u", "user", "--password", "secret",
            "--cases", "4.10/*/bad-password-rejected", "--junit", str(tmp_path / "r.xml"),
        )  # fmt: skip
    assert code == 1, out + err
    assert "FAIL MUST   4.10/2.2.2/bad-password-rejected: expected Login Rejected b'A'" in err
    failure = ET.parse(tmp_path / "r.xml").getroot().find("testcase/failure")  # noqa: S314
    assert failure is not None
    assert failure.get("type") == "MUST"
    async with broken_server("case-sensitive") as (host, port):
        code, out, err = await cli(
            "check", "server", f"{host}:{port}", "-u", "user", "--password", "secret",
            "--cases", "4.10/*/credentials-case-insensitive",
        )  # fmt: skip
    assert code == 0, out + err
    assert "FAIL SHOULD 4.10/2.3.1/credentials-case-insensitive" in err


# The --run launch is also what the interop matrix starts the npm client with (default suite).
@pytest.mark.long
async def test_client_with_run_starts_our_tail_per_case() -> None:
    tail = f"{sys.executable} -m soupbintcp tail {{host}}:{{port}} -u user --password secret"
    code, out, err = await cli(
        "check", "client", "--run", tail, "--cases", "4.10/2.3.1/*", "--cases", "resume-after-cut"
    )
    assert code == 0, out + err
    assert "soupbintcp check: 6/6 (MUST 5/5), 1 n/a" in out


def test_client_without_run_needs_a_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", "client"]) == 2
    assert "--listen needs a port unless --run names {port}" in capsys.readouterr().err


@pytest.fixture
async def mold() -> AsyncIterator[tuple[tuple[str, int], tuple[str, int]]]:
    store = MemoryStore(session_id="TEST1")
    store.append_many([b"message %03d" % i for i in range(1, 51)])
    group = random_group()
    requests = await serve_requests(store, ("127.0.0.1", 0))
    tx = await transmit(store, group, interface="127.0.0.1", ttl=0, first=1)
    try:
        yield group, requests.address
    finally:
        await tx.close()
        await requests.close()


async def test_mold_transmitter(mold: tuple[tuple[str, int], tuple[str, int]]) -> None:
    (group, port), (host, request_port) = mold
    code, out, err = await cli(
        "check", "mold-transmitter", "--group", f"{group}:{port}",
        "--request", f"{host}:{request_port}", "--interface", "127.0.0.1",
        "--cases", "*/request/*",
    )  # fmt: skip
    assert code == 0, out + err
    assert "soupbintcp check: 3/3 (MUST 3/3), 0 n/a" in out


# The interop matrix runs the same listener cases against `mold tail` (default suite).
@pytest.mark.long
async def test_mold_listener_with_run_starts_our_mold_tail() -> None:
    tail = (
        f"{sys.executable} -m soupbintcp mold tail --group {{group}} --request {{request}} "
        "--interface 127.0.0.1"
    )
    code, out, err = await cli(
        "check", "mold-listener", "--run", tail, "--cases", "requests-the-gap"
    )
    assert code == 0, out + err
    assert "soupbintcp check: 1/1 (MUST 1/1), 0 n/a" in out


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", "server", "127.0.0.1:1", "--dialect", "omega", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "30 cases"
    assert "omega-1.03/1.6.4/logout-closes  [MUST]" in out


@pytest.mark.long
async def test_the_docs_commands_as_written(tmp_path: Path) -> None:
    """docs/conformance.md's server and client commands verbatim (but for the port)."""
    feed = b"".join(len(m).to_bytes(2, "big") + m for m in (b"m%d" % i for i in range(1, 21)))
    (tmp_path / "feed.bin").write_bytes(feed)
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        *SOUPBINTCP, "serve", "--listen", f"127.0.0.1:{port}", "--store",
        str(tmp_path / "check.soup"), "--import-binaryfile", str(tmp_path / "feed.bin"),
        "-u", "user", "--password", "secret", env=ENV,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        code, out, err = await cli(
            "check", "server", f"127.0.0.1:{port}", "-u", "user", "--password", "secret"
        )
    finally:
        server.terminate()
        await server.wait()
    assert code == 0, out + err
    assert "soupbintcp check: 61/61 (MUST 45/45), 2 n/a" in out
    tail = f"{sys.executable} -m soupbintcp tail {{host}}:{{port}} -u user --password secret"
    code, out, err = await cli("check", "client", "--run", tail)
    assert code == 0, out + err
