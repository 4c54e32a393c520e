"""MoldUDP64 sessions read from UDP datagrams in a capture.

Layer 3 (captures). A datagram is taken for MoldUDP64 when its header names a session in
the spec's characters and its message blocks fill it exactly (or it is a heartbeat, an End
of Session, or a Request: 20 bytes). Every packet carries its first message's number, so a
session needs no start: whatever the capture holds is numbered, across duplicated and
reordered datagrams, both lines of an A/B pair and the re-request server's answers alike.
"""

from __future__ import annotations

from typing import Final

from .._errors import MoldUDP64Error
from .._wire._moldudp64 import (
    END_OF_SESSION_COUNT,
    HEADER_LENGTH,
    decode_blocks,
    unpack_header,
)
from ._merge import RunTuple

__all__ = ["MoldSession", "MoldSessions"]

_SESSION_BYTES: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 "
)


class MoldSession:
    """What the capture shows of one MoldUDP64 session."""

    __slots__ = (
        "destinations",
        "end",
        "first_time",
        "heartbeats",
        "high",
        "last_time",
        "name",
        "packets",
        "requests",
        "runs",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.destinations: dict[str, int] = {}  # "group:port" -> packets sent to it
        self.runs: list[RunTuple] = []
        self.packets = 0
        self.heartbeats = 0
        self.requests = 0
        self.end: int | None = None  # the number End of Session named
        self.high = 0  # one past the highest number any packet showed
        self.first_time = 0
        self.last_time = 0


class MoldSessions:
    """Every MoldUDP64 session in a capture, by session name."""

    def __init__(self) -> None:
        self.sessions: dict[bytes, MoldSession] = {}
        self.not_mold = 0  # UDP datagrams that are not MoldUDP64

    def datagram(self, destination: str, data: bytes, time_ns: int) -> None:
        if len(data) < HEADER_LENGTH:
            self.not_mold += 1
            return
        raw, sequence, count = unpack_header(data)
        session = self.sessions.get(raw)
        if session is None and (not raw.strip(b" ") or not _SESSION_BYTES.issuperset(raw)):
            self.not_mold += 1
            return
        if len(data) == HEADER_LENGTH and count and count != END_OF_SESSION_COUNT:
            if session is not None:  # a Request: a listener missed something
                session.requests += 1
            return
        if count and count != END_OF_SESSION_COUNT:
            try:
                messages = decode_blocks(data, count)
            except MoldUDP64Error:
                self.not_mold += 1
                return
        elif len(data) != HEADER_LENGTH:
            self.not_mold += 1
            return
        else:
            messages = []
        if session is None:
            session = self.sessions[raw] = MoldSession(raw.strip(b" ").decode("ascii"))
            session.first_time = time_ns
        session.last_time = time_ns
        session.packets += 1
        session.destinations[destination] = session.destinations.get(destination, 0) + 1
        if messages:
            session.runs.append((sequence, messages, [time_ns] * len(messages)))
            end = sequence + len(messages)
        else:
            end = sequence
            if count == END_OF_SESSION_COUNT:
                session.end = sequence if session.end is None else min(session.end, sequence)
            else:
                session.heartbeats += 1
        if end > session.high:
            session.high = end
