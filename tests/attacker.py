"""The attacks of the attack suite, run as their own process so that their CPU is not the
server's: loopback only, stdlib only, wire bytes built by hand from the spec.

    python tests/attacker.py MODE HOST PORT [options]

Modes (each prints `ready {...}` once set up, acts, and prints one JSON line of results):
  trickle COUNT       COUNT connections that send a Login Request one byte per --interval;
                      one the server closes is opened again; until `stop` on stdin.
  flood COUNT         COUNT connections blasting 64 KB packets after `go` on stdin: Debug
                      packets before any login, or with --login Unsequenced Data after
                      logging in; until --seconds or --max-bytes per connection.
  burst COUNT         COUNT connections at once after `go`, then each logs in
                      (--user/--password); how many got Login Accepted, and how long it took.
  stall COUNT         COUNT connections that log in (sequence 1) and never read, with a
                      tiny receive buffer; until `stop`.
  brute               --concurrency workers log in with wrong passwords after `go`, one
                      connection per attempt, for --seconds; how many answers came back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import socket
import statistics
import sys
import time


def packet(kind: bytes, payload: bytes = b"") -> bytes:
    return (len(payload) + 1).to_bytes(2, "big") + kind + payload


def login_request(user: str, password: str, sequence: int = 0) -> bytes:
    return packet(
        b"L",
        user.encode().ljust(6)
        + password.encode().ljust(10)
        + b" " * 10
        + str(sequence).encode().rjust(20),
    )


async def read_packet(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    header = await reader.readexactly(2)
    body = await reader.readexactly(int.from_bytes(header, "big"))
    return body[:1], body[1:]


async def answer(reader: asyncio.StreamReader) -> str:
    """'A' (accepted), 'J' (rejected) or 'closed', skipping heartbeats."""
    try:
        while True:
            kind, _ = await read_packet(reader)
            if kind != b"H":
                return kind.decode()
    except (asyncio.IncompleteReadError, ConnectionError):
        return "closed"


async def stdin_line() -> str:
    line: str = await asyncio.to_thread(sys.stdin.readline)
    return line.strip()


def say(word: str, **figures: object) -> None:
    print(f"{word} {json.dumps(figures)}" if word else json.dumps(figures), flush=True)


async def open_from(host: str, port: int, source: str | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    if source:
        sock.bind((source, 0))
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    return sock


# --- trickle -----------------------------------------------------------------------------------


async def trickle(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    request = login_request(args.user, args.password)
    opened = closed = 0
    stopping = asyncio.Event()
    ready = asyncio.Event()
    established = 0

    async def one() -> None:
        nonlocal opened, closed, established
        first = True
        while not stopping.is_set():
            try:
                sock = await open_from(args.host, args.port, args.source)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            opened += 1
            try:
                for i in range(len(request) - 1):  # never the last byte
                    await loop.sock_sendall(sock, request[i : i + 1])
                    if first:
                        first = False
                        established += 1
                        if established == args.count:
                            ready.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(loop.sock_recv(sock, 1), args.interval)
                        raise ConnectionResetError  # EOF or data: the server closed it
                    if stopping.is_set():
                        return
            except OSError:
                closed += 1
            finally:
                sock.close()
            await asyncio.sleep(0.01)  # a storm, not a busy loop on this machine

    tasks = [loop.create_task(one()) for _ in range(args.count)]
    await ready.wait()
    say("ready", opened=opened)
    await stdin_line()
    stopping.set()
    await asyncio.wait(tasks, timeout=args.interval + 5)
    say("", opened=opened, closed_by_server=closed)


# --- flood -------------------------------------------------------------------------------------


async def flood(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    kind = b"U" if args.login else b"+"
    per_chunk = max(1, (1 << 20) // args.packet)
    body = b"x" * (args.packet - 3 - 11)
    fixed: bytes = packet(kind, b"%010d:" % 0 + body) * per_chunk

    def chunk(index: int) -> bytes:
        """`per_chunk` packets numbered from `index` (payload "0000000012:xxx..."), so the
        handler can tell a gap, a duplicate or a swap; the same bytes if not --numbered."""
        if not args.numbered:
            return fixed
        return b"".join(packet(kind, b"%010d:" % (index + i) + body) for i in range(per_chunk))

    socks = []
    for _ in range(args.count):
        sock = await open_from(args.host, args.port, args.source)
        if args.login:
            await loop.sock_sendall(sock, login_request(args.user, args.password))
            got = await asyncio.wait_for(loop.sock_recv(sock, 3 + 10 + 20), 10)
            assert got[2:3] == b"A", got
        socks.append(sock)
    say("ready")
    await stdin_line()
    sent = [0] * args.count
    packets = [0] * args.count  # sent whole, in chunks the kernel took
    closed = [False] * args.count
    started = time.monotonic()

    async def blast(i: int) -> None:
        sock = socks[i]
        end = started + args.seconds
        while time.monotonic() < end and sent[i] < args.max_bytes:
            data = chunk(packets[i])
            try:
                await asyncio.wait_for(loop.sock_sendall(sock, data), end - time.monotonic())
            except TimeoutError:
                return  # the server stopped reading: that is the bound
            except OSError:
                closed[i] = True
                return
            sent[i] += len(data)
            packets[i] += per_chunk

    await asyncio.gather(*(blast(i) for i in range(args.count)))
    seconds = time.monotonic() - started
    say("", sent=sent, packets=packets, closed=closed, seconds=round(seconds, 3))
    # Say goodbye without a reset (which could drop what the server has not read yet):
    # EOF, then wait for the server to close its side.
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)

    async def until_closed(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while await loop.sock_recv(sock, 65536):
                pass

    await asyncio.wait([loop.create_task(until_closed(s)) for s in socks], timeout=60)
    for sock in socks:
        sock.close()


# --- burst -------------------------------------------------------------------------------------


async def burst(args: argparse.Namespace) -> None:
    """Every connection first (as many clients starting at once do), then every Login
    Request; Login Accepted timed from the start."""
    request = login_request(args.user, args.password)
    say("ready")
    await stdin_line()
    started = time.monotonic()
    times: list[float] = []
    outcomes: dict[str, int] = {}
    connected = asyncio.Event()
    waiting = args.count

    async def one() -> None:
        nonlocal waiting
        outcome = "timeout"
        writer = None
        try:
            async with asyncio.timeout(args.timeout):
                try:
                    reader, writer = await asyncio.open_connection(args.host, args.port)
                finally:
                    waiting -= 1
                    if not waiting:
                        connected.set()
                await connected.wait()
                writer.write(request)
                outcome = await answer(reader)
                if outcome == "A":
                    times.append(time.monotonic() - started)
        except TimeoutError:
            pass
        except OSError as exc:
            outcome = type(exc).__name__
        finally:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if writer is not None:
                writer.close()

    await asyncio.gather(*(one() for _ in range(args.count)))
    times.sort()
    say(
        "",
        outcomes=outcomes,
        accepted=len(times),
        p50=round(statistics.median(times), 3) if times else None,
        p90=round(times[int(len(times) * 0.9) - 1], 3) if times else None,
        max=round(times[-1], 3) if times else None,
    )


# --- stall -----------------------------------------------------------------------------------


async def stall(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    socks = []
    for _ in range(args.count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, (args.host, args.port))
        await loop.sock_sendall(sock, login_request(args.user, args.password, sequence=1))
        # Wait for the first byte of the answer before the next: this attack is about what
        # logged-in clients that never read hold, not a burst of logins (a burst of more than
        # max_pending_logins gets its oldest evicted, as the admission tests show).
        await asyncio.wait_for(loop.sock_recv(sock, 1), args.timeout)
        socks.append(sock)
    say("ready")
    await stdin_line()
    for sock in socks:
        sock.close()
    say("", stalled=len(socks))


# --- brute -------------------------------------------------------------------------------------


async def brute(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    say("ready")
    await stdin_line()
    started = time.monotonic()
    end = started + args.seconds
    answers: dict[str, int] = {}
    attempt = 0

    async def worker() -> None:
        nonlocal attempt
        while time.monotonic() < end:
            attempt += 1
            request = login_request(args.user, f"wrong{attempt}")
            outcome = "timeout"
            try:
                sock = await open_from(args.host, args.port, args.source)
            except OSError as exc:
                answers[type(exc).__name__] = answers.get(type(exc).__name__, 0) + 1
                await asyncio.sleep(0.01)
                continue
            reader, writer = await asyncio.open_connection(sock=sock)
            try:
                writer.write(request)
                with contextlib.suppress(TimeoutError):
                    outcome = await asyncio.wait_for(answer(reader), end - time.monotonic())
            finally:
                writer.close()
            answers[outcome] = answers.get(outcome, 0) + 1
            await asyncio.sleep(0)

    tasks = [loop.create_task(worker()) for _ in range(args.concurrency)]
    await asyncio.gather(*tasks)
    say("", answers=answers, seconds=round(time.monotonic() - started, 3))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["trickle", "flood", "burst", "stall", "brute"])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("count", type=int, nargs="?", default=1)
    parser.add_argument("--user", default="evil")
    parser.add_argument("--password", default="evil1")
    parser.add_argument("--source", help="local address to connect from (127.x.y.z)")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--login", action="store_true")
    parser.add_argument("--numbered", action="store_true")
    parser.add_argument("--packet", type=int, default=65535)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--max-bytes", type=int, default=1 << 30)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count * 2 + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    asyncio.run(globals()[args.mode](args))


if __name__ == "__main__":
    main()
