"""Round trips the way a user measures them: one request in flight (closed loop), and a fixed
rate from a sender thread (open loop, scheduled times, no coordinated omission).

Every pair runs in processes of its own: a server (`--serve KIND`) and a client (`--client
KIND`), each started with `PYTHONPATH` set to the source tree being measured, so that two
trees (`--before SRC`: main's code, checked out elsewhere) run side by side in one run,
rounds interleaved. Each side reports its own CPU time; the parent reads the server's from
/proc. `bench_latency.py --closed-loop` drives this module; run alone:

    python bench/roundtrip.py [--requests 3000] [--rounds 5] [--before /tmp/main/src]

Pairs (client <-> server):

* raw blocking: a blocking socket client against a blocking socket echo server (the floor)
* raw asyncio / raw uvloop: a Protocol client against a Protocol echo server on that loop
* hand-written: a blocking socket SoupBinTCP client (login by hand, then Unsequenced Data
  out, Sequenced Data back) against our server, so the server's share shows on its own
* blocking client / async client (asyncio, uvloop): ours against our server

Our server always runs `serve(user_store=..., on_unsequenced=publish)` on uvloop: each
request comes back as one Sequenced Data packet through `connection.publish`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
REQUEST_SIZE = 32  # an 8-byte request number, padded to an ITCH-like size
FRAME = 3 + REQUEST_SIZE  # as Unsequenced Data (request) or Sequenced Data (response)
PCTS = (50.0, 99.0, 99.9)
clock = time.perf_counter_ns

#: name -> (server kind, client kind, uses our code)
PAIRS: dict[str, tuple[str, str, bool]] = {
    "raw blocking echo": ("echo-blocking", "raw", False),
    "raw asyncio echo": ("echo-asyncio", "raw-asyncio", False),
    "raw uvloop echo": ("echo-uvloop", "raw-uvloop", False),
    "hand-written client, our server": ("soup", "hand", True),
    "blocking client": ("soup", "blocking", True),
    "async client, asyncio": ("soup", "async-asyncio", True),
    "async client, uvloop": ("soup", "async-uvloop", True),
}
OPEN_PAIRS: dict[str, tuple[str, str, bool]] = {
    "raw blocking echo": ("echo-blocking", "raw", False),
    "blocking client": ("soup", "blocking", True),
}


# --- servers -----------------------------------------------------------------------------------


def _nodelay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def serve_blocking_echo(listener: socket.socket) -> None:
    """One connection at a time, in this one thread (the pairs run one after another): a
    thread per connection would take its CPU time with it when it ends."""
    while True:
        conn, _ = listener.accept()
        _nodelay(conn)
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(65536):
                conn.sendall(data)


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        _nodelay(transport.get_extra_info("socket"))

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _serve_async(kind: str) -> None:
    loop = asyncio.get_running_loop()
    if kind == "soup":
        import soupbintcp
        from soupbintcp.store import MemoryStore

        def on_unsequenced(connection: Any, data: bytes) -> None:
            connection.publish(data)

        server = await soupbintcp.serve(
            ("127.0.0.1", 0),
            user_store=lambda user: MemoryStore(),
            session_id="RTT",
            authenticate=lambda *_: True,
            on_unsequenced=on_unsequenced,
        )
        port = server.address[1]
    else:
        echo = await loop.create_server(_Echo, "127.0.0.1", 0)
        port = echo.sockets[0].getsockname()[1]
    print(port, flush=True)
    stop = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent closes our stdin
    await stop.wait()


def server_main(kind: str) -> None:
    if kind == "echo-blocking":
        listener = socket.create_server(("127.0.0.1", 0))
        print(listener.getsockname()[1], flush=True)
        threading.Thread(target=serve_blocking_echo, args=(listener,), daemon=True).start()
        sys.stdin.read()
        return
    loop = "uvloop" if kind in ("soup", "echo-uvloop") else "asyncio"
    _run(loop, _serve_async(kind))


def _run(loop: str, coro: Any) -> Any:
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


# --- clients: each returns latencies (ns) of the measured requests ----------------------------

PAD = bytes(REQUEST_SIZE - 8)
HEADER = (REQUEST_SIZE + 1).to_bytes(2, "big") + b"U"


def _recv_exactly(sock: socket.socket, n: int, buf: bytearray) -> bytes:
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    out = bytes(buf[:n])
    del buf[:n]
    return out


def _hand_login(sock: socket.socket, user: str) -> None:
    """A Login Request written by hand (SoupBinTCP 4.00), then wait for Login Accepted."""
    body = b"L" + user.encode().ljust(6) + b"-".ljust(10) + b"RTT".ljust(10) + b"1".rjust(20)
    sock.sendall(len(body).to_bytes(2, "big") + body)
    buf = bytearray()
    while True:
        head = _recv_exactly(sock, 2, buf)
        packet = _recv_exactly(sock, int.from_bytes(head, "big"), buf)
        if packet[:1] == b"A":
            return
        if packet[:1] not in b"H+":
            raise ConnectionError(f"login answered with {packet[:1]!r}")


def _raw_trip(sock: socket.socket, soup: bool) -> Callable[[int], int]:
    buf = bytearray()

    def trip(i: int) -> int:
        sock.sendall(HEADER + i.to_bytes(8, "big") + PAD)
        while True:
            head = _recv_exactly(sock, 2, buf)
            packet = _recv_exactly(sock, int.from_bytes(head, "big"), buf)
            if not soup or packet[:1] == b"S":
                return int.from_bytes(packet[1:9], "big")

    return trip


def closed_loop(kind: str, port: int, n: int, warm: int, user: str) -> dict[str, Any]:
    address = ("127.0.0.1", port)
    lat = array("q")
    if kind in ("raw", "hand"):
        sock = socket.create_connection(address)
        _nodelay(sock)
        if kind == "hand":
            _hand_login(sock, user)
        trip = _raw_trip(sock, kind == "hand")
        cpu = time.process_time()
        for i in range(warm + n):
            t0 = clock()
            assert trip(i) == i
            if i >= warm:
                lat.append(clock() - t0)
        cpu = time.process_time() - cpu
        sock.close()
    elif kind == "blocking":
        import soupbintcp

        with soupbintcp.connect(address, user, "-", session_id="RTT") as client:
            send, receive = client.send_unseq_data, client.receive_msg
            cpu = time.process_time()
            for i in range(warm + n):
                t0 = clock()
                send(i.to_bytes(8, "big") + PAD)
                msg = receive(10.0)
                while msg[0] is None:
                    msg = receive(10.0)
                assert int.from_bytes(msg[1][:8], "big") == i
                if i >= warm:
                    lat.append(clock() - t0)
            cpu = time.process_time() - cpu
    else:
        loop = kind.split("-")[1]
        maker = _async_soup if kind.startswith("async") else _async_raw
        cpu, lat = _run(loop, maker(address, n, warm, user))
    return {"lat": list(lat), "cpu": cpu}


async def _async_soup(address: tuple[str, int], n: int, warm: int, user: str) -> Any:
    import soupbintcp

    lat = array("q")
    client = await soupbintcp.connect_async(address, user, "-", session_id="RTT")
    send, receive = client.send_unseq_data, client.receive_msg
    cpu = time.process_time()
    for i in range(warm + n):
        t0 = clock()
        send(i.to_bytes(8, "big") + PAD)
        msg = await receive()
        while msg[0] is None:
            msg = await receive()
        assert int.from_bytes(msg[1][:8], "big") == i
        if i >= warm:
            lat.append(clock() - t0)
    cpu = time.process_time() - cpu
    await client.close()
    return cpu, lat


class _RawClient(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _nodelay(transport.get_extra_info("socket"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= FRAME and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


async def _async_raw(address: tuple[str, int], n: int, warm: int, user: str) -> Any:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(_RawClient, *address)
    lat = array("q")
    cpu = time.process_time()
    for i in range(warm + n):
        t0 = clock()
        proto.waiter = loop.create_future()
        transport.write(HEADER + i.to_bytes(8, "big") + PAD)
        if len(proto.buf) < FRAME:
            await proto.waiter
        proto.buf = proto.buf[FRAME:]
        if i >= warm:
            lat.append(clock() - t0)
    cpu = time.process_time() - cpu
    transport.close()
    return cpu, lat


def open_loop(kind: str, port: int, n: int, warm: int, user: str, rate: int) -> dict[str, Any]:
    """A sender thread sends request i at start + i / rate (sleeping until then); this
    thread receives. Latency from the schedule and from the actual send."""
    address = ("127.0.0.1", port)
    total = warm + n
    sent = array("q", bytes(8 * total))
    got = array("q", bytes(8 * total))
    interval = 10**9 // rate
    client: Any = None
    if kind == "raw":
        sock = socket.create_connection(address)
        _nodelay(sock)
        buf = bytearray()

        def send(data: bytes) -> None:
            sock.sendall(HEADER + data)

        def receive() -> int:
            _recv_exactly(sock, 2, buf)
            return int.from_bytes(_recv_exactly(sock, FRAME - 2, buf)[1:9], "big")
    else:
        import soupbintcp

        client = soupbintcp.connect(address, user, "-", session_id="RTT")
        send = client.send_unseq_data

        def receive() -> int:
            msg = client.receive_msg(10.0)
            while msg[0] is None:
                msg = client.receive_msg(10.0)
            return int.from_bytes(msg[1][:8], "big")

    start = clock() + 20_000_000

    def sender() -> None:
        for i in range(total):
            due = start + i * interval
            delay = due - clock()
            if delay > 0:
                time.sleep(delay / 1e9)
            sent[i] = clock()
            send(i.to_bytes(8, "big") + PAD)

    thread = threading.Thread(target=sender)
    cpu = time.process_time()
    thread.start()
    for _ in range(total):
        i = receive()
        got[i] = clock()
    thread.join()
    cpu = time.process_time() - cpu
    if client is not None:
        client.close()
    else:
        sock.close()
    from_send = [got[i] - sent[i] for i in range(warm, total)]
    scheduled = [got[i] - (start + i * interval) for i in range(warm, total)]
    return {"lat": from_send, "scheduled": scheduled, "cpu": cpu}


def client_main(args: argparse.Namespace) -> None:
    if args.rate:
        out = open_loop(args.client, args.port, args.requests, args.warm, args.user, args.rate)
    else:
        out = closed_loop(args.client, args.port, args.requests, args.warm, args.user)
    print(json.dumps(out))


# --- the parent: servers up, pairs interleaved -------------------------------------------------


def _env(src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src)
    return env


class Server:
    def __init__(self, kind: str, src: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # its log of every connection closed
            env=_env(src),
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def cpu(self) -> float:
        """CPU seconds of all the server's threads, to the nanosecond (Linux schedstat; the
        clock-tick counts of /proc/PID/stat are 10 ms coarse)."""
        total = 0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def pct(values: list[int], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] / 1e3


def compiled(src: Path) -> bool:
    """Whether the tree at `src` runs the compiled fast path (a checkout used as `--before`
    has no extension built unless one was built or copied there)."""
    out = subprocess.run(
        [sys.executable, "-c", "from soupbintcp._speedups import ACCELERATED; print(ACCELERATED)"],
        env=_env(src),
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() == "True"


def measure(
    trees: dict[str, Path], requests: int, rounds: int, rate: int = 0
) -> dict[str, list[dict[str, float]]]:
    """results[label] = one summary per round (µs; CPU µs per request on each side)."""
    paths = {name: compiled(src) for name, src in trees.items()}
    if len(set(paths.values())) > 1:
        print(f"warning: the trees do not run the same path (compiled: {paths})", file=sys.stderr)
    pairs = OPEN_PAIRS if rate else PAIRS
    labels: list[tuple[str, str, str, Path]] = []  # label, server, client, tree
    for name, (server_kind, client_kind, ours) in pairs.items():
        for tree, src in trees.items() if ours else [("", SRC)]:
            label = f"{name} ({tree})" if tree else name
            labels.append((label, server_kind, client_kind, src))
    servers = {(kind, src): Server(kind, src) for _, kind, _, src in labels}
    results: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in labels}
    users = 0
    try:
        for _ in range(rounds):
            for label, kind, client, src in labels:
                server = servers[(kind, src)]
                cmd = [sys.executable, __file__, "--client", client, "--port", str(server.port)]
                cmd += ["--requests", str(requests), "--warm", str(requests // 10)]
                users += 1  # a fresh stream every time
                cmd += ["--user", f"u{users}", "--rate", str(rate)]
                before = server.cpu()
                out = subprocess.run(cmd, env=_env(src), capture_output=True, text=True)
                if out.returncode:
                    raise RuntimeError(f"{label}: {out.stderr}")
                res = json.loads(out.stdout)
                total = requests + requests // 10
                row = {f"p{p:g}": pct(res["lat"], p) for p in PCTS}
                if "scheduled" in res:
                    row["sched p50"] = pct(res["scheduled"], 50)
                row["cpu client"] = res["cpu"] / total * 1e6
                row["cpu server"] = (server.cpu() - before) / total * 1e6
                results[label].append(row)
    finally:
        for server in servers.values():
            server.stop()
    return results


def report(results: dict[str, list[dict[str, float]]], yardstick: str) -> list[str]:
    """Median of rounds [range], and p50 over the yardstick's median p50."""
    base = statistics.median(r["p50"] for r in results[yardstick])
    keys = list(next(iter(results.values()))[0])
    lines = ["| pair | " + " | ".join(keys) + " | p50 / yardstick |"]
    lines.append("|---" * (len(keys) + 2) + "|")
    for label, rows in results.items():
        cells = []
        for k in keys:
            vals = [r[k] for r in rows]
            cells.append(f"{statistics.median(vals):.1f} [{min(vals):.0f}-{max(vals):.0f}]")
        ratio = statistics.median(r["p50"] for r in rows) / base
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    return lines


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


