"""What both MoldUDP64 listener drivers keep: the sans-IO listener, the bounded queue of runs
waiting for the application, and the handing out of `Message` objects. No I/O here.

Layer 3 (drivers). The shape is the SoupBinTCP clients' (`receive_msg`, iteration,
`receive_batch` of `SequencedMessages`), so code written for one reads the other.
"""

from __future__ import annotations

import operator
import socket
from collections import deque
from collections.abc import Iterator
from typing import Final, TypedDict

from .._errors import SessionEnded, SoupBinTCPError
from .._session._events import Message, SequencedMessages, message_run
from .._session._mold_listener import ListenerState, MoldListener
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


class ListenerCore:
    """The listener state both drivers share; they supply `_pause`, `_resume`, `_sockets`."""

    def _init_core(self, machine: MoldListener, max_queue: int) -> None:
        self._machine = machine
        self._high_water = max(1, max_queue)
        self._low_water = self._high_water // 4
        self._items: deque[SequencedMessages] = deque()
        self._queued = 0  # messages in _items
        self._run: Iterator[Message] = iter(())
        self._run_left: Iterator[bytes] = iter(())
        self._run_end = 0
        self._paused = False
        self._end: SoupBinTCPError | None = None
        self._drops: int | None = None  # the kernel's count, as last read

    # --- the driver's side -----------------------------------------------------------------

    def _pause(self) -> None:
        raise NotImplementedError

    def _resume(self) -> None:
        raise NotImplementedError

    def _sockets(self) -> list[socket.socket]:
        raise NotImplementedError

    def _feed(self, data: bytes, now: float) -> int:
        """One datagram into the listener; how many messages it made ready."""
        try:
            events = self._machine.receive_datagram(data, now)
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
                self._paused = True
                self._pause()
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
        return self._machine.state

    @property
    def is_closed(self) -> bool:
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

    def _unread(self) -> int:
        return self._queued + operator.length_hint(self._run_left)

    def _dequeued(self, n: int) -> None:
        self._queued -= n
        if self._paused and self._queued <= self._low_water:
            self._paused = False
            self._resume()

    def _take_one(self) -> Message | None:
        msg = next(self._run, None)
        if msg is not None:
            return msg
        if not self._items:
            if self._end is not None:
                raise self._end
            return None
        item = self._items.popleft()
        payloads = item.messages
        self._dequeued(len(payloads))
        run, left = message_run(item.first_sequence, payloads)
        msg = next(run)
        self._run_left = left
        self._run_end = item.first_sequence + len(payloads)
        self._run = run
        return msg

    def _take_all(self) -> list[SequencedMessages]:
        out: list[SequencedMessages] = []
        rest = list(self._run_left)
        if rest:
            out.append(SequencedMessages(self._run_end - len(rest), rest))
        if self._items:
            out.extend(self._items)
            self._items.clear()
            self._dequeued(self._queued)
        if not out and self._end is not None:
            raise self._end
        return out
