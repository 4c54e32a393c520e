"""A minimal SoupBinTCP feed server for client benchmarks, run in its own process.

It answers any Login Request with Login Accepted at the requested sequence (1 for 0), then
writes a pre-encoded stream of ITCH-sized Sequenced Data packets as fast as the socket takes
them (`repeat` times over, for streams longer than is worth holding in memory), then End of
Session. Pre-encoding keeps the server's cost out of the client's figures.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import threading
import time
from multiprocessing.connection import Connection

from benchlib import itch_payloads
from soupbintcp.lowlevel import (
    EndOfSessionPacket,
    LoginAcceptedPacket,
    LoginRequestPacket,
    decode_packet,
)


def encode_stream(payloads: list[bytes]) -> bytes:
    return b"".join((len(p) + 1).to_bytes(2, "big") + b"S" + p for p in payloads)


def _read_login(conn: socket.socket) -> LoginRequestPacket:
    buf = b""
    while len(buf) < 2 or len(buf) < 2 + int.from_bytes(buf[:2], "big"):
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed before login")
        buf += chunk
    packet = decode_packet(buf[: 2 + int.from_bytes(buf[:2], "big")])
    assert isinstance(packet, LoginRequestPacket)
    return packet


def _serve_one(conn: socket.socket, stream: bytes, repeat: int) -> None:
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            request = _read_login(conn)
            conn.sendall(LoginAcceptedPacket("BENCH", max(1, request.sequence)).encode())
            for _ in range(repeat):
                conn.sendall(stream)
            conn.sendall(EndOfSessionPacket().encode())
            conn.settimeout(30)
            while conn.recv(65536):  # drain until the client closes
                pass
        except OSError:
            pass


def _run(n: int, seed: int, repeat: int, pipe: Connection) -> None:
    stream = encode_stream(itch_payloads(n, seed))
    listener = socket.create_server(("127.0.0.1", 0))
    pipe.send(listener.getsockname()[:2])
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_one, args=(conn, stream, repeat), daemon=True).start()


class FeedServer:
    """`with FeedServer(n) as address:` a feed server process serving `n` messages to each
    connection (`n * repeat` with `repeat`: the same `n` over again)."""

    def __init__(self, n: int, seed: int = 1, repeat: int = 1) -> None:
        self.n = n
        self.seed = seed
        self.repeat = repeat
        self._proc: mp.process.BaseProcess | None = None

    def __enter__(self) -> tuple[str, int]:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_run, args=(self.n, self.seed, self.repeat, child), daemon=True
        )
        self._proc.start()
        deadline = time.monotonic() + 60
        while not parent.poll(0.1):
            if not self._proc.is_alive() or time.monotonic() > deadline:
                self._stop()
                raise RuntimeError("feed server did not start")
        host, port = parent.recv()
        return str(host), int(port)

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        proc = self._proc
        if proc is not None:
            proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
