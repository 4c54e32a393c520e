"""The command line, each command run as a subprocess over loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soupbintcp import FileStore
from soupbintcp.store import export_binaryfile, iter_binaryfile

from .pipes import finish

ENV = {**os.environ, "SOUPBINTCP_PASSWORD": "secret", "PYTHONUNBUFFERED": "1"}
CLI = [sys.executable, "-m", "soupbintcp", "--loop", "asyncio"]


def synthetic(first: int, count: int) -> list[bytes]:
    return [b"msg-%07d-" % s + b"x" * (s % 40) for s in range(first, first + count)]


def run(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or ENV, check=False
    )


class Serve:
    """`soupbintcp serve` in the background; `address` once it listens."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--listen", "127.0.0.1:0", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=ENV,
        )
        self.lines: list[str] = []
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            if m := re.search(r" on (127\.0\.0\.1):(\d+)", line):
                self.address = f"{m[1]}:{m[2]}"
                return
        self.stop()
        raise AssertionError("serve did not start: " + "".join(self.lines))

    def wait_for(self, text: str, timeout: float = 30) -> None:
        """Read the server's log until a line holds `text`."""
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            if text in line:
                return
        raise AssertionError(f"the server never logged {text!r}: " + "".join(self.lines))

    def stop(self) -> str:
        """Ctrl-C: End of Session, journal closed. Returns the rest of stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        _, err = finish(self.proc)  # not communicate(): it loses what readline() buffered
        return "".join(self.lines) + err


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "feed.soup"
    with FileStore(path, session_id="CLITEST") as store:
        store.append_many(synthetic(1, 5000))
    return path


@pytest.fixture
def server(journal: Path) -> Iterator[Serve]:
    serve = Serve("--store", str(journal), "--user", "user")
    try:
        yield serve
    finally:
        serve.stop()


def test_version_and_help() -> None:
    out = run("--version")
    assert out.returncode == 0
    assert re.search(r"\d+\.\d+", out.stdout)
    for command in ("serve", "tail", "record", "demo"):
        result = run(command, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage: soupbintcp" in result.stdout


def test_tail_count_in_every_format(server: Serve) -> None:
    text = run("tail", server.address, "--user", "user", "--count", "3")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == [
        f"{s}\t{m.decode()}" for s, m in zip((1, 2, 3), synthetic(1, 3), strict=True)
    ]
    assert "3 messages" in text.stderr
    assert "sequence 1..3" in text.stderr
    jsonl = run(
        "tail",
        server.address,
        "--user",
        "user",
        "--count",
        "2",
        "--sequence",
        "4999",
        "--format",
        "jsonl",
    )
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert rows == [
        {"sequence": s, "length": len(m), "payload": m.hex()}
        for s, m in zip((4999, 5000), synthetic(4999, 2), strict=True)
    ]
    hexed = run("tail", server.address, "--user", "user", "--count", "1", "--format", "hex")
    assert hexed.stdout == f"1 {synthetic(1, 1)[0].hex()}\n"


def test_tail_stops_at_end_of_session_with_a_summary(journal: Path) -> None:
    serve = Serve("--store", str(journal), "--user", "user")
    tail = subprocess.Popen(
        [*CLI, "tail", serve.address, "--user", "user", "--sequence", "4990"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    serve.wait_for("logged in as user")  # End of Session then follows what it has
    log = serve.stop()
    out, err = tail.communicate(timeout=30)
    assert tail.returncode == 0, err
    assert [int(line.split("\t")[0]) for line in out.splitlines()] == list(range(4990, 5001))
    assert "stopped: end of session" in err
    assert "logged in as user" in log
    assert "session CLITEST ended" in log


def test_serve_tail_record_end_to_end(tmp_path: Path, journal: Path) -> None:
    serve = Serve("--store", str(journal), "--user", "user", "--generate", "20000")
    copy = tmp_path / "copy.soup"
    first = run("record", serve.address, str(copy), "--user", "user", "--count", "7000")
    assert first.returncode == 0, first.stderr
    # interrupted and restarted: it resumes at the next sequence number
    second = run("record", serve.address, str(copy), "--user", "user", "--count", "4000")
    assert second.returncode == 0, second.stderr
    assert "from sequence 7001" in second.stderr
    serve.stop()
    with FileStore(copy) as recorded, FileStore(journal) as source:
        assert recorded.session_id == "CLITEST"
        assert recorded.count == 11_000
        assert recorded.read(1, 11_000) == source.read(1, 11_000)  # no gap, no duplicate
        assert source.count >= 11_000  # the generator kept publishing


def test_record_killed_and_restarted_has_no_gap_or_duplicate(tmp_path: Path, journal: Path) -> None:
    serve = Serve("--store", str(journal), "--user", "user", "--generate", "50000")
    try:
        copy = tmp_path / "copy.itch"
        for delay in (0.3, 0.2, 0.4):  # SIGKILL at an arbitrary moment, three times
            proc = subprocess.Popen(
                [*CLI, "record", serve.address, str(copy), "--user", "user"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
            )  # fmt: skip
            time.sleep(delay)
            proc.kill()
            proc.wait(10)
        if copy.exists():  # a torn record from the kill: the next run cuts it
            with copy.open("ab") as f:
                f.write(b"\x00\x30partial")
        final = run("record", serve.address, str(copy), "--user", "user", "--count", "2000")
        assert final.returncode == 0, final.stderr
    finally:
        serve.stop()
    recorded = list(iter_binaryfile(copy))
    with FileStore(journal) as source:
        assert len(recorded) >= 2000
        assert recorded == source.read(1, len(recorded))


def test_binaryfile_import_is_served_byte_exact(tmp_path: Path) -> None:
    source = tmp_path / "itch.bin"
    messages = [bytes([i % 256]) * (11 + i % 40) for i in range(3000)]
    source.write_bytes(b"".join(len(m).to_bytes(2, "big") + m for m in messages))
    store = tmp_path / "itch.soup"
    serve = Serve(
        "--store",
        str(store),
        "--session",
        "ITCH",
        "--import-binaryfile",
        str(source),
        "--user",
        "user",
    )
    copy = tmp_path / "copy.bin"
    try:
        result = run("record", serve.address, str(copy), "--user", "user", "--count", "3000")
        assert result.returncode == 0, result.stderr
        assert "imported 3,000 messages" in "".join(serve.lines)
    finally:
        serve.stop()
    assert copy.read_bytes() == source.read_bytes()
    with FileStore(store) as journal:
        exported = tmp_path / "exported.bin"
        export_binaryfile(journal, exported)
    assert exported.read_bytes() == source.read_bytes()


def test_demo_gives_a_verdict() -> None:
    result = run("demo", "--messages", "30000")
    assert result.returncode == 0, result.stderr
    assert "verdict: OK" in result.stderr
    assert "exactly once" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["tail", "127.0.0.1:1", "--user", "user"], None, "connection refused"),
        (["tail", "not-an-address", "--user", "user"], None, "is not HOST:PORT"),
        (["tail", "127.0.0.1:7000", "--bogus"], None, "--bogus"),
        (["nonsense"], None, "No such command"),
        (["serve", "--listen", "127.0.0.1:0", "--store", "STORE"], None, "no credentials"),
        (
            ["serve", "--import-binaryfile", "/nonexistent/file", "--no-auth"],
            None,
            "does not exist",
        ),
        (
            ["serve", "--listen", "127.0.0.1:0", "--credentials-file", "/nonexistent/creds"],
            None,
            "cannot read credentials file",
        ),
        (
            ["record", "127.0.0.1:1", "/nonexistent/dir/out.soup", "--user", "u"],
            None,
            "no such directory",
        ),
    ],
)
def test_person_made_errors_are_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str] | None, message: str
) -> None:
    args = [a.replace("STORE", str(tmp_path / "s.soup")) for a in args]
    result = run(*args, env={**ENV, **env} if env else None)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message.lower() in lines[0].lower()
    assert "Traceback" not in result.stderr


def test_wrong_password_is_one_line(server: Serve) -> None:
    result = run(
        "tail", server.address, "--user", "user", env={**ENV, "SOUPBINTCP_PASSWORD": "nope"}
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "soupbintcp: error: login rejected by the server: not authorized"
    ]


def test_unreadable_journal_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.soup"
    bad.write_bytes(b"this is not a journal at all, not even close" * 10)
    result = run("serve", "--listen", "127.0.0.1:0", "--store", str(bad), "--no-auth")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_record_refuses_a_server_behind_the_recording(tmp_path: Path, server: Serve) -> None:
    copy = tmp_path / "ahead.bin"
    copy.write_bytes(b"".join(len(m).to_bytes(2, "big") + m for m in synthetic(1, 6000)))
    before = copy.read_bytes()
    result = run("record", server.address, str(copy), "--user", "user", "--count", "10")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "refusing to append" in lines[-1]
    assert "Traceback" not in result.stderr
    assert copy.read_bytes() == before  # nothing recorded twice
