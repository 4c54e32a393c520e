"""Command-line conventions (issue 19, point 8): SIGTERM is Ctrl-C, summary included; `| head`
ends quietly; `record` waits for a server started after it; `-q`/`-v` after the command;
`--log-format json` covers the summary line. Subprocesses over loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from soupbintcp.store import FileStore, JournalReader

from .pipes import finish, read_until

CLI = [sys.executable, "-m", "soupbintcp", "--loop", "asyncio"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("SOUPBINTCP_")}
ENV["PYTHONUNBUFFERED"] = "1"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, env=ENV, check=False
    )


def journal_of(path: Path, n: int) -> Path:
    with FileStore(path, session_id="SESSION1") as store:
        store.append_many([b"message %d" % i for i in range(1, n + 1)])
    return path


def serve(journal: Path, port: int = 0) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*CLI, "serve", "--store", str(journal), "--no-auth", "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    line = read_until(proc, "serving session")
    return proc, line.rsplit(" on ", 1)[1].split()[0]


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    return finish(proc)[1]


def test_sigterm_stops_tail_and_record_with_their_summary(tmp_path: Path) -> None:
    server, address = serve(journal_of(tmp_path / "f.soup", 50))
    try:
        for command in (["tail", address], ["record", address, str(tmp_path / "r.soup")]):
            proc = subprocess.Popen(
                [*CLI, *command],
                stderr=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=ENV,
            )
            assert proc.stdout is not None
            if "tail" in command:  # caught up: its 50th line is out
                for _ in range(50):
                    assert proc.stdout.readline()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and "record" in command:
                if (tmp_path / "r.soup").exists():
                    with JournalReader(tmp_path / "r.soup") as reader:
                        if reader.count == 50:
                            break
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            _, err = finish(proc)
            assert proc.returncode == 130, err
            assert "50 messages" in err, err  # the summary
    finally:
        stop(server)


def test_a_closed_pipe_ends_dump_and_tail_quietly(tmp_path: Path) -> None:
    journal = journal_of(tmp_path / "p.soup", 200_000)
    dump = subprocess.Popen(
        [*CLI, "journal", "dump", str(journal)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert dump.stdout is not None
    assert dump.stdout.readline() == "1\tmessage 1\n"
    dump.stdout.close()  # what `| head -1` does
    _, err = finish(dump)
    assert dump.returncode == 0, err
    assert "error" not in err
    assert "interrupted" not in err
    server, address = serve(journal)
    try:
        tail = subprocess.Popen(
            [*CLI, "tail", address],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        assert tail.stdout is not None
        assert tail.stdout.readline() == "1\tmessage 1\n"
        tail.stdout.close()
        _, err = finish(tail)
        assert tail.returncode == 0, err
        assert "error" not in err
        assert "interrupted" not in err
    finally:
        stop(server)


def test_record_waits_for_a_server_started_after_it(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "late.soup"
    record = subprocess.Popen(
        [*CLI, "record", f"127.0.0.1:{port}", str(out), "--count", "20"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    read_until(record, "waiting for the server at 127.0.0.1:")
    server, _ = serve(journal_of(tmp_path / "src.soup", 20), port)
    try:
        _, err = finish(record, timeout=60)
        assert record.returncode == 0, err
        with JournalReader(out) as reader:
            assert reader.read(1, 20) == [b"message %d" % i for i in range(1, 21)]
    finally:
        stop(server)


def test_quiet_and_verbose_after_the_command_and_json_summaries(tmp_path: Path) -> None:
    journal = journal_of(tmp_path / "q.soup", 5)
    for flag in ("-q", "-v", "--verbose", "--quiet"):
        out = run("journal", "info", str(journal), flag)
        assert out.returncode == 0, out.stderr
    out = run("--log-format", "json", "journal", "dump", str(journal), "--count", "2")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines
    records = [json.loads(line) for line in lines]  # every line, the summary too
    assert any("2 messages" in r["message"] for r in records)
