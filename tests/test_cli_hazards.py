"""Operational hazards of `serve` (issue 19): a mistake in an option, a full disk, and
`--no-auth` beside credentials in the environment. Each runs the command line as a
subprocess over loopback, as a user would."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from soupbintcp.store import FileStore, JournalReader

from .pipes import finish, read_until

CLI = [sys.executable, "-m", "soupbintcp", "--loop", "asyncio"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("SOUPBINTCP_")}
ENV["PYTHONUNBUFFERED"] = "1"


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or ENV, check=False
    )


def started(proc: subprocess.Popen[str], text: str = " on 127.0.0.1:", timeout: float = 30) -> str:
    return read_until(proc, text, timeout)


def busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


# --- 1. a mistake in an option never ends the session --------------------------------------


def test_a_busy_metrics_port_stops_serve_before_it_publishes_and_leaves_the_session_open(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "mp.soup"
    with FileStore(journal, session_id="SESSION1") as store:
        store.append_many([b"before %d" % i for i in range(100)])
    with busy_port() as taken:
        port = taken.getsockname()[1]
        out = run("serve", "--store", str(journal), "--no-auth", "--listen", "127.0.0.1:0",
                  "--generate", "100000", "--metrics", f"127.0.0.1:{port}")  # fmt: skip
    assert out.returncode != 0
    assert f"cannot serve metrics on 127.0.0.1:{port}: address already in use" in out.stderr
    assert "serving session" not in out.stderr  # nothing was accepted or published
    with JournalReader(journal) as reader:
        report = reader.verify()
    assert (report.messages, report.ended) == (100, False)
    # The corrected command serves and publishes into the same session.
    proc = subprocess.Popen(
        [
            *CLI,
            "serve",
            "--store",
            str(journal),
            "--no-auth",
            "--listen",
            "127.0.0.1:0",
            "--generate",
            "2000",
            "--metrics",
            "127.0.0.1:0",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    started(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with JournalReader(journal) as reader:
            if reader.count > 100:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = finish(proc)
    assert proc.returncode == 0, err
    with JournalReader(journal) as reader:
        assert reader.count > 100


def test_a_missing_tls_file_or_a_bad_key_stops_serve_with_what_to_do(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    out = run("serve", "--store", str(tmp_path / "t.soup"), "--no-auth",
              "--listen", "127.0.0.1:0", "--tls-cert", str(bad))  # fmt: skip
    assert out.returncode != 0
    assert "PEM lib" not in out.stderr
    assert str(bad) in out.stderr
    assert not (tmp_path / "t.soup").exists()


# --- 4. a full disk is said at once, and the command stops ---------------------------------


@contextlib.contextmanager
def small_disk() -> Iterator[tuple[Path, dict[str, object]]]:
    """A 1 MiB tmpfs mounted for the test (root), or where that is impossible a directory
    whose writes fail past 1 MiB (RLIMIT_FSIZE: the kernel's EFBIG, an injected write
    error). Yields the directory and the Popen arguments that apply the limit."""
    where = Path(tempfile.mkdtemp(prefix="sbt19-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "sbt19-disk", str(where)],
        capture_output=True, check=False,
    ).returncode == 0  # fmt: skip
    popen: dict[str, object] = {}
    if not mounted:

        def limit() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

        popen = {"preexec_fn": limit}
    try:
        yield where, popen
    finally:
        if mounted:
            subprocess.run(["umount", str(where)], check=False)
        for leftover in where.glob("*"):
            leftover.unlink()
        where.rmdir()


def test_a_full_disk_is_an_error_at_once_and_serve_exits_non_zero(tmp_path: Path) -> None:
    with small_disk() as (disk, popen):
        journal = disk / "feed.soup"
        proc = subprocess.Popen(
            [
                *CLI,
                "serve",
                "--store",
                str(journal),
                "--no-auth",
                "--listen",
                "127.0.0.1:0",
                "--generate",
                "200000",
                "--metrics",
                "127.0.0.1:0",
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=ENV,
            **popen,  # type: ignore[call-overload]
        )
        started(proc)
        _, err = finish(proc, timeout=60)  # it stops by itself
        assert proc.returncode not in (0, -9), err  # exited non-zero, not killed
        lines = err.splitlines()
        failed = [i for i, line in enumerate(lines) if " ERROR writing to the store" in line]
        assert failed, err
        stopped = next(i for i, line in enumerate(lines) if line.startswith("stopped:"))
        assert failed[0] < stopped  # said when it happened, not at shutdown
        assert "left open" in lines[stopped]  # an error exit never ends the session
        reason = "no space left on device" if not popen else "file too large"
        assert f"cannot publish into {journal}: {reason}" in err
        with JournalReader(journal) as reader:
            report = reader.verify()
            assert not report.corrupt
            assert report.tail_problem is None
            assert report.checksums == "ok"
            assert not report.ended
            assert reader.read(1, reader.count)  # every record whole


# --- 6. --no-auth is no-auth -----------------------------------------------------------------


def test_no_auth_accepts_any_login_whatever_the_environment(tmp_path: Path) -> None:
    env = {**ENV, "SOUPBINTCP_USER": "u", "SOUPBINTCP_PASSWORD": "x"}
    journal = tmp_path / "na.soup"
    with FileStore(journal, session_id="SESSION1") as store:
        store.append_many([b"one", b"two"])
    proc = subprocess.Popen(
        [*CLI, "serve", "--store", str(journal), "--no-auth", "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line = started(proc)
        address = line.rsplit(" on ", 1)[1].split()[0]
        tail = run("tail", address, "--user", "stall", "--password", "whatever", "--count", "2")
        assert tail.returncode == 0, tail.stderr
        assert tail.stdout.splitlines() == ["1\tone", "2\ttwo"]
    finally:
        proc.send_signal(signal.SIGINT)
        finish(proc)
    both = run("serve", "--store", str(journal), "--no-auth", "--user", "u", env=env)
    assert both.returncode != 0
    assert "--no-auth accepts any login, so --user would be ignored" in both.stderr
