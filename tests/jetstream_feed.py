"""A whole log-backed feed as separate processes, on separate "hosts" where the machine allows.

`Feed` starts a three-node JetStream cluster, gateways (`soupbintcp serve --store nats://...`),
writers (the same command with `--generate`) and a process of checking clients
(tests/jetstream_clients.py), each on its own host: a network namespace of a `Lan` when the
test runs as root with `ip netns`, else the loopback interface. It kills and restarts them as
a failure would, and reads the gateways' caches afterwards to compare them byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soupbintcp.store import FileStore

from .jetstream_support import Host, Lan, NatsCluster, free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "secret"


@dataclass
class Proc:
    name: str
    host: Host
    port: int
    cache: Path
    log: Path
    popen: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"{self.host.address}:{self.port}"

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None


class Feed:
    """The processes of one feed. `netns`: hosts are network namespaces (needs root)."""

    def __init__(self, tmp: Path, *, netns: bool, nodes: int = 3, prefix: str = "sbt") -> None:
        self.tmp = tmp
        self.lan = Lan(prefix) if netns else None
        self.where = "network namespaces (one per host)" if netns else "loopback ports"
        if self.lan is not None:
            self.lan.start()
        nats_hosts = [self._host() for _ in range(nodes)]
        self.cluster = NatsCluster(nodes, nats_hosts)
        self.url = f"{self.cluster.store_url}/FEED"
        self.procs: list[Proc] = []
        self._client_host: Host | None = None
        self._client_runs = 0

    def _host(self) -> Host:
        return self.lan.add_host() if self.lan is not None else Host()

    # --- processes -------------------------------------------------------------------------

    def _spawn(self, name: str, host: Host, argv: list[str], cache: Path, port: int) -> Proc:
        log = self.tmp / f"{name}.log"
        env = dict(os.environ, SOUPBINTCP_PASSWORD=PASSWORD, PYTHONPATH=str(ROOT))
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                host.command(argv), stdout=out, stderr=out, env=env, cwd=self.tmp
            )
        proc = Proc(name, host, port, cache, log, popen)
        self.procs.append(proc)
        return proc

    def gateway(
        self,
        name: str,
        *,
        host: Host | None = None,
        port: int | None = None,
        cache: Path | None = None,
        generate: float | None = None,
        wait: bool = True,
        extra: list[str] | None = None,
        url: str | None = None,
    ) -> Proc:
        """`soupbintcp serve` on the log: a follower, or the writer with `generate`. `url`:
        another address of the log (naming only some of its nodes, say)."""
        host = host or self._host()
        port = port or (7000 if host.netns else free_port(host.address))
        cache = cache or self.tmp / f"{name}.soup"
        argv = [sys.executable, "-m", "soupbintcp", "serve",
                "--listen", f"{host.address}:{port}", "--store", url or self.url,
                "--cache", str(cache), "--user", "user", *(extra or [])]  # fmt: skip
        if generate is not None:
            argv += ["--generate", str(generate)]
        proc = self._spawn(name, host, argv, cache, port)
        if wait:
            self.wait_for_text(proc, "serving session")
        return proc

    def wait_for_text(self, proc: Proc, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in proc.text():
            if not proc.alive():
                raise AssertionError(f"{proc.name} exited: {proc.text()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{proc.name} never said {text!r}: {proc.text()[-2000:]}")
            time.sleep(0.05)

    def kill(self, proc: Proc) -> None:
        """SIGKILL, as a crash or a pulled plug would."""
        if proc.alive():
            proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait()

    def stop(self, proc: Proc, timeout: float = 30.0) -> int:
        """Ctrl-C: a writer ends the session first."""
        if proc.alive():
            proc.popen.send_signal(signal.SIGINT)
        try:
            return proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            raise AssertionError(f"{proc.name} did not stop: {proc.text()[-2000:]}") from None

    async def clients(self, addresses: list[list[str]], timeout: float = 120.0) -> Clients:
        if self._client_host is None:
            self._client_host = self._host()
        n = self._client_runs
        self._client_runs += 1
        config = self.tmp / f"clients{n}.json"
        result = self.tmp / f"clients{n}.result.json"
        config.write_text(json.dumps({"clients": addresses, "timeout": timeout}))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        argv = [sys.executable, "-m", "tests.jetstream_clients", str(config), str(result)]
        process = await asyncio.create_subprocess_exec(
            *self._client_host.command(argv),
            stdout=asyncio.subprocess.PIPE,
            stderr=open(self.tmp / f"clients{n}.log", "ab"),  # noqa: SIM115
            env=env,
            cwd=ROOT,
        )
        return Clients(process, result)

    # --- what the caches hold --------------------------------------------------------------

    @staticmethod
    def cache_frames(proc: Proc) -> tuple[bytes, int]:
        with FileStore(proc.cache, readonly=True) as store:
            frames, count = store.read_frames(1, 1 << 40)
            return frames, count

    def close(self) -> None:
        for proc in self.procs:
            self.kill(proc)
        self.cluster.stop()
        if self.lan is not None:
            self.lan.stop()


class Clients:
    """The checking clients' process: its progress as it goes, its verdicts at the end."""

    def __init__(self, process: asyncio.subprocess.Process, result: Path) -> None:
        self.process = process
        self.result = result
        self.least = 0

    async def progress(self, at_least: int, timeout: float = 60.0) -> None:
        """Wait until every client has `at_least` messages."""
        assert self.process.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.least < at_least:
            line = await asyncio.wait_for(self.process.stdout.readline(), deadline - loop.time())
            if not line:
                raise AssertionError("the clients' process ended early")
            words = line.split()
            if words and words[0] == b"progress":
                self.least = int(words[1])

    async def outcomes(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        assert self.process.stdout is not None
        await asyncio.wait_for(self.process.stdout.read(), timeout)
        await asyncio.wait_for(self.process.wait(), timeout)
        outcomes: list[dict[str, Any]] = json.loads(self.result.read_text())
        return outcomes