#: (what, the pair, its yardstick, the figure, the most it may be, times the yardstick's)
TARGETS = (
    ("blocking client, closed-loop p50", "blocking client", "raw blocking echo", "p50", 1.5),
    ("async client on uvloop, closed-loop p50", "async client, uvloop", "raw uvloop echo",
     "p50", 1.5),
    ("server CPU per request (our server on uvloop)", "hand-written client, our server",
     "raw asyncio echo", "cpu server", 1.3),
)  # fmt: skip
OPEN_TARGET = ("blocking client, open-loop p50 from the send", "blocking client",
               "raw blocking echo", "p50", 1.5)  # fmt: skip


def targets(res: dict[str, Any]) -> list[tuple[str, float, float | None]]:
    """(what, the most allowed, the measured ratio of medians) for this tree's pairs."""
    out: list[tuple[str, float, float | None]] = []
    checks = [(res.get("closed", {}), t) for t in TARGETS]
    checks.append((res.get("open", {}), OPEN_TARGET))
    for results, (what, pair, yardstick, key, most) in checks:
        mine = results.get(f"{pair} (after)", results.get(f"{pair} (this tree)"))
        base = results.get(yardstick)
        if not mine or not base:
            out.append((what, most, None))
            continue
        out.append((what, most, _median(mine, key) / _median(base, key)))
    return out


