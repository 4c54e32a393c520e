"""The packets the suite sends and reads, built by hand from the specs' tables.

Layer 4. The suite does not encode with the library's own wire layer on purpose: a bug there
would then hide in both the implementation under test (when it is ours) and the check, and
the suite must also send what no codec would (bad lengths, unknown types, odd padding).
"""

from __future__ import annotations

import struct

__all__ = [
    "MOLD_END",
    "client_heartbeat",
    "debug",
    "downstream",
    "login_accepted",
    "login_rejected",
    "login_request",
    "logout",
    "mold_request",
    "packet",
    "parse_downstream",
    "parse_login_request",
    "parse_number",
    "sequenced",
    "server_heartbeat",
    "unsequenced",
]

MOLD_END = 0xFFFF


def packet(kind: bytes, payload: bytes = b"") -> bytes:
    """A logical packet: the two-byte big-endian length of type plus payload, then both."""
    return struct.pack(">H", len(payload) + 1) + kind + payload


def login_request(
    user: str,
    password: str,
    session: str = "",
    sequence: int | str = 1,
    heartbeat_ms: int | None = None,
) -> bytes:
    """Login Request: 46 bytes of payload (4.00, Omega) or 51 with the 4.10 Heartbeat Timeout.
    Username and password padded on the right, session and numbers on the left (1.4 of
    Omega; the Login Accepted fields of 4.x). A `str` sequence goes on the wire as given."""
    number = sequence.encode() if isinstance(sequence, str) else str(sequence).encode().rjust(20)
    payload = (
        user.encode().ljust(6)[:6]
        + password.encode().ljust(10)[:10]
        + session.encode().rjust(10)[:10]
        + number
    )
    if heartbeat_ms is not None:
        payload += str(heartbeat_ms).encode().rjust(5)
    return packet(b"L", payload)


def parse_login_request(payload: bytes) -> tuple[bytes, bytes, bytes, bytes, bytes | None]:
    """The raw fields of a Login Request payload of 46 or 51 bytes (the caller checks it)."""
    timeout = payload[46:51] if len(payload) >= 51 else None
    return payload[0:6], payload[6:16], payload[16:26], payload[26:46], timeout


def parse_number(raw: bytes) -> int | None:
    """A numeric ASCII field padded with spaces (either side): its value, None if it is not."""
    text = raw.strip(b" ")
    return int(text) if text.isdigit() else None


def login_accepted(session: str, sequence: int, *, left_pad: bool = True) -> bytes:
    field = session.encode().rjust(10) if left_pad else session.encode().ljust(10)
    return packet(b"A", field + str(sequence).encode().rjust(20))


def login_rejected(code: bytes) -> bytes:
    return packet(b"J", code)


def sequenced(message: bytes) -> bytes:
    return packet(b"S", message)


def unsequenced(message: bytes) -> bytes:
    return packet(b"U", message)


def debug(text: bytes) -> bytes:
    return packet(b"+", text)


def server_heartbeat() -> bytes:
    return packet(b"H")


def client_heartbeat() -> bytes:
    return packet(b"R")


def logout() -> bytes:
    return packet(b"O")


def mold_request(session: bytes, sequence: int, count: int) -> bytes:
    """A MoldUDP64 Request Packet: session (10), sequence (8), requested count (2)."""
    return session.ljust(10)[:10] + struct.pack(">QH", sequence, count)


def downstream(session: bytes, sequence: int, messages: list[bytes], count: int = -1) -> bytes:
    """A MoldUDP64 Downstream Packet; `count` overrides the block count (heartbeat 0, end
    0xFFFF, or a lie)."""
    blocks = b"".join(struct.pack(">H", len(m)) + m for m in messages)
    n = len(messages) if count < 0 else count
    return session.ljust(10)[:10] + struct.pack(">QH", sequence, n) + blocks


def parse_downstream(datagram: bytes) -> tuple[bytes, int, int, list[bytes]]:
    """Session, sequence, count and message blocks of a Downstream Packet; `ValueError` (with
    the reason) when the header is short or the blocks do not exactly fill the datagram."""
    if len(datagram) < 20:
        raise ValueError(f"{len(datagram)} bytes, shorter than the 20-byte header")
    session = datagram[:10]
    sequence, count = struct.unpack_from(">QH", datagram, 10)
    messages: list[bytes] = []
    offset = 20
    if count not in (0, MOLD_END):
        for _ in range(count):
            if offset + 2 > len(datagram):
                raise ValueError(f"block {len(messages) + 1} of {count} is missing")
            (size,) = struct.unpack_from(">H", datagram, offset)
            if offset + 2 + size > len(datagram):
                raise ValueError(f"block {len(messages) + 1} runs past the datagram's end")
            messages.append(datagram[offset + 2 : offset + 2 + size])
            offset += 2 + size
    if offset != len(datagram):
        raise ValueError(f"{len(datagram) - offset} bytes after the {count} blocks")
    return session, sequence, count, messages
