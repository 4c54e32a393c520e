"""What both MoldUDP64 listener drivers keep: the sans-IO listener and feeding it, its
figures, and the bounded queue of runs waiting for the application (`_session._queue`'s,
shared with the SoupBinTCP clients). No I/O here.

Layer 3 (drivers). The shape is the SoupBinTCP clients' (`receive_msg`, iteration,
`receive_batch` of `SequencedMessages`), so code written for one reads the other.
"""

from __future__ import annotations

import socket
from typing import Final, TypedDict

from .._errors import SessionEnded, SoupBinTCPError
from .._session._events import SequencedMessages
from .._session._mold_lines import LineArbiter, LineCounters
from .._session._mold_listener import ListenerState, MoldListener
from .._session._queue import RunQueue
from ._sockets import kernel_drops

__all__ = ["DEFAULT_MAX_QUEUE", "ListenerCore", "ListenerOptions"]

#: Messages queued for the application before the listener stops reading: the kernel's
#: buffer then fills and overflows, and what it dropped is asked for again later.
DEFAULT_MAX_QUEUE: Final = 200_000


class ListenerOptions(TypedDict, total=False):
    """`MoldListener`'s arguments, as `listen_async()` and `listen()` take them."""

    sequence: int
    session_id: str | None
    request_timeout: float
    min_request_timeout: float
    max_retries: int
    max_outstanding: int
    max_request_count: int
    max_held: int
    request_delay: float


class ListenerCore(RunQueue[SequencedMessages]):
    """The listener state both drivers share; they supply `_pause_reading`,
    `_resume_reading`, `_sockets`."""

    def _init_core(
        self, machine: MoldListener, max_queue: int, lines: list[str] | None = None
    ) -> None:
        self._machine = machine
        # Several groups (A/B lines): one listener, fed by all, and an account per line.
        self._arbiter = LineArbiter(machine, lines) if lines and len(lines) > 1 else None
        self._init_queue(max_queue, pause=self._pause_reading, resume=self._resume_reading)
        self._drops: int | None = None  # the kernel's count, as last read

    # --- the driver's side -----------------------------------------------------------------

    def _sockets(self) -> list[socket.socket]:
        raise NotImplementedError

    def _pause_reading(self) -> bool:
        raise NotImplementedError

    def _resume_reading(self) -> None:
        raise NotImplementedError

    def _feed(self, data: bytes, now: float, line: int = -1) -> int:
        """One datagram into the listener (from group `line`, -1: the re-request server);
        how many messages it made ready."""
        try:
            arbiter = self._arbiter
            if arbiter is None:
                events = self._machine.receive_datagram(data, now)
            else:
                events = arbiter.receive_datagram(data, now, line)
        except SoupBinTCPError as exc:
            self._ended(exc)
            return 0
        n = 0
        if events:
            items = self._items
            for run in events:
                n += len(run.messages)
                # A run that continues the last one queued joins it: datagrams carry ~40
                # messages, and every run costs the consumer a hand-over (one list extend
                # in C instead).
                if items and items[-1].next_sequence == run.first_sequence:
                    items[-1].messages.extend(run.messages)
                else:
                    items.append(run)
            self._queued += n
            if self._queued >= self._high_water and not self._paused:
                self._paused = self._pause()
        if self._machine.state is ListenerState.ENDED:
            self._ended(SessionEnded("end of session"))
        return n

    def _ended(self, exc: SoupBinTCPError) -> bool:
        if self._end is not None:
            return False
        self._end = exc
        return True

    # --- the application's side ------------------------------------------------------------

    @property
    def session_id(self) -> str | None:
        """The session followed (None until the first packet, if none was asked for)."""
        return self._machine.session_id

    @property
    def next_sequence(self) -> int:
        """The number of the next message to arrive (queued ones count as arrived)."""
        return self._machine.next_sequence

    @property
    def state(self) -> ListenerState:
        """Where the listener is in its life (`ListenerState`)."""
        return self._machine.state

    @property
    def lines(self) -> list[LineCounters]:
        """Per group, when there are several (A/B): what it delivered first, what it
        missed and how much of that another group covered. Empty for one group."""
        return self._arbiter.lines if self._arbiter is not None else []

    @property
    def is_closed(self) -> bool:
        """Whether the stream is over for good (queued messages may still be read)."""
        return self._end is not None

    @property
    def stats(self) -> dict[str, int | None]:
        """What the listener counted, and what the kernel dropped (None: not reported)."""
        m = self._machine
        sockets = self._sockets()
        if sockets:
            self._remember_drops()
        return {
            "packets": m.packets,
            "heartbeats": m.heartbeats,
            "duplicates": m.duplicates,
            "malformed": m.malformed,
            "other_session": m.other_session,
            "gaps": m.gaps,
            "requests_sent": m.requests_sent,
            "request_retries": m.request_retries,
            "held": m.held,
            "kernel_drops": self._drops,
        }

    def _remember_drops(self) -> None:
        """Read the kernel's drop count while the sockets are open (before closing them)."""
        drops = [kernel_drops(s) for s in self._sockets() if s.fileno() >= 0]
        known = [d for d in drops if d is not None]
        if known:
            self._drops = sum(known)

    def _take_all(self) -> list[SequencedMessages]:
        """Everything queued ([] if nothing is); raises once the listener has ended and
        every message before its end has been handed out."""
        out = self._take_queued()
        if not out and self._end is not None:
            raise self._end
        return out
