"""SoupBinTCP read back from one reassembled direction of a TCP connection.

Layer 3 (captures). `FrameReader` is the sink of a `HalfStream`: it splits the bytes into
SoupBinTCP packets with the wire layer's own `PacketDecoder` (its compiled batch split when
built) and keeps what numbering needs. Sequenced Data carries no number on the wire: a
message's number is the Login Accepted's Sequence Number plus its place after it. So a
message is numbered only when the capture shows its connection's Login Accepted and every
byte between the two; after a gap in the stream, or in a connection whose start the capture
missed, nothing more of that connection can be numbered, and the reader says so.
"""

from __future__ import annotations

from typing import Final

from .._errors import SoupBinTCPError
from .._wire import (
    EndOfSession,
    LoginAccepted,
    LoginReject,
    LoginRequest,
    PacketDecoder,
    Role,
    SequencedDataPacket,
    ServerHeartbeat,
    UnsequencedData,
)
from ._merge import RunTuple
from ._spool import PART, Spool
from ._times import times_array

__all__ = ["FrameReader", "Run"]

_L: Final = ord("L")
#: What a connection may start with: a Login Request from the client; Login Accepted or
#: Rejected (or Debug) from the server.
_FIRST: Final = (LoginRequest, LoginAccepted, LoginReject)


class Run:
    """Messages numbered from `first` on, in order, as the connection sent them (Sequenced
    Data frames: as a journal holds them) with the capture time of each: `parts` made in
    the spool, a `PART` of bytes each, and the frames still being gathered."""

    __slots__ = ("count", "first", "frames", "parts", "session", "spool", "times")

    def __init__(self, first: int, session: str, spool: Spool) -> None:
        self.first = first
        self.session = session
        self.spool = spool
        self.count = 0
        self.parts: list[RunTuple] = []
        self.frames = bytearray()
        # A list until the part is made: a segment's messages share one int, which the
        # compiled `times_array` converts once.
        self.times: list[int] = []

    @property
    def end(self) -> int:
        return self.first + self.count

    def seal(self) -> list[RunTuple]:
        """The run's parts, the frames gathered so far made one."""
        if self.times:
            n = len(self.times)
            part = self.spool.part(self.frames, n, times_array(self.times))
            self.parts.append((self.end - n, part))
            self.frames = bytearray()
            self.times = []
        return self.parts


class FrameReader:
    """The SoupBinTCP packets of one direction (the first packet says which side sent it)."""

    def __init__(self, spool: Spool, *, midstream: bool = False) -> None:
        self._spool = spool
        self._decoder: PacketDecoder | None = None
        self._head = b""  # bytes before the role is known (fewer than 3)
        #: Why this direction stopped being read (None: read to the end).
        self.stopped: str | None = None
        self.soup = False  # its first packet was one a SoupBinTCP connection starts with
        self.packets = 0  # packets other than Sequenced Data
        self.unsequenced = 0
        self.heartbeats = 0
        self.ended = False  # End of Session seen
        self.login: tuple[str, str, int] | None = None  # (username, session, sequence) asked
        self.accepted: list[tuple[str, int]] = []  # (session, sequence) per Login Accepted
        self.rejected = False
        self.runs: list[Run] = []
        self._run: Run | None = None
        if midstream:
            self.stopped = "the capture starts inside this connection (no Login seen)"

    def data(self, chunk: bytes, time_ns: int) -> None:
        if self.stopped is not None:
            return
        decoder = self._decoder
        if decoder is None:
            head = self._head + chunk
            if len(head) < 3:
                self._head = head
                return
            decoder = self._decoder = PacketDecoder(Role.CLIENT if head[2] == _L else Role.SERVER)
            chunk = head
        decoder.feed(chunk)
        try:
            while True:
                run = self._run
                if run is not None:
                    frames, n = decoder.next_sequenced_run()
                    if n:  # (Run.add, inlined: once per segment)
                        run.frames += frames
                        run.count += n
                        run.times += [time_ns] * n
                        if len(run.frames) >= PART:
                            run.seal()
                packet = decoder.next_packet()
                if packet is None:
                    return
                self._packet(packet)
        except SoupBinTCPError as exc:
            self._stop(str(exc))

    def _packet(self, packet: object) -> None:
        if not self.packets and not self.soup:
            if not isinstance(packet, _FIRST):
                raise SoupBinTCPError(f"does not start with a login ({type(packet).__name__})")
            self.soup = True
        self.packets += 1
        if isinstance(packet, LoginAccepted):
            self.accepted.append((packet.session, packet.sequence))
            if self._run is not None:
                self._run.seal()
            self._run = Run(packet.sequence, packet.session, self._spool)
            self.runs.append(self._run)
        elif isinstance(packet, SequencedDataPacket):
            raise SoupBinTCPError("Sequenced Data before Login Accepted")
        elif isinstance(packet, LoginRequest):
            self.login = (packet.username, packet.session, packet.sequence)
        elif isinstance(packet, UnsequencedData):
            self.unsequenced += 1
        elif isinstance(packet, ServerHeartbeat):
            self.heartbeats += 1
        elif isinstance(packet, EndOfSession):
            self.ended = True
        elif isinstance(packet, LoginReject):
            self.rejected = True

    def _stop(self, why: str) -> None:
        offset = self._decoder.offset if self._decoder is not None else 0
        self.stopped = f"at stream byte {offset:,}: {why}"
        self._run = None

    def gap(self, start: int, end: int) -> None:
        if self.stopped is None:
            numbered = f" after message {self._run.end - 1:,}" if self._run else ""
            self.stopped = (
                f"stream bytes {start:,}..{end - 1:,} are not in the capture{numbered}: "
                "what follows cannot be numbered"
            )
            self._run = None

    def finish(self) -> None:
        """The direction ended: a packet cut short at its end is reported."""
        if self.stopped is None and self._decoder is not None and self._decoder.buffered:
            self.stopped = f"the capture ends inside a packet ({self._decoder.buffered} bytes)"
