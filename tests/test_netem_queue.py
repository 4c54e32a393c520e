"""tests/netem_queue.py really delays, reorders and drops packets (`make test-long` only).

Two hosts of a scratch `Lan` (``sbt26-*``): a TCP echo's round trip and a numbered UDP stream
from one to the other are measured as they are, then with the tool on the second host's
link. A tool that did nothing would leave the round trip as it was and the stream whole and in
order. Long only because its library is built by `make test-long` (about 10 s of run).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .jetstream_support import Host, Lan
from .netem_queue import Netem, available

pytestmark = [
    pytest.mark.skipif(not Lan.available(), reason="needs root and ip netns"),
    pytest.mark.long,
    pytest.mark.timeout(120),
]

ECHO = """
import socket
server = socket.create_server(("0.0.0.0", 7026))
print("ready", flush=True)
peer, _ = server.accept()
peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while data := peer.recv(64):
    peer.sendall(data)
"""

PING = """
import socket, statistics, sys, time
peer = socket.create_connection((sys.argv[1], 7026), timeout=10)
peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
trips = []
for _ in range(15):
    start = time.monotonic()
    peer.sendall(b"x")
    assert peer.recv(64) == b"x"
    trips.append((time.monotonic() - start) * 1000)
print(statistics.median(trips))
"""

COUNT = 400

SINK = """
import json, socket
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("0.0.0.0", 7027))
sink.settimeout(10)
print("ready", flush=True)
seen, late, top = [], 0, -1
try:
    while len(seen) < COUNT:
        number = int(sink.recv(64))
        if number < 0:
            continue
        seen.append(number)
        late += number < top  # arrived after a higher number: reordered
        top = max(top, number)
        sink.settimeout(1.5)
except TimeoutError:
    pass
print(json.dumps({"received": len(seen), "distinct": len(set(seen)), "late": late}))
""".replace("COUNT", str(COUNT))

SEND = """
import socket, sys, time
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
out.sendto(b"-1", (sys.argv[1], 7027))  # the neighbour found before the stream starts
time.sleep(0.5)
for number in range(COUNT):
    out.sendto(str(number).encode(), (sys.argv[1], 7027))
    time.sleep(0.002)
""".replace("COUNT", str(COUNT))


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    why = available()
    assert why is None, why
    lan = Lan(prefix="sbt26-")
    try:
        lan.start()
        yield lan.add_host(), lan.add_host()
    finally:
        lan.stop()


def _started(host: Host, code: str) -> subprocess.Popen[str]:
    popen = subprocess.Popen(host.command([sys.executable, "-c", code]), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert popen.stdout is not None
    assert popen.stdout.readline().strip() == "ready", popen.communicate(timeout=5)
    return popen


def _round_trip(near: Host, far: Host) -> float:
    echo = _started(far, ECHO)
    try:
        out = subprocess.run(near.command([sys.executable, "-c", PING, far.address]),
                             capture_output=True, text=True, check=True, timeout=30)  # fmt: skip
        return float(out.stdout)
    finally:
        echo.kill()
        echo.communicate()


def _stream(near: Host, far: Host) -> dict[str, Any]:
    sink = _started(far, SINK)
    subprocess.run(near.command([sys.executable, "-c", SEND, far.address]), check=True,
                   timeout=30)  # fmt: skip
    out, err = sink.communicate(timeout=30)
    assert sink.returncode == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def test_delay_adds_to_the_round_trip_and_keeps_the_order(hosts: tuple[Host, Host]) -> None:
    near, far = hosts
    before = _round_trip(near, far)
    with Netem(far, delay=40) as netem:  # each way: 40 ms in, 40 ms out
        during = _round_trip(near, far)
        stream = _stream(near, far)
    after = _round_trip(near, far)
    print(f"round trip {before:.2f} ms, with 40 ms each way {during:.2f} ms, after {after:.2f} ms")
    print(f"stream {stream}, tool {netem.stats}")
    assert during >= before + 75
    assert during < before + 200
    assert after < before + 20  # gone with the tool
    assert stream == {"received": COUNT, "distinct": COUNT, "late": 0}  # no jitter: in order
    assert netem.stats["delayed"] >= COUNT


def test_jitter_and_reorder_deliver_out_of_order_and_loss_drops(hosts: tuple[Host, Host]) -> None:
    near, far = hosts
    clean = _stream(near, far)
    assert clean == {"received": COUNT, "distinct": COUNT, "late": 0}
    with Netem(far, delay=20, jitter=15, reorder=0.1, loss=0.1, seed=7) as netem:
        stream = _stream(near, far)
    print(f"clean {clean}, impaired {stream}, tool {netem.stats}")
    assert stream["distinct"] == stream["received"]  # nothing doubled
    assert stream["late"] >= COUNT // 10  # arrivals behind a higher number
    assert COUNT * 0.75 <= stream["received"] <= COUNT * 0.97  # about 10 % lost
    assert netem.stats["dropped"] > 0
    assert netem.stats["reordered"] > 0
