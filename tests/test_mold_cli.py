"""`soupbintcp mold serve|tail|record|gateway` and `serve --mold-group`, each run as a
subprocess over loopback multicast."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from soupbintcp import FileStore
from soupbintcp.store import iter_binaryfile

from .mold_support import random_group
from .pipes import finish
from .test_cli import CLI, ENV, run, synthetic

LOOP = "127.0.0.1"
Served = tuple[str, str, "Background"]


def read_lines(stream: IO[str] | None, n: int, timeout: float) -> list[str]:
    """`n` lines from a child's pipe, failing after `timeout` s (or at its end) if fewer."""
    assert stream is not None
    got: list[str] = []

    def read() -> None:
        while len(got) < n and (line := stream.readline()):
            got.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert len(got) == n, f"{len(got)} of {n} lines within {timeout:g} s: {got}"
    return got


class Background:
    """A command in the background; `match` is the first stderr match of `pattern`."""

    def __init__(self, args: list[str], pattern: str) -> None:
        self.proc = subprocess.Popen(
            [*CLI, *args], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV
        )
        self.lines: list[str] = []
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            if m := re.search(pattern, line):
                self.match = m
                return
        self.stop()
        raise AssertionError(f"{args[:2]} did not start: " + "".join(self.lines))

    def stop(self) -> tuple[str, str]:
        """Ctrl-C; (stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = finish(self.proc)  # not communicate(): it loses what readline() buffered
        return out, "".join(self.lines) + err


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "feed.soup"
    with FileStore(path, session_id="MOLDCLI") as store:
        store.append_many(synthetic(1, 5000))
    return path


def group_arg() -> str:
    host, port = random_group()
    return f"{host}:{port}"


@pytest.fixture
def mold_serve(journal: Path) -> Iterator[Served]:
    group = group_arg()
    args = ["mold", "serve", "--group", group, "--request-listen", f"{LOOP}:0"]
    args += ["--store", str(journal), "--interface", LOOP, "--ttl", "0", "--end-linger", "0.5"]
    serve = Background(args, r"re-requests on (127\.0\.0\.1:\d+)")
    try:
        yield group, serve.match[1], serve
    finally:
        serve.stop()


def tail_args(group: str, request: str, *more: str) -> list[str]:
    return ["mold", "tail", "--group", group, "--request", request, "--interface", LOOP, *more]


def test_tail_back_fills_the_whole_session_in_jsonl(mold_serve: Served) -> None:
    group, request, _ = mold_serve
    result = run(*tail_args(group, request, "--count", "5000", "--format", "jsonl"))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [x["sequence"] for x in lines] == list(range(1, 5001))
    assert [bytes.fromhex(x["payload"]) for x in lines] == synthetic(1, 5000)
    assert "5,000 messages" in result.stderr


def test_tail_from_n_and_ctrl_c_ends_the_session(mold_serve: Served) -> None:
    group, request, serve = mold_serve
    tail = Background(tail_args(group, request, "--sequence", "4990"), r"listening to")
    # The history it asked for arrives before the server stops (a 0.5 s sleep was a guess).
    first = read_lines(tail.proc.stdout, 11, 30)
    _, err = serve.stop()
    assert "End of Session" in err
    out, err = finish(tail.proc)  # it stops by itself
    assert tail.proc.returncode == 0, err
    seqs = [int(line.split("\t")[0]) for line in [*first, *out.splitlines()]]
    assert seqs == list(range(4990, 5001))
    assert "stopped: end of session" in err


@pytest.mark.parametrize("suffix", [".soup", ".bin"])
def test_record_resumes_without_gap_or_duplicate(
    tmp_path: Path, mold_serve: Served, suffix: str
) -> None:
    group, request, _ = mold_serve
    target = tmp_path / f"copy{suffix}"
    base = ["mold", "record", "--group", group, "--request", request, "--interface", LOOP]
    for count in ("3000", "2000"):
        result = run(*base, str(target), "--count", count)
        assert result.returncode == 0, result.stderr
    if suffix == ".soup":
        with FileStore(target) as store:
            assert store.session_id == "MOLDCLI"
            assert store.read(1, 6000) == synthetic(1, 5000)
    else:
        assert list(iter_binaryfile(target)) == synthetic(1, 5000)


def test_gateway_serves_the_multicast_to_soupbintcp_clients(
    tmp_path: Path, mold_serve: Served
) -> None:
    group, request, _ = mold_serve
    args = ["mold", "gateway", "--group", group, "--request", request, "--interface", LOOP]
    args += ["--listen", f"{LOOP}:0", "--store", str(tmp_path / "gw.soup"), "--no-auth"]
    gateway = Background(args, r"onto SoupBinTCP (127\.0\.0\.1:\d+)")
    try:
        result = run("tail", gateway.match[1], "-u", "user", "--count", "5000", "--format", "hex")
        assert result.returncode == 0, result.stderr
        seqs = [int(line.split(" ")[0]) for line in result.stdout.splitlines()]
        assert seqs == list(range(1, 5001))
    finally:
        _, err = gateway.stop()
    assert "journal" in err


def test_serve_also_on_moldudp64(journal: Path) -> None:
    group = group_arg()
    args = ["serve", "--listen", f"{LOOP}:0", "--store", str(journal), "--no-auth"]
    args += ["--mold-group", group, "--mold-request-listen", f"{LOOP}:0"]
    args += ["--mold-interface", LOOP, "--mold-ttl", "0"]
    serve = Background(args, r"re-requests on (127\.0\.0\.1:\d+)")
    try:
        result = run(*tail_args(group, serve.match[1], "--count", "5000"))
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == 5000
    finally:
        serve.stop()


def test_mold_errors_are_one_line(journal: Path) -> None:
    result = run("serve", "--store", str(journal), "--no-auth", "--mold-group", group_arg())
    assert result.returncode != 0
    assert "go together" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_mold_serve_generates_a_live_feed(tmp_path: Path) -> None:
    group = group_arg()
    args = ["mold", "serve", "--group", group, "--request-listen", f"{LOOP}:0", "--ttl", "0"]
    args += ["--store", str(tmp_path / "gen.soup"), "--interface", LOOP, "--generate", "20000"]
    args += ["--end-linger", "0.2"]
    serve = Background(args, r"re-requests on (127\.0\.0\.1:\d+)")
    try:
        result = run(*tail_args(group, serve.match[1], "--sequence", "0", "--count", "500"))
        assert result.returncode == 0, result.stderr
        seqs = [int(line.split("\t")[0]) for line in result.stdout.splitlines()]
        assert seqs == list(range(seqs[0], seqs[0] + 500))
    finally:
        _, err = serve.stop()
    assert "End of Session" in err
