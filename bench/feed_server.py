"""A minimal SoupBinTCP feed server for client benchmarks, run in its own process.

It answers any Login Request with Login Accepted at the requested sequence (1 for 0), then
writes a pre-encoded stream of ITCH-sized Sequenced Data packets as fast as the socket takes
them, then End of Session. Pre-encoding keeps the server's cost out of the client's figures.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import socket
import threading
from multiprocessing.connection import Connection

from soupbintcp import EndOfSession, LoginAccepted, LoginRequest, decode_packet


def itch_payloads(n: int, seed: int = 1) -> list[bytes]:
    """ITCH-sized messages: 11 to 50 bytes, about 30 on average."""
    rng = random.Random(seed)
    sizes = [rng.randint(11, 50) for _ in range(n)]
    blob = rng.randbytes(sum(sizes))
    out = []
    pos = 0
    for size in sizes:
        out.append(blob[pos : pos + size])
        pos += size
    return out


def encode_stream(payloads: list[bytes]) -> bytes:
    return b"".join((len(p) + 1).to_bytes(2, "big") + b"S" + p for p in payloads)


def _read_login(conn: socket.socket) -> LoginRequest:
    buf = b""
    while len(buf) < 2 or len(buf) < 2 + int.from_bytes(buf[:2], "big"):
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed before login")
        buf += chunk
    packet = decode_packet(buf[: 2 + int.from_bytes(buf[:2], "big")])
    assert isinstance(packet, LoginRequest)
    return packet


def _serve_one(conn: socket.socket, stream: bytes) -> None:
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            request = _read_login(conn)
            conn.sendall(LoginAccepted("BENCH", max(1, request.sequence)).encode())
            conn.sendall(stream)
            conn.sendall(EndOfSession().encode())
            conn.settimeout(30)
            while conn.recv(65536):  # drain until the client closes
                pass
        except OSError:
            pass


def _run(n: int, seed: int, pipe: Connection) -> None:
    stream = encode_stream(itch_payloads(n, seed))
    listener = socket.create_server(("127.0.0.1", 0))
    pipe.send(listener.getsockname()[:2])
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_one, args=(conn, stream), daemon=True).start()


class FeedServer:
    """`with FeedServer(n) as address:` a feed server process serving `n` messages."""

    def __init__(self, n: int, seed: int = 1) -> None:
        self.n = n
        self.seed = seed
        self._proc: mp.process.BaseProcess | None = None

    def __enter__(self) -> tuple[str, int]:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_run, args=(self.n, self.seed, child), daemon=True)
        self._proc.start()
        if not parent.poll(60):
            raise RuntimeError("feed server did not start")
        host, port = parent.recv()
        return str(host), int(port)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.join(5)
