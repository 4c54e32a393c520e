"""MoldUDP64 sessions read from UDP datagrams in a capture.

Layer 3 (captures). A datagram is taken for MoldUDP64 when its header names a session in
the spec's characters and its message blocks fill it exactly (or it is a heartbeat, an End
of Session, or a Request: 20 bytes). Every packet carries its first message's number, so a
session needs no start: whatever the capture holds is numbered, across duplicated and
reordered datagrams, both lines of an A/B pair and the re-request server's answers alike.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable
from typing import Any, Final

from .._errors import MoldUDP64Error
from .._speedups import ACCELERATED
from .._wire._frames import SEQUENCED
from .._wire._moldudp64 import (
    END_OF_SESSION_COUNT,
    HEADER_LENGTH,
    decode_blocks,
    unpack_header,
)
from ._merge import RunTuple
from ._net import UDP
from ._spool import Frames, Spool

__all__ = ["MOLD_RUN", "MoldSession", "MoldSessions", "mold_runs", "pure_mold_runs"]

#: The kind of a row that `mold_runs` made of consecutive MoldUDP64 data packets (beside the
#: rows of TCP and UDP, which carry their IP protocol number).
MOLD_RUN: Final = 0x117

_SESSION_BYTES: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 "
)
_INT64: Final = (-(1 << 63), (1 << 63) - 1)


#: The head of a Sequenced Data frame (2-byte length + 1, b"S") by message length, added
#: when first missed (`_frames_into`): a feed has few message lengths, and a look-up in a
#: plain dict is the cheapest way for pure Python to make one (a dict subclass with
#: `__missing__` is not specialised by CPython: 20 ns a message more, measured). At most
#: 65,536 entries, whatever a capture holds.
_HEADS: Final[dict[int, bytes]] = {}


def _frames_into(parts: list[bytes], data: bytes, count: int) -> bool:
    """Add to `parts` the `count` message blocks of MoldUDP64 packet `data` (2-byte length,
    message, from byte 20) as Sequenced Data frames (2-byte length + 1, b"S", message: what
    a journal holds, one byte more per message), head and message apart (joined once per
    run). False, and `parts` as it was, unless the blocks fill `data` exactly."""
    mark = len(parts)
    add = parts.append
    heads = _HEADS
    while True:
        pos = HEADER_LENGTH + 2  # where the message after the length field starts
        # No bounds test per message: a length field past the end raises IndexError, and a
        # message past it leaves `pos` past the end (a slice is cut short, never raises).
        try:
            for _ in range(count):
                n = (data[pos - 2] << 8) | data[pos - 1]
                add(heads[n])
                end = pos + n
                add(data[pos:end])
                pos = end + 2
        except IndexError:
            break
        except KeyError as missed:  # a length not met before: its head, then again
            n = missed.args[0]
            heads[n] = struct.pack(">HB", n + 1, SEQUENCED)
            del parts[mark:]
            continue
        if pos == len(data) + 2:
            return True
        break
    del parts[mark:]
    return False


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

    def __init__(self, spool: Spool) -> None:
        self.spool = spool  # where the messages wait
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
            # A time the sidecar cannot hold (a hostile pcapng) is held at its bound.
            kept = min(max(time_ns, _INT64[0]), _INT64[1])
            n = len(messages)
            parts: list[bytes] = []
            _frames_into(parts, data, n)  # decode_blocks checked the blocks
            frames = b"".join(parts)
            session.runs.append((sequence, self.spool.part(frames, n, array("q", (kept,)) * n)))
            end = sequence + n
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
        frames: Frames,
        times: array[int],
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
        count = len(times)
        session.runs.append((first, self.spool.part(frames, count, times)))
        end = first + count
        if end > session.high:
            session.high = end


def pure_mold_runs(rows: list[tuple[Any, ...]], kind: int = MOLD_RUN) -> list[tuple[Any, ...]]:
    """`rows` (see `_walk.segments`) with each stretch of consecutive UDP rows that are
    MoldUDP64 data packets of one flow and session, each numbered from where the one before
    ended, made one row: (`kind`, key, first number, packets, frames, times, session field):
    the messages as Sequenced Data frames back to back (`bytes`) and one capture time
    per message (an `array("q")`; a row whose time does not fit 64 bits is passed as it is).
    Other rows pass as they are.

    One row for a stretch that the session code would otherwise take packet by packet: a
    capture of one line holds little else. The compiled twin is `_core.mold_runs`."""
    out: list[tuple[Any, ...]] = []
    append = out.append
    # [key, raw, first, end, packets, frame parts, times]; the times an array from the start
    # (a list made one at the end cost 30 ns a message more, measured; an array made per
    # datagram from a tuple, 100 ns a datagram more)
    run: list[Any] | None = None
    one = array("q", (0,))  # a datagram's time, repeated per message (no tuple made)
    low, high = _INT64
    for row in rows:
        data = row[4]
        time_ns = row[6]
        if (
            row[0] == UDP
            and type(data) is bytes
            and len(data) > HEADER_LENGTH
            and type(time_ns) is int
            and low <= time_ns <= high
        ):
            raw, sequence, count = unpack_header(data)
            if 0 < count < END_OF_SESSION_COUNT:
                key = row[1]
                if run is not None and sequence == run[3] and key == run[0] and raw == run[1]:
                    if _frames_into(run[5], data, count):  # numbered on: the same run
                        run[3] = sequence + count
                        run[4] += 1
                        one[0] = time_ns
                        run[6] += one * count
                        continue
                else:
                    parts: list[bytes] = []
                    if _frames_into(parts, data, count):  # a run starts
                        if run is not None:
                            append(_row(kind, run))
                        one[0] = time_ns
                        times = one * count
                        run = [key, raw, sequence, sequence + count, 1, parts, times]
                        continue
        if run is not None:  # not a whole data packet: passed as it is
            append(_row(kind, run))
            run = None
        append(row)
    if run is not None:
        append(_row(kind, run))
    return out


def _row(kind: int, run: list[Any]) -> tuple[Any, ...]:
    key, raw, first, _, packets, parts, times = run
    return (kind, key, first, packets, b"".join(parts), times, raw)


mold_runs: Callable[[list[tuple[Any, ...]], int], list[tuple[Any, ...]]] = pure_mold_runs
if ACCELERATED:
    from .._speedups._core import mold_runs
