"""MoldUDP64 sessions read from UDP datagrams in a capture.

Layer 3 (captures). A datagram is taken for MoldUDP64 when its header names a session in
the spec's characters and its message blocks fill it exactly (or it is a heartbeat, an End
of Session, or a Request: 20 bytes). Every packet carries its first message's number, so a
session needs no start: whatever the capture holds is numbered, across duplicated and
reordered datagrams, both lines of an A/B pair and the re-request server's answers alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .._errors import MoldUDP64Error
from .._speedups import ACCELERATED
from .._wire._moldudp64 import (
    END_OF_SESSION_COUNT,
    HEADER_LENGTH,
    decode_blocks,
    unpack_header,
)
from ._merge import RunTuple
from ._net import UDP

__all__ = ["MOLD_RUN", "MoldSession", "MoldSessions", "mold_runs", "pure_mold_runs"]

#: The kind of a row that `mold_runs` made of consecutive MoldUDP64 data packets (beside the
#: rows of TCP and UDP, which carry their IP protocol number).
MOLD_RUN: Final = 0x117

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

    def run(
        self,
        destination: str,
        raw: bytes,
        first: int,
        packets: int,
        messages: list[bytes],
        times: list[int],
    ) -> None:
        """`packets` data packets of session field `raw`, numbered `first` on, in a row (a
        row of `mold_runs`): what as many calls of `datagram` do, in one."""
        session = self.sessions.get(raw)
        if session is None:
            if not raw.strip(b" ") or not _SESSION_BYTES.issuperset(raw):
                self.not_mold += packets
                return
            session = self.sessions[raw] = MoldSession(raw.strip(b" ").decode("ascii"))
            session.first_time = times[0]
        session.last_time = times[-1]
        session.packets += packets
        session.destinations[destination] = session.destinations.get(destination, 0) + packets
        session.runs.append((first, messages, times))
        end = first + len(messages)
        if end > session.high:
            session.high = end


def pure_mold_runs(rows: list[tuple[Any, ...]], kind: int = MOLD_RUN) -> list[tuple[Any, ...]]:
    """`rows` (see `_walk.segments`) with each stretch of consecutive UDP rows that are
    MoldUDP64 data packets of one flow and session, each numbered from where the one before
    ended, made one row: (`kind`, key, first number, packets, messages, times, session
    field). Each message takes its packet's capture time. Other rows pass as they are.

    One row for a stretch that the session code would otherwise take packet by packet: a
    capture of one line holds little else. The compiled twin is `_core.mold_runs`."""
    out: list[tuple[Any, ...]] = []
    append = out.append
    run: list[Any] | None = None  # [key, raw, first, end, packets, messages, times]
    for row in rows:
        data = row[4]
        if row[0] == UDP and type(data) is bytes and len(data) > HEADER_LENGTH:
            raw, sequence, count = unpack_header(data)
            if 0 < count < END_OF_SESSION_COUNT:
                size = len(data)
                pos = HEADER_LENGTH
                messages = []
                for _ in range(count):
                    if pos + 2 > size:
                        break
                    end = pos + 2 + ((data[pos] << 8) | data[pos + 1])
                    if end > size:
                        break
                    messages.append(data[pos + 2 : end])
                    pos = end
                if len(messages) == count and pos == size:
                    key = row[1]
                    if run is None or sequence != run[3] or key != run[0] or raw != run[1]:
                        if run is not None:
                            append((kind, run[0], run[2], run[4], run[5], run[6], run[1]))
                        run = [key, raw, sequence, sequence, 0, [], []]
                    run[3] = sequence + count
                    run[4] += 1
                    run[5] += messages
                    run[6] += [row[6]] * count
                    continue
        if run is not None:
            append((kind, run[0], run[2], run[4], run[5], run[6], run[1]))
            run = None
        append(row)
    if run is not None:
        append((kind, run[0], run[2], run[4], run[5], run[6], run[1]))
    return out


mold_runs: Callable[[list[tuple[Any, ...]], int], list[tuple[Any, ...]]] = pure_mold_runs
if ACCELERATED:
    from .._speedups._core import mold_runs