def section(res: dict[str, Any]) -> list[str]:
    """The markdown section `bench/run.py` puts in its report."""
    out = [
        "## Round trips as users measure them (closed loop; open loop from a sender thread)",
        "",
        "One 32-byte request as Unsequenced Data, answered through `serve(user_store=...,"
        " on_unsequenced=...)` and `connection.publish` as one Sequenced Data packet; our"
        " server on uvloop. Each pair in its own processes, rounds interleaved; each cell the"
        " median of the rounds [lowest-highest], µs; CPU per request on each side (the"
        " server's from /proc/PID/task/*/schedstat). Yardsticks: a blocking socket echo server"
        " and client (the floor), asyncio and uvloop Protocol echo servers and clients, and a"
        " hand-written blocking SoupBinTCP client against our server (the server's share).",
        "",
    ]
    out += report(res["closed"], "raw blocking echo")
    if res.get("open"):
        out += ["", f"Open loop at {res['rate']:,} requests/s, latency from the send:", ""]
        out += report(res["open"], "raw blocking echo")
    out.append("")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve")
    parser.add_argument("--client")
    parser.add_argument("--port", type=int)
    parser.add_argument("--user", default="u")
    parser.add_argument("--warm", type=int, default=300)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=int, default=0, help="open loop at this rate")
    parser.add_argument("--before", type=Path, help="another source tree to measure too")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    if args.serve:
        server_main(args.serve)
        return
    if args.client:
        client_main(args)
        return
    trees = {"after": SRC} if args.before is None else {"before": args.before, "after": SRC}
    if args.before is None:
        trees = {"this tree": SRC}
    closed = measure(trees, args.requests, args.rounds)
    print(f"closed loop, {args.requests} requests per round, {args.rounds} rounds; µs")
    print("\n".join(report(closed, "raw blocking echo")))
    out: dict[str, Any] = {"closed": closed, "rate": args.rate}
    if args.rate:
        opened = measure(trees, args.requests, args.rounds, args.rate)
        print(f"\nopen loop at {args.rate}/s, latency from the send; µs")
        print("\n".join(report(opened, "raw blocking echo")))
        out["open"] = opened
    print()
    for what, most, ratio in targets(out):
        shown = "not measured" if ratio is None else f"{ratio:.2f}x"
        print(f"{what}: {shown} (target <= {most}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
