"""The pump: a connection that is not live catches up on its own, straight from the store.

Layer 3 (server driver). A connection replaying history, or paused by a slow reader, is not
in its stream's live set. `read_frames(cursor, chunk)` is written straight to the transport
while the transport's write buffer is below its high-water mark (`pause_writing` /
`resume_writing`), so replay runs in bounded memory however long the history: the store is
every slow client's buffer, and no queue grows with a client's lag. Once the cursor reaches
the head of the stream the connection joins the live set again (or gets End of Session).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from .._session._server import ServerState
from ..store import JournalCorruptError

if TYPE_CHECKING:
    from ._protocol import ServerProtocol

__all__ = ["Replay"]

# Chunks one pump step writes before yielding to the loop, so a fast reader catching up on
# a long history does not starve the other connections.
_PUMP_CHUNKS: Final = 16


class Replay:
    """The pump of one connection: at most one step scheduled at a time."""

    __slots__ = ("_chunk", "_conn", "_handle", "_loop")

    def __init__(self, conn: ServerProtocol, loop: asyncio.AbstractEventLoop, chunk: int) -> None:
        self._conn = conn
        self._loop = loop
        self._chunk = chunk
        self._handle: asyncio.Handle | None = None

    def schedule(self) -> None:
        """Pump at the next turn of the loop (not from inside a transport callback)."""
        if self._handle is None and not self._conn.closed:
            self._handle = self._loop.call_soon(self.run)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def run(self) -> None:
        """Write from the store while the transport takes it; join the live set once
        caught up."""
        self._handle = None
        conn = self._conn
        if not conn.writable():
            return
        stream = conn.stream
        session = conn.session
        if stream is None or session.state is not ServerState.LOGGED_IN:
            return
        stream.deliver()  # nothing released is left unwritten to the live connections
        store = stream.store
        transport = conn.transport
        chunk = self._chunk
        now = self._loop.time()
        try:
            for _ in range(_PUMP_CHUNKS):
                cursor = session.next_sequence
                if cursor > stream.head:
                    if stream.ended:
                        conn.end_of_session()
                    else:
                        stream.go_live(conn)
                    return
                data, count = store.read_frames(cursor, chunk)
                transport.write(data)
                session.sequenced_sent(count, now)
                conn.bytes_sent += len(data)
                if conn.paused:
                    return  # resume_writing pumps again
        except JournalCorruptError as exc:
            # Everything before the damage is written; nothing from it on is ever sent. One
            # ERROR line says where; later connections reaching it are closed more quietly.
            if stream.corrupt is None:
                stream.corrupt = exc
                conn.close("journal_corrupt", str(exc), logging.ERROR)
            else:
                detail = f"journal corrupt from message {exc.sequence:,}: not sent (see ERROR)"
                conn.close("journal_corrupt", detail, logging.WARNING)
            return
        except Exception as exc:  # the store failed (closed by its owner, disk error)
            conn.close("replay_failed", f"replay failed: {exc!r}", logging.ERROR, abort=True)
            return
        self._handle = self._loop.call_soon(self.run)
