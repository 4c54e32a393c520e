"""A gateway: a SoupBinTCP server whose stream is a replicated log, through a local cache.

Layer 4. The gateway follows the log into a `FileStore` (the cache) and serves that store
with `soupbintcp.serve`: the follower appends each batch the log delivers to the store
through the server's stream, which fans it out to the caught-up clients, and clients that
replay read it back from the cache. So a client gets only what the log acknowledged, and
message n is the log's message n on every gateway. A small side file (``<cache>.log.json``)
records how far into the log the cache reaches, so a restarted gateway resumes there; it is
never ahead of the cache (written after it), and where it is behind, the batches the cache
already holds are recognised and skipped.

A restarted gateway trusts its cache only as far as the log's own bytes confirm it: each
batch the cache already holds (all of it, or its start when a torn write cut the cache inside
it) is compared with the log's, then what the cache lacks is appended; a cache that differs
is refused, loudly. A cache that records End of Session but not the count its side file
says (the tail torn away by a power cut) is copied into a fresh journal without the mark, so
End of Session is sent only after the log's last message again.

A gateway that cannot follow its log (the follower failed, the cache cannot be written, the
log does not answer or stays ahead) for `stall_after` seconds lets its clients go: it logs
an ERROR, answers logins "session not available" and closes the clients' connections, so
that a client given several gateways fails over to one that follows. When it follows again
it takes logins again.

With `writer=True` the gateway also appends: `publish` numbers messages and sends them to
the log (`LogWriter`); they reach this gateway's clients the same way as everyone else's,
back through the follower.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

from nats.aio.client import Client as NATS

from .._errors import LocalProtocolError
from .._server._serve import serve
from .._server._server import Server
from ..store import FileStore, StoreError
from ._cache import new_part, open_cache, save_state
from ._follower import LogFollower
from ._log import (
    Batch,
    CacheUnwritable,
    EntryKind,
    LogAddress,
    LogError,
    LogState,
    LogUnavailable,
    parse_log_address,
)
from ._nats import connect_log, session_of_log, stop_task, wait_available
from ._stall import StallGuard
from ._writer import LogWriter

__all__ = ["DEFAULT_SESSION", "DEFAULT_STALL_AFTER", "Gateway", "open_gateway"]

log = logging.getLogger("soupbintcp.jetstream")

DEFAULT_SESSION = "SESSION1"
#: Seconds a gateway may go without following its log before it lets its clients go.
DEFAULT_STALL_AFTER = 10.0
_SAVE_INTERVAL = 0.2


class Gateway:
    """A running gateway. Make it with `open_gateway`; `close()` (or `async with`)."""

    def __init__(
        self,
        address: LogAddress,
        cache_path: Path,
        state: LogState,
        cache: FileStore | None,
        stall_after: float = DEFAULT_STALL_AFTER,
    ) -> None:
        self.log_address = address
        self._guard = StallGuard(
            address,
            state,
            stall_after,
            server=lambda: self.server,
            follower=lambda: self._follower,
            connected=lambda: self._nc is not None and self._nc.is_connected,
        )
        self.cache_path = cache_path
        self.state = state
        self.cache = cache
        self.server: Server | None = None
        self.writer: LogWriter | None = None
        self._nc: NATS | None = None
        self._follower: LogFollower | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        self._ended = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def __repr__(self) -> str:
        return (
            f"<Gateway {self.log_address} session={self.state.session_id!r} "
            f"messages={self.state.count} entry={self.state.log_seq}>"
        )

    # --- figures -------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        """The session every gateway of this feed answers with (the log's)."""
        assert self.server is not None
        return self.server.session_id

    @property
    def address(self) -> tuple[str, int]:
        """Where the SoupBinTCP server listens."""
        assert self.server is not None
        return self.server.address

    @property
    def durable_count(self) -> int:
        """Messages the log has acknowledged and this gateway holds (and may send)."""
        return self.cache.durable_count if self.cache is not None else 0

    @property
    def log_entries_behind(self) -> int:
        """Entries of the log this gateway has not applied yet, as of the last one it did."""
        return self._follower.entries_behind if self._follower is not None else 0

    @property
    def log_reachable(self) -> bool:
        """Whether the log answered this gateway's follower lately."""
        return self._follower is not None and self._follower.reachable

    @property
    def cache_write_errors(self) -> int:
        """Writes to the cache that failed (a full disk), since the gateway started."""
        return self._follower.cache_errors if self._follower is not None else 0

    @property
    def node_moves(self) -> int:
        """Times the follower left a log node that stopped answering for the stream."""
        return self._follower.watch.moves if self._follower is not None else 0

    def stall(self) -> tuple[str, float] | None:
        """Why this gateway is not following its log and for how many seconds, or None
        while it follows (or the session has ended in it). See `StallGuard`."""
        return self._guard.stall()

    @property
    def stalled_seconds(self) -> float:
        """Seconds the gateway has not progressed while it should (0 while it follows)."""
        stall = self.stall()
        return stall[1] if stall is not None else 0.0

    @property
    def letting_go(self) -> str | None:
        """Why the gateway is letting its clients go (None: it follows its log)."""
        return self._guard.letting_go

    @property
    def clients_let_go(self) -> int:
        """Logged-in clients closed because the gateway could not follow its log."""
        return self._guard.clients_let_go

    @property
    def next_sequence(self) -> int:
        """The number the next published message gets (writer only)."""
        return self._writer().next_sequence

    @property
    def ended(self) -> bool:
        """Whether the session ended (End of Session is in the log)."""
        return self.state.ended

    async def wait_ended(self) -> None:
        """Return once the session has ended."""
        await self._ended.wait()

    # --- publishing (the writer) ---------------------------------------------------------

    def _writer(self) -> LogWriter:
        if self.writer is None:
            raise LocalProtocolError("this gateway only follows: it is not the writer")
        return self.writer

    def publish(self, data: bytes) -> int:
        """Append one message to the log; return its sequence number."""
        return self._writer().publish_many((data,))

    def publish_many(self, messages: Iterable[bytes]) -> int:
        """Append messages to the log in order; return the first one's sequence number."""
        return self._writer().publish_many(messages)

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait until the log holds (and this gateway has) everything published."""
        await self._writer().flush(timeout)

    async def end_session(self) -> None:
        """Write End of Session to the log after everything published; every gateway then
        sends it to its clients after the last message."""
        await self._writer().append_control(EntryKind.END)
        await self._ended.wait()

    # --- following -----------------------------------------------------------------------

    def _deliver(self, batch: Batch) -> None:
        cache, server = self.cache, self.server
        assert cache is not None
        assert server is not None
        part = new_part(cache, self.cache_path, batch)
        if part is None:
            return
        frames, count = part
        try:
            server.stream().publish_frames(frames, count)
        except (OSError, StoreError) as exc:
            raise CacheUnwritable(f"cannot write the cache {self.cache_path}: {exc}") from exc
        if self._save_handle is None:
            self._save_handle = self._loop.call_later(_SAVE_INTERVAL, self._save)

    def _entry(self) -> None:
        if self.writer is not None:
            self.writer.confirmed()

    async def _on_end(self) -> None:
        assert self.server is not None
        await self.server.end_session()
        self._save()
        self._ended.set()
        log.info("session %s ended in the log: End of Session sent", self.state.session_id)

    def _save(self) -> None:
        self._save_handle = None
        save_state(self.cache_path, self.log_address.stream, self.state)

    async def _connect_later(self, nats_options: dict[str, Any]) -> None:
        self._nc = await wait_available(self.log_address, "soupbintcp-gateway", **nats_options)
        self._start_following()

    def _start_following(self) -> None:
        assert self._nc is not None
        self._follower = LogFollower(
            self._nc, self.log_address, self.state, self._deliver, self._on_end, self._entry
        )
        self._follower.start()
        self._guard.start()

    # --- closing -------------------------------------------------------------------------

    async def close(self, *, release: bool = True) -> None:
        """Stop: release the log (the next writer need not wait) unless `release` is False,
        stop following, close the server and the cache."""
        writer = self.writer
        if writer is not None:
            if release and writer.fenced is None and not self.state.ended:
                try:
                    writer.check()  # one that cannot append cannot release either
                    await asyncio.wait_for(writer.append_control(EntryKind.RELEASE), 10.0)
                except (LogError, TimeoutError) as exc:
                    log.warning(
                        "could not release the log (%s): the next writer takes over after "
                        "the takeover time",
                        str(exc) or type(exc).__name__,
                    )
            await writer.close()
        if self._connecting is not None:
            await stop_task(self._connecting)
        await self._guard.close()
        if self._follower is not None:
            await self._follower.close()
        if self.server is not None:
            await self.server.close()
        if self._save_handle is not None:
            self._save_handle.cancel()
        if self.cache is not None and self.state.session_id is not None:
            self._save()
        if self.cache is not None:
            self.cache.close()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def open_gateway(
    log_url: str,
    listen: tuple[str, int],
    *,
    cache: str | os.PathLike[str],
    writer: bool = False,
    session_id: str | None = None,
    replicas: int | None = None,
    nats_options: dict[str, Any] | None = None,
    takeover_after: float = 2.0,
    stall_after: float = DEFAULT_STALL_AFTER,
    stop: asyncio.Event | None = None,
    **serve_options: Any,
) -> Gateway:
    """Serve the feed whose log is at `log_url` (``nats://HOST:PORT[,...]/STREAM``) on
    `listen`, through the cache journal `cache`; with `writer`, also be its writer
    (creating the stream, `replicas` copies, if missing). `serve_options` are those of
    `soupbintcp.serve` (credentials or authenticate, ssl, timeouts, limits...).

    If the log is unreachable and the cache holds the session, the gateway serves the
    cache at once and follows the log once it answers; with an empty cache it waits for
    the log (a session id is needed to answer a login). Once it has followed the log, a
    gateway that cannot for `stall_after` seconds lets its clients go (see the module).
    Setting `stop` while it waits for the log to answer (or a follower for the writer to
    start the feed) gives up at once with `LogUnavailable`; once the log answers, opening
    goes on to the end (a writer claims the log, so that it can then end the session)."""
    address = parse_log_address(log_url)
    cache_path = Path(cache)
    options = dict(nats_options or {})
    store, state = open_cache(cache_path, address.stream)
    gateway = Gateway(address, cache_path, state, store, stall_after)
    try:
        nc: NATS | None
        try:
            nc = await connect_log(address, "soupbintcp-gateway", **options)
        except LogUnavailable as exc:
            if writer or store is None or store.session_id is None:
                log.warning("%s: waiting for it", exc)
                nc = await wait_available(address, "soupbintcp-gateway", stop, **options)
            else:
                log.warning(
                    "%s: serving the %d messages of the cache %s meanwhile",
                    exc,
                    store.count,
                    cache_path,
                )
                nc = None
        sid = store.session_id if store is not None else None
        if nc is not None:
            gateway._nc = nc
            logged = await session_of_log(nc, address, writer, stop)
            if logged is not None and sid is not None and logged != sid:
                raise LogError(
                    f"the cache {cache_path} holds session {sid!r} but the log {address} "
                    f"holds {logged!r}: give another --cache"
                )
            sid = logged or sid
        if sid is None:
            sid = session_id or DEFAULT_SESSION
        elif session_id is not None and session_id != sid:
            raise LogError(f"the feed's session is {sid!r}, not {session_id!r}")
        if store is None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            store = gateway.cache = FileStore(cache_path, session_id=sid)
        gateway.server = await serve(listen, store=store, session_id=sid, **serve_options)
        if gateway.state.ended:
            await gateway.server.end_session()
            gateway._ended.set()
        if nc is None:
            gateway._connecting = asyncio.get_running_loop().create_task(
                gateway._connect_later(options)
            )
            return gateway
        gateway._start_following()
        if writer:
            assert gateway._follower is not None
            gateway.writer = LogWriter(
                nc,
                address,
                gateway._follower,
                session_id=sid,
                replicas=replicas,
                takeover_after=takeover_after,
            )
            await gateway.writer.start()
    except BaseException:
        await gateway.close(release=False)
        raise
    return gateway
