"""SoupBinTCP read back from one reassembled direction of a TCP connection.

Layer 3 (captures). `FrameReader` is the sink of a `HalfStream`: it splits the bytes into
SoupBinTCP packets and keeps what numbering needs. Sequenced Data carries no number on the
wire: a message's number is the Login Accepted's Sequence Number plus its place after it.
So a message is numbered only when the capture shows its connection's Login Accepted and
every byte between the two; after a gap in the stream, or in a connection whose start the
capture missed, nothing more of that connection can be numbered, and the reader says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from .._errors import SoupBinTCPError
from .._wire import LoginAccepted, LoginRequest

__all__ = ["FrameReader", "Run"]

# Packet types and the frame lengths (type byte included) the spec fixes for them.
_FIXED: Final = {
    ord("A"): (31,),
    ord("J"): (2,),
    ord("H"): (1,),
    ord("Z"): (1,),
    ord("R"): (1,),
    ord("O"): (1,),
    ord("L"): (47, 52),
}
_FREE: Final = frozenset(b"+SU")  # any length
_S: Final = ord("S")
_U: Final = ord("U")
_A: Final = ord("A")
_L: Final = ord("L")


@dataclass
class Run:
    """Messages numbered from `first` on, in order, with the capture time of each."""

    first: int
    session: str
    payloads: list[bytes] = field(default_factory=list)
    times: list[int] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.first + len(self.payloads)


class FrameReader:
    """The SoupBinTCP packets of one direction (either: the types say which side sent them)."""

    def __init__(self, *, midstream: bool = False) -> None:
        self._buf = b""
        self._offset = 0  # stream offset of _buf's first byte
        #: Why this direction stopped being read (None: read to the end).
        self.stopped: str | None = None
        self.soup = False  # its first packet was one SoupBinTCP's login starts with
        self.packets = 0
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

    @property
    def sent_sequenced(self) -> bool:
        return bool(self.accepted)

    def data(self, chunk: bytes, time_ns: int) -> None:
        if self.stopped is not None:
            return
        buf = self._buf + chunk if self._buf else chunk
        pos = 0
        size = len(buf)
        run = self._run
        while pos + 3 <= size:
            length = (buf[pos] << 8) | buf[pos + 1]
            end = pos + 2 + length
            if end > size:
                break
            kind = buf[pos + 2]
            if kind == _S and run is not None:
                run.payloads.append(buf[pos + 3 : end])
                run.times.append(time_ns)
            elif not self._other(kind, length, buf[pos + 3 : end]):
                self._buf = b""
                return
            else:
                run = self._run
            pos = end
            self.packets += 1
        self._offset += pos
        self._buf = buf[pos:]

    def _other(self, kind: int, length: int, payload: bytes) -> bool:
        """Any packet but Sequenced Data after a login; False (and stopped) if not SoupBinTCP."""
        fixed = _FIXED.get(kind)
        if (fixed is None and kind not in _FREE) or (fixed is not None and length not in fixed):
            self._stop(f"not a SoupBinTCP packet: type {kind:#04x}, length {length}")
            return False
        if not self.packets:
            if kind not in (_A, _L, ord("J"), ord("+")):
                self._stop(f"does not start with a login (type {chr(kind)!r})")
                return False
            self.soup = True
        try:
            if kind == _A:
                accepted = LoginAccepted.decode_payload(payload)
                session, sequence = accepted.session, accepted.sequence
                self.accepted.append((session, sequence))
                self._run = Run(sequence, session)
                self.runs.append(self._run)
            elif kind == _L:
                login = LoginRequest.decode_payload(payload)
                self.login = (login.username, login.session, login.sequence)
            elif kind == _S:
                self._stop("Sequenced Data before Login Accepted")
                return False
        except SoupBinTCPError as exc:
            self._stop(str(exc))
            return False
        if kind == _U:
            self.unsequenced += 1
        elif kind == ord("H") or kind == ord("R"):
            self.heartbeats += 1
        elif kind == ord("Z"):
            self.ended = True
        elif kind == ord("J"):
            self.rejected = True
        return True

    def _stop(self, why: str) -> None:
        self.stopped = f"at stream byte {self._offset:,}: {why}"
        self._run = None

    def gap(self, start: int, end: int) -> None:
        if self.stopped is None:
            numbered = f" after message {self._run.end - 1:,}" if self._run else ""
            self.stopped = (
                f"stream bytes {start:,}..{end - 1:,} are not in the capture{numbered}: "
                "what follows cannot be numbered"
            )
            self._run = None
        self._buf = b""

    def finish(self) -> None:
        """The direction ended: a packet cut short at its end is reported."""
        if self._buf and self.stopped is None:
            self.stopped = f"the capture ends inside a packet ({len(self._buf)} bytes)"
