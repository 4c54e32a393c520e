"""A capture read once: its SoupBinTCP conversations and MoldUDP64 sessions.

Layer 3 (captures). `Capture(path)` walks every record, reading the file a chunk at a time,
reassembles each TCP connection in both directions, reads SoupBinTCP from them, collects
MoldUDP64 from UDP, and ends with one
`Stream` per SoupBinTCP server and session (every connection and login to it merged) and
per MoldUDP64 session: the numbered messages it proves, the gaps it cannot fill, and the
notes that say why.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from typing import BinaryIO

from ._files import CaptureError, CaptureFile
from ._merge import Merged, RunTuple, merge
from ._mold import MOLD_RUN, MoldSessions, mold_runs
from ._net import ACK, RST, SYN, TCP, endpoints, flip
from ._soup import FrameReader
from ._spool import BUDGET, Spool
from ._tcp import HalfStream
from ._walk import Tally, segments

__all__ = ["Capture", "Stream"]


@dataclass
class Stream:
    """The numbered messages of one session as the capture shows them."""

    kind: str  # "SoupBinTCP" or "MoldUDP64"
    address: str  # the SoupBinTCP server, or the MoldUDP64 groups the session was sent to
    session: str
    merged: Merged
    packets: int = 0
    connections: int = 0  # SoupBinTCP: the connections that logged in to it
    notes: list[str] = field(default_factory=list)

    @property
    def first(self) -> int | None:
        return self.merged.pieces[0].first if self.merged.pieces else None

    @property
    def last(self) -> int | None:
        return self.merged.pieces[-1].end - 1 if self.merged.pieces else None

    @property
    def times(self) -> tuple[int, int] | None:
        """Capture times (ns) of the first and last message held."""
        if not self.merged.pieces:
            return None
        return self.merged.pieces[0].first_time, self.merged.pieces[-1].last_time


class _Connection:
    __slots__ = ("client", "halves", "readers", "spool")

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.halves: dict[bytes, HalfStream] = {}
        self.readers: dict[bytes, FrameReader] = {}
        self.client: bytes | None = None  # the key of the direction that sent the SYN

    def half(self, key: bytes, midstream: bool) -> HalfStream:
        reader = FrameReader(self.spool, midstream=midstream)
        self.readers[key] = reader
        half = self.halves[key] = HalfStream(reader)
        return half


class Capture:
    """Everything SoupBinTCP and MoldUDP64 in one capture file."""

    def __init__(
        self,
        source: bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO,
        *,
        budget: int = BUDGET,
        spool: str | os.PathLike[str] | None = None,
    ) -> None:
        """Read `source`: a capture file's path, a binary file open for reading, or the
        file's bytes. A file is read a chunk at a time, never whole; the messages it proves
        are held in memory up to `budget` bytes, and beyond in a temporary file in the
        directory `spool` (by default the system's; see `_spool`)."""
        self.spool = Spool(budget, spool)
        # Millions of small lists and tuples are made and all kept: the cyclic garbage
        # collector would walk them again and again for nothing (measured: a third of the
        # time of a MoldUDP64 capture).
        collecting = gc.isenabled()
        gc.disable()
        try:
            if isinstance(source, (str, os.PathLike)):
                with open(source, "rb") as file:
                    self._read(file)
            else:
                self._read(source)
        finally:
            if collecting:
                gc.enable()

    def _read(self, source: bytes | bytearray | memoryview | BinaryIO) -> None:
        records = CaptureFile(source)
        self.format = records.format
        tcp_segments = udp_datagrams = 0  # locals in the loop: a third cheaper than self.x
        tally = Tally()
        connections: dict[bytes, _Connection] = {}
        # Each direction's half of its current connection, by key: what a segment that is
        # not a SYN needs, in one look-up.
        halves: dict[bytes, HalfStream] = {}
        done: list[_Connection] = []
        mold = MoldSessions(self.spool)
        datagram = mold.datagram
        destinations: dict[bytes, str] = {}
        run = mold.run
        for rows in segments(records, tally):
            for protocol, key, sequence, flags, payload, missing, time_ns in mold_runs(
                rows, MOLD_RUN
            ):
                if protocol == TCP:
                    tcp_segments += 1
                    half = halves.get(key)
                    if half is not None and not flags & SYN:
                        half.segment(sequence, payload, missing, time_ns)  # the common case
                        continue
                    conn = connections.get(key)
                    if conn is None:
                        conn = connections.get(flip(key))
                        if conn is None:
                            conn = connections[key] = _Connection(self.spool)
                    half = conn.halves.get(key)
                    if flags & SYN:
                        if half is not None and conn.client is not None and not flags & ACK:
                            done.append(conn)  # the same ports again: a new connection
                            del connections[key if key in connections else flip(key)]
                            halves.pop(flip(key), None)
                            conn = connections[key] = _Connection(self.spool)
                            half = None
                        if half is None:
                            half = halves[key] = conn.half(key, midstream=False)
                        if not flags & ACK:
                            conn.client = key
                        half.syn(sequence)
                        continue
                    if half is None:
                        if flags & RST and not payload:
                            continue
                        half = halves[key] = conn.half(key, midstream=True)
                    half.segment(sequence, payload, missing, time_ns)
                else:
                    where = destinations.get(key)
                    if where is None:
                        where = destinations[key] = endpoints(key)[1]
                    if protocol == MOLD_RUN:  # (key, first, packets, frames, times, session)
                        udp_datagrams += flags
                        run(where, time_ns, sequence, flags, payload, missing)
                    else:
                        udp_datagrams += 1
                        datagram(where, payload, time_ns)
        self.tcp_segments = tcp_segments + tally.acks
        self.udp_datagrams = udp_datagrams
        self.first_time, self.last_time = tally.first_time, tally.last_time
        self.other_packets, self.truncated = tally.other, tally.truncated
        self.records = tally.records
        self.fault = records.fault
        self.other_udp = mold.not_mold
        self.streams: list[Stream] = []
        self.unread: list[str] = []  # TCP connections not read as SoupBinTCP, and why
        self._soup(done + list(connections.values()))
        for session in mold.sessions.values():
            stream = Stream(
                "MoldUDP64",
                ", ".join(sorted(session.destinations)),
                session.name,
                merge(session.runs),
                packets=session.packets,
            )
            last = stream.merged.pieces[-1].end if stream.merged.pieces else 1
            if session.high > last:
                stream.notes.append(
                    f"messages {last:,}..{session.high - 1:,} announced but not captured"
                )
            if session.end is not None:
                stream.notes.append(f"End of Session at {session.end:,}")
            if session.requests:
                stream.notes.append(f"{session.requests:,} re-requests seen")
            self.streams.append(stream)

    def _soup(self, connections: list[_Connection]) -> None:
        groups: dict[tuple[str, str], tuple[list[RunTuple], list[str], list[int]]] = {}
        for conn in connections:
            for half in conn.halves.values():
                half.finish()
            for reader in conn.readers.values():
                reader.finish()
            server = next((k for k, r in conn.readers.items() if r.accepted), None)
            if server is None:
                client, _ = _ends(conn)
                if any(r.rejected for r in conn.readers.values()):
                    self.unread.append(f"{client}: SoupBinTCP login rejected")
                elif any(r.soup for r in conn.readers.values()):
                    self.unread.append(f"{client}: SoupBinTCP login not accepted in the capture")
                else:
                    why = "; ".join(r.stopped or "no data" for r in conn.readers.values())
                    self.unread.append(f"{client}: not read as SoupBinTCP ({why or 'no data'})")
                continue
            reader = conn.readers[server]
            address, client = endpoints(server)
            stops = [
                f"connection from {client}: {r.stopped}"
                for r in conn.readers.values()
                if r.stopped is not None
            ]
            for run in reader.runs:  # one per Login Accepted: a connection has one
                runs, notes, count = groups.setdefault((address, run.session), ([], [], [0]))
                count[0] += 1
                runs += run.seal()
                notes.extend(stops)
        for (address, session), (runs, notes, count) in groups.items():
            packets = sum(part.count for _, part in runs)
            stream = Stream("SoupBinTCP", address, session, merge(runs), connections=count[0])
            stream.packets = packets
            stream.notes.extend(notes)
            self.streams.append(stream)

    def select(self, stream: str | None = None, session: str | None = None) -> Stream:
        """The one stream at `stream` (an address as `pcap info` shows it) and/or `session`."""
        found = [
            s
            for s in self.streams
            if (stream is None or stream in s.address.split(", "))
            and (session is None or s.session == session)
        ]
        if len(found) == 1:
            return found[0]
        named = ", ".join(f"{s.kind} {s.address} session {s.session}" for s in self.streams)
        if not found:
            raise CaptureError(f"no such stream in the capture (it holds: {named or 'none'})")
        raise CaptureError(f"several streams match: give --stream and/or --session ({named})")


def _ends(conn: _Connection) -> tuple[str, str]:
    key = conn.client or next(iter(conn.halves))
    return endpoints(key)
