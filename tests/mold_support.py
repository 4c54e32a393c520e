"""Helpers for the MoldUDP64 tests: a stream cut into packets, a re-request server without
sockets, and a free UDP port and multicast group per test."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass, field

from soupbintcp._wire._moldudp64 import (
    decode_request,
    encode_downstream,
    end_of_session,
    pack_downstream,
    session_field,
)

SESSION = "TEST1"
FIELD = session_field(SESSION)


def itch_like(n: int, seed: int = 1) -> list[bytes]:
    """`n` messages of ITCH-like sizes (11 to 50 bytes), each naming its own number."""
    rng = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        head = i.to_bytes(8, "big")
        out.append(head + bytes(rng.randrange(3, 43)))
    return out


def packets(messages: list[bytes], field_: bytes = FIELD, max_payload: int = 1400) -> list[bytes]:
    """The stream as a transmitter sends it: datagrams packed up to `max_payload`."""
    out = []
    start = 0
    while start < len(messages):
        datagram, n = pack_downstream(field_, start + 1, messages, start, max_payload)
        out.append(datagram)
        start += n
    return out


def heartbeat(sequence: int, field_: bytes = FIELD) -> bytes:
    return encode_downstream(field_, sequence, [])


def end(sequence: int, field_: bytes = FIELD) -> bytes:
    return end_of_session(field_, sequence)


@dataclass
class Answers:
    """A re-request server over a list of messages: each request answered with what fits in
    one datagram (at most `cap` messages), nothing for messages that do not exist."""

    messages: list[bytes]
    cap: int = 1000
    max_payload: int = 1400
    field_: bytes = FIELD
    asked: list[tuple[int, int]] = field(default_factory=list)

    def answer(self, request: bytes) -> bytes | None:
        raw, sequence, count = decode_request(request)
        assert raw == self.field_
        self.asked.append((sequence, count))
        if sequence < 1 or sequence > len(self.messages) or count == 0:
            return None
        wanted = self.messages[sequence - 1 : sequence - 1 + min(count, self.cap)]
        datagram, _ = pack_downstream(self.field_, sequence, wanted, 0, self.max_payload)
        return datagram


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def random_group() -> tuple[str, int]:
    """A multicast group of the administratively scoped range and a free port."""
    rng = random.SystemRandom()
    return f"239.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}", (
        free_udp_port()
    )
