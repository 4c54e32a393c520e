"""A sequenced stream: a store numbered from 1, publishing into it and the live fan-out.

Layer 3 (server driver). "One number, one message": a message goes to clients only once the
store holds it durably (`durable_count`). `publish` encodes a message once and appends the
frame to the store; once it is durable the same bytes object is written to every follower
that is caught up and writable (the live set). Publishes made while a follower handles the
bytes it received (its `data_received`: the handlers' answers) are joined and written once per
follower when that call ends; others, within one turn of the event loop, at its end. A
follower that is not live catches up from the store on its own (see `_replay`) and then
`go_live`s again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .._errors import LocalProtocolError
from .._wire._framing import Dialect
from .._wire._packets import sequenced_frame, sequenced_frames
from ..store import JournalCorruptError, MessageStore
from ._config import ServerConfig
from ._dispatch import EventDispatcher
from ._events import StoreFlushFailed
from ._flusher import Flusher
from ._follower import Follower

if TYPE_CHECKING:
    from ._connection import Connection

__all__ = ["Follower", "Stream"]

log = logging.getLogger("soupbintcp.server")


class Stream:
    """One sequenced stream of the current session: a store numbered from 1, and the
    connections following it.

    The shared feed is one stream that every client follows (ITCH style); with per-user
    streams each username has its own (OUCH style), created from the server's `user_store`
    factory the first time it is needed and kept across reconnects for the whole session.

    `publish` appends to the store and returns the sequence number; the message goes to the
    clients once the store holds it durably, at the end of the current turn of the event
    loop (with `Durability.TIMER`, after the next flush, at most `flush_interval` later).
    Call it from the event loop's thread.
    """

    __slots__ = ("_counts", "_deliver_handle", "_due", "_ended", "_events", "_flusher",
                 "_followers", "_held", "_live", "_loop", "_max_fanout", "_omega", "_owned",
                 "_pending", "_pending_bytes", "_pending_total", "_refuse", "corrupt", "head",
                 "session_id", "store", "user")  # fmt: skip

    def __init__(
        self,
        config: ServerConfig,
        loop: asyncio.AbstractEventLoop,
        store: MessageStore,
        user: str | None,
        *,
        owned: bool,
        events: EventDispatcher,
        session_id: str,
    ) -> None:
        self._loop = loop
        self._events = events
        self.session_id = session_id
        self._omega = config.dialect is Dialect.OMEGA
        self._max_fanout = config.max_fanout
        self.store = store
        #: The username of a per-user stream (normalized: lower case), None for the feed.
        self.user = user
        self._owned = owned  # the server made the store and closes it
        #: The last sequence number released to clients (held durably by the store).
        self.head = store.durable_count
        # Frames published, not yet written to the live followers: sequence numbers
        # head + 1 .. head + _pending_total, in entries of _counts[i] messages each.
        self._pending: list[bytes] = []
        self._counts: list[int] = []
        self._pending_total = 0
        self._pending_bytes = 0
        self._live: dict[Follower, None] = {}  # caught up and writable: fan-out targets
        self._followers: dict[Follower, None] = {}  # every logged-in connection on it
        self._deliver_handle: asyncio.Handle | None = None
        #: Held by a follower's `data_received` (`hold`): what its handlers publish goes out
        #: at its end (`release`) rather than at the end of the loop's turn; `_due` says
        #: something waits for that.
        self._held = 0
        self._due = False
        self._flusher = Flusher(
            loop, store, config.flush_interval, events, session_id=session_id, user=user,
            deliver=self.deliver,
        )  # fmt: skip
        self._ended = False
        self._refuse: str | None = None  # why publishing is refused, if it is
        #: The first corruption a replay from the store met (logged once as an ERROR).
        self.corrupt: JournalCorruptError | None = None

    def __repr__(self) -> str:
        name = "feed" if self.user is None else f"user {self.user!r}"
        return f"<Stream {name} head={self.head} connections={len(self._followers)}>"

    @property
    def first_sequence(self) -> int:
        """The number of the store's first message (a store may start after 1)."""
        first = getattr(self.store, "first_sequence", 1)
        return first if isinstance(first, int) else 1

    @property
    def ended(self) -> bool:
        """Whether End of Session was sent: nothing more can be published."""
        return self._ended

    @property
    def connections(self) -> list[Connection]:
        """The logged-in connections following this stream."""
        return [follower.connection for follower in self._followers]

    @property
    def pending_bytes(self) -> int:
        """Bytes of frames published and not yet written to the live followers."""
        return self._pending_bytes

    # --- followers (for the connections) ---------------------------------------------------

    def follow(self, follower: Follower) -> None:
        """A connection logged in to this stream (it catches up before it goes live)."""
        self._followers[follower] = None

    def go_live(self, follower: Follower) -> None:
        """`follower` has everything up to `head` and is writable: fan out to it."""
        self._live[follower] = None

    def leave_live(self, follower: Follower) -> None:
        """`follower` cannot take more now (its writes are paused)."""
        self._live.pop(follower, None)

    def unfollow(self, follower: Follower) -> None:
        """Stop sending this stream's messages to `follower`."""
        self._live.pop(follower, None)
        self._followers.pop(follower, None)

    # --- publishing ------------------------------------------------------------------------

    def _refuse_empty(self, messages: list[bytes]) -> None:
        if self._omega and not all(messages):
            # There an empty message means "no more messages": clients would not count it.
            raise LocalProtocolError("the Omega dialect cannot carry an empty message")

    def publish(self, data: bytes) -> int:
        """Append one message; return its sequence number."""
        if self._refuse is not None:
            raise LocalProtocolError(self._refuse)
        if not data:
            self._refuse_empty([data])
        frame = sequenced_frame(data)
        store = self.store
        try:
            seq = store.append_frames(frame, 1)
        except OSError as exc:
            self._store_failed(exc)
            raise
        # The round trip's case (issue 22), `_appended` inlined: an answer published by a
        # handler while its follower holds the stream, durable at once, in line with the
        # head. It is written when the hold ends; nothing needs a loop turn or a flush.
        if (
            self._held
            and self._live
            and seq == self.head + self._pending_total + 1
            and store.durable_count >= seq
            and self._pending_bytes + len(frame) <= self._max_fanout
        ):
            self._pending.append(frame)
            self._counts.append(1)
            self._pending_total += 1
            self._pending_bytes += len(frame)
            self._due = True
            return seq
        self._appended(frame, 1, seq)
        return seq

    def publish_many(self, messages: Iterable[bytes]) -> int:
        """Append messages in order; return the sequence number of the first one (or the
        next number if there are none)."""
        if self._refuse is not None:
            raise LocalProtocolError(self._refuse)
        if self._omega:
            messages = list(messages)
            self._refuse_empty(messages)
        frames, count = sequenced_frames(messages)
        if not count:
            return self.store.count + 1
        seq = self._append(frames, count)
        self._appended(frames, count, seq)
        return seq

    def publish_frames(self, frames: bytes, count: int) -> int:
        """Append `count` messages already encoded as Sequenced Data frames (2-byte length,
        b"S", payload, back to back); return the first sequence number."""
        if self._refuse is not None:
            raise LocalProtocolError(self._refuse)
        if not count:
            return self.store.count + 1
        seq = self._append(frames, count)
        self._appended(frames, count, seq)
        return seq

    def _append(self, frames: bytes, count: int) -> int:
        try:
            return self.store.append_frames(frames, count)
        except OSError as exc:
            self._store_failed(exc)
            raise

    def _store_failed(self, exc: OSError) -> None:
        # A full disk: said at once (and counted), then raised by the caller.
        self._events.emit(
            StoreFlushFailed(session=self.session_id, user=self.user, error=exc, publishing=True)
        )

    def _appended(self, frames: bytes, count: int, seq: int) -> None:
        # Keep the encoded frames for the fan-out only while they line up with the head and
        # stay small; otherwise the live followers will read them back from the store.
        if (
            self._live
            and seq == self.head + self._pending_total + 1
            and self._pending_bytes + len(frames) <= self._max_fanout
        ):
            self._pending.append(frames)
            self._counts.append(count)
            self._pending_total += count
            self._pending_bytes += len(frames)
        elif self._pending:
            self._drop_pending()
        store = self.store
        durable = store.durable_count
        if durable > self.head:
            if self._held:
                self._due = True
            elif self._deliver_handle is None:
                self._deliver_handle = self._loop.call_soon(self._deliver_soon)
        if durable < seq + count - 1:  # not all durable yet
            self._flusher.soon()

    # --- delivering ------------------------------------------------------------------------

    def hold(self) -> None:
        """A follower handles received bytes: what is published meanwhile is released by
        `release`, in one write per follower, with no loop iteration in between."""
        self._held += 1

    def release(self) -> None:
        """The end of `hold`: deliver what was published meanwhile."""
        self._held -= 1
        if self._due and not self._held:
            self._due = False
            self.deliver()

    def _drop_pending(self) -> None:
        self._pending.clear()
        self._counts.clear()
        self._pending_total = 0
        self._pending_bytes = 0

    def _deliver_soon(self) -> None:
        self._deliver_handle = None
        self.deliver()

    def deliver(self) -> None:
        """Release what the store now holds durably: to the live followers from the pending
        frames, or by sending them back to the store. Afterwards `head` is everything
        durable, and nothing released is left unwritten to the live followers."""
        durable = self.store.durable_count
        head = self.head
        if durable <= head:
            return
        counts = self._counts
        if counts and head + self._pending_total <= durable:
            # Everything pending is durable (the usual case: a store durable at once).
            pending = self._pending
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            total = self._pending_total
            pending.clear()
            counts.clear()
            self._pending_total = self._pending_bytes = 0
            head += total
            self.head = head
            live = self._live
            if live:  # `_fan_out`, inlined: the round trip's answer takes this way
                now = self._loop.time()
                size = len(data)
                # A copy: pause_writing, called from inside write(), takes a follower out.
                for follower in tuple(live):
                    follower.transport.write(data)
                    follower.session.sequenced_sent(total, now)
                    follower.bytes_sent += size
        elif counts:
            take = total = 0
            while take < len(counts) and head + total + counts[take] <= durable:
                total += counts[take]
                take += 1
            if take:
                pending = self._pending
                data = pending[0] if take == 1 else b"".join(pending[:take])
                del pending[:take]
                del counts[:take]
                self._pending_total -= total
                self._pending_bytes -= len(data)
                head += total
                self.head = head
                self._fan_out(data, total)
        if head < durable:
            # Durable beyond the frames we hold: the live followers read from the store.
            self.head = durable
            self._drop_pending()
            self._unlive_all()

    def _fan_out(self, data: bytes, count: int) -> None:
        live = self._live
        if not live:
            return
        now = self._loop.time()
        size = len(data)
        # A copy: pause_writing, called from inside write(), takes a follower out of _live.
        for follower in tuple(live):
            follower.transport.write(data)
            follower.session.sequenced_sent(count, now)
            follower.bytes_sent += size

    def _unlive_all(self) -> None:
        live = self._live
        if live:
            followers = tuple(live)
            live.clear()
            for follower in followers:
                follower.catch_up()

    def flush_now(self) -> None:
        """Make everything published durable and release it."""
        self._flusher.now()
        self.deliver()

    # --- ending ----------------------------------------------------------------------------

    def end(self) -> None:
        """End of Session: to the caught-up followers now, to the others once caught up."""
        self._ended = True
        self._due = False
        self._refuse = "the session has ended: start_session() a new one to publish"
        if self._deliver_handle is not None:
            self._deliver_handle.cancel()
            self._deliver_handle = None
        live = tuple(self._live)
        self._live.clear()
        for follower in live:
            follower.end_of_session()

    def stop_publishing(self, why: str) -> None:
        """Refuse publishing from now on (the server is closing); what was published is
        made durable and released, and followers still catching up go on."""
        if self._refuse is None:
            self._refuse = why
        try:
            self.flush_now()
        except Exception:
            log.exception("flushing the store of %r failed", self)

    def shutdown(self) -> None:
        """The server is closing: stop publishing, then flush the store, or close it if the
        server made it. A failure is logged, not raised: the other stores still close."""
        self._refuse = "the server is closed"
        if self._deliver_handle is not None:
            self._deliver_handle.cancel()
            self._deliver_handle = None
        self._flusher.cancel()
        self._due = False
        self._live.clear()
        self._drop_pending()
        try:
            if self._owned:
                self.store.close()
            elif not getattr(self.store, "closed", False):
                self.store.flush()
        except Exception:
            log.exception("closing the store of %r failed", self)
