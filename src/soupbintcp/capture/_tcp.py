"""TCP reassembly of one direction of a connection, as a capture shows it.

Layer 3 (captures). `HalfStream` takes the segments of one direction in capture order and
hands its sink the bytes in stream order, each run once: retransmissions and overlaps are
cut to what is new (the first copy wins), segments that arrive early wait until the bytes
before them come, and what never comes is a gap, told to the sink, never filled. A
direction whose SYN the capture missed starts at the first segment seen (`midstream`).
"""

from __future__ import annotations

from typing import Final, Protocol

__all__ = ["HalfStream", "Sink"]

_WRAP: Final = 1 << 32
_HALF: Final = 1 << 31
#: Bytes held out of order before the missing bytes before them are called a gap: a capture
#: that lost a segment must not hold the rest of the connection in memory.
MAX_PENDING: Final = 8 << 20


class Sink(Protocol):
    def data(self, chunk: bytes, time_ns: int) -> None:
        """The next bytes of the stream, captured at `time_ns` (of their last segment)."""

    def gap(self, start: int, end: int) -> None:
        """Stream bytes `start .. end-1` (offsets from the stream's first byte) are missing."""


class HalfStream:
    """One direction of one TCP connection, reassembled into `sink`."""

    __slots__ = ("_base", "_next", "_pending", "_pending_bytes", "gaps", "midstream", "sink")

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._base: int | None = None  # the absolute sequence number of stream offset 0
        self._next = 0  # stream offset of the next byte to deliver
        self._pending: dict[int, tuple[bytes, int]] = {}  # offset -> (bytes, time)
        self._pending_bytes = 0
        self.midstream = False
        self.gaps = 0  # missing bytes, in total

    def syn(self, sequence: int) -> None:
        """The SYN: the stream's first byte is `sequence + 1`."""
        if self._base is None:
            self._base = (sequence + 1) % _WRAP

    def segment(self, sequence: int, payload: bytes, missing: int, time_ns: int) -> None:
        """A segment with captured `payload` and `missing` bytes after it the capture cut."""
        if not payload and not missing:
            return
        if self._base is None:
            self._base = sequence
            self.midstream = True
        # Where the segment lies relative to what is expected, within half the number space
        # (TCP's own rule): offsets stay exact across the 32-bit wrap.
        delta = (sequence - self._base - self._next) % _WRAP
        if delta >= _HALF:
            delta -= _WRAP
        pos = self._next + delta
        end = pos + len(payload)
        nxt = self._next
        if end <= nxt:
            return  # a retransmission of bytes already delivered
        if pos < nxt:
            payload = payload[nxt - pos :]
            pos = nxt
        if pos == nxt:
            self.sink.data(payload, time_ns)
            self._next = end
            if self._pending:
                self._drain()
            return
        held = self._pending.get(pos)
        if held is None or len(held[0]) < len(payload):
            self._pending[pos] = (payload, time_ns)
            self._pending_bytes += len(payload) - (len(held[0]) if held else 0)
        if self._pending_bytes > MAX_PENDING:
            self.finish()

    def _drain(self) -> None:
        pending = self._pending
        while pending:
            nxt = self._next
            ready = [pos for pos in pending if pos <= nxt]
            if not ready:
                return
            for pos in sorted(ready):
                payload, time_ns = pending.pop(pos)
                self._pending_bytes -= len(payload)
                nxt = self._next
                if pos + len(payload) <= nxt:
                    continue
                payload = payload[nxt - pos :]
                self.sink.data(payload, time_ns)
                self._next = nxt + len(payload)

    def finish(self) -> None:
        """The capture has no more of this direction: what is still held lies after gaps."""
        while self._pending:
            first = min(self._pending)
            self.sink.gap(self._next, first)
            self.gaps += first - self._next
            self._next = first
            self._drain()
