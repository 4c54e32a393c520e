"""Long-running commands stop on the first Ctrl-C or SIGTERM within their deadline, at once
on the second, and say what they wait for (issue 19, point 3). `mold serve` runs in a network
namespace of its own with no route for multicast, as on a host without one."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soupbintcp.store import FileStore

from .pipes import finish, read_until

CLI = [sys.executable, "-m", "soupbintcp", "--loop", "asyncio"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("SOUPBINTCP_")}
ENV["PYTHONUNBUFFERED"] = "1"


@contextlib.contextmanager
def namespace_without_multicast() -> Iterator[str]:
    """A network namespace with only loopback up: no route for multicast."""
    name = f"sbt19-nomc{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace: {made.stderr.decode().strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_mold_serve_without_a_multicast_route_warns_stops_and_exits_non_zero(
    tmp_path: Path,
) -> None:
    with namespace_without_multicast() as ns:
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                *CLI,
                "mold",
                "serve",
                "--group",
                "239.1.1.1:5000",
                "--request-listen",
                "127.0.0.1:0",
                "--store",
                str(tmp_path / "m.soup"),
                "--generate",
                "1000",
                "--end-linger",
                "1",
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=ENV,
        )
        read_until(proc, "transmitting session")
        seen = read_until(proc, "cannot send to the MoldUDP64 group")
        assert " WARNING " in seen.splitlines()[-1]
        assert "--interface" in seen
        proc.send_signal(signal.SIGINT)
        stopped_at = time.monotonic()
        _, err = finish(proc, timeout=30)
        took = time.monotonic() - stopped_at
    assert proc.returncode == 1, err
    assert took < 20, err  # the End of Session linger is 1 s; before, it never returned
    assert "nothing could be sent to 239.1.1.1:5000: network is unreachable" in err
    assert err.count("cannot send to the MoldUDP64 group") == 0  # said once, before
    assert "sends failed" in err


def test_mold_serve_stops_at_once_on_a_second_signal(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            *CLI,
            "mold",
            "serve",
            "--group",
            "239.1.1.1:5000",
            "--interface",
            "127.0.0.1",
            "--request-listen",
            "127.0.0.1:0",
            "--store",
            str(tmp_path / "m.soup"),
            "--end-linger",
            "600",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    read_until(proc, "transmitting session")
    proc.send_signal(signal.SIGTERM)  # SIGTERM as Ctrl-C
    read_until(proc, "waiting for End of Session on the group for 600 s")
    proc.send_signal(signal.SIGINT)
    _, err = finish(proc, timeout=30)
    assert proc.returncode == 130, err
    assert "SIGINT again: stopping now, not waiting for End of Session" in err


def test_serve_says_how_many_clients_its_drain_waits_for_and_a_second_signal_skips_it(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "d.soup"
    with FileStore(journal, session_id="SESSION1") as store:
        for _ in range(40):
            store.append_many([b"x" * 1000] * 1000)  # 40 MB: more than a socket holds
    proc = subprocess.Popen(
        [
            *CLI,
            "serve",
            "--store",
            str(journal),
            "--no-auth",
            "--listen",
            "127.0.0.1:0",
            "--drain-timeout",
            "600",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    line = read_until(proc, "serving session")
    host, port = line.rsplit(" on ", 1)[1].split()[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        login = b"L" + b"u".ljust(6) + b"p".ljust(10) + b" " * 10 + b"1".rjust(20)
        stalled.sendall(len(login).to_bytes(2, "big") + login)
        assert stalled.recv(3)  # logged in; it never reads the rest
        proc.send_signal(signal.SIGINT)
        read_until(proc, "waiting for 1 client to receive the rest and End of Session")
        proc.send_signal(signal.SIGTERM)
        _, err = finish(proc, timeout=30)
    assert proc.returncode == 130, err
    assert "SIGTERM again: stopping now, not waiting for 1 client" in err
