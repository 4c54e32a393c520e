"""A gateway: a SoupBinTCP server whose stream is a replicated log, through a local cache.

Layer 4. The gateway follows the log into a `FileStore` (the cache) and serves that store
with `soupbintcp.serve`: the follower appends each batch the log delivers to the store
through the server's stream, which fans it out to the caught-up clients, and clients that
replay read it back from the cache. So a client gets only what the log acknowledged, and
message n is the log's message n on every gateway. A small side file (``<cache>.log.json``)
records how far into the log the cache reaches, so a restarted gateway resumes there; it is
never ahead of the cache (written after it), and where it is behind, the batches the cache
already holds are recognised and skipped.

With `writer=True` the gateway also appends: `publish` numbers messages and sends them to
the log (`LogWriter`); they reach this gateway's clients the same way as everyone else's,
back through the follower.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

import nats.errors
from nats.aio.client import Client as NATS
from nats.js.api import StreamInfo

from .._errors import LocalProtocolError
from .._server._serve import serve
from .._server._server import Server
from ..store import FileStore, StoreError
from ._follower import LogFollower
from ._log import (
    ENTRY,
    SESSION,
    Batch,
    EntryKind,
    LogAddress,
    LogError,
    LogState,
    LogUnavailable,
    parse_log_address,
)
from ._nats import connect_log, stop_task, stream_info, wait_available
from ._writer import LogWriter

__all__ = ["DEFAULT_SESSION", "Gateway", "open_gateway"]

log = logging.getLogger("soupbintcp.jetstream")

DEFAULT_SESSION = "SESSION1"
_SAVE_INTERVAL = 0.2


def _side_path(cache: Path) -> Path:
    return cache.with_name(cache.name + ".log.json")


def _load_state(cache: Path, store: FileStore | None, stream: str) -> LogState:
    side = _side_path(cache)
    if store is None or not side.exists():
        return LogState()
    try:
        saved = json.loads(side.read_text(encoding="utf-8"))
        state = LogState(
            session_id=saved["session_id"],
            holder=saved["holder"],
            count=int(saved["count"]),
            log_seq=int(saved["log_seq"]),
            ended=bool(saved["ended"]),
        )
        if saved["stream"] != stream:
            raise ValueError(f"it follows stream {saved['stream']}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring %s (%s): replaying the log from its start", side, exc)
        return LogState()
    if state.count > store.count or state.session_id != store.session_id:
        log.warning("%s does not match the cache: replaying the log from its start", side)
        return LogState()
    return state


class Gateway:
    """A running gateway. Make it with `open_gateway`; `close()` (or `async with`)."""

    def __init__(
        self, address: LogAddress, cache_path: Path, state: LogState, cache: FileStore | None
    ) -> None:
        self.log_address = address
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
        return self._follower is not None and self._follower.reachable

    @property
    def next_sequence(self) -> int:
        """The number the next published message gets (writer only)."""
        return self._writer().next_sequence

    @property
    def ended(self) -> bool:
        return self.state.ended

    async def wait_ended(self) -> None:
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
        last = batch.first + batch.count - 1
        if last <= cache.count:
            return  # held already: the side file was behind the cache
        if batch.first != cache.count + 1:
            raise LogError(
                f"the cache {self.cache_path} holds {cache.count} messages but the log's next "
                f"batch starts at {batch.first}: it is the cache of another feed"
            )
        server.stream().publish_frames(batch.frames, batch.count)
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
        state = self.state
        saved = {
            "stream": self.log_address.stream,
            "session_id": state.session_id,
            "holder": state.holder,
            "count": state.count,
            "log_seq": state.log_seq,
            "ended": state.ended,
        }
        side = _side_path(self.cache_path)
        tmp = side.with_name(side.name + ".tmp")
        try:
            tmp.write_text(json.dumps(saved), encoding="utf-8")
            os.replace(tmp, side)
        except OSError as exc:
            log.warning("cannot record the cache's place in the log in %s: %s", side, exc)

    async def _connect_later(self, nats_options: dict[str, Any]) -> None:
        self._nc = await wait_available(self.log_address, "soupbintcp-gateway", **nats_options)
        self._start_following()

    def _start_following(self) -> None:
        assert self._nc is not None
        self._follower = LogFollower(
            self._nc, self.log_address, self.state, self._deliver, self._on_end, self._entry
        )
        self._follower.start()

    # --- closing -------------------------------------------------------------------------

    async def close(self, *, release: bool = True) -> None:
        """Stop: release the log (the next writer need not wait) unless `release` is False,
        stop following, close the server and the cache."""
        writer = self.writer
        if writer is not None:
            if release and writer.fenced is None and not self.state.ended:
                try:
                    await writer.append_control(EntryKind.RELEASE)
                except (LogError, TimeoutError) as exc:
                    log.warning("could not release the log: %s", exc)
            await writer.close()
        if self._connecting is not None:
            await stop_task(self._connecting)
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


async def _session_of_log(nc: NATS, address: LogAddress, writer: bool) -> str | None:
    """The session id the log's first entry records (None: the stream is empty or missing)."""
    js = nc.jetstream()
    said = unanswered = False
    while True:
        try:
            info = await stream_info(js, address)
            first = await js.get_msg(address.stream, seq=1) if _holds_entries(info) else None
        except (LogUnavailable, nats.errors.TimeoutError, TimeoutError) as exc:
            # Connected, but the call timed out (a node busy electing a leader, a loaded
            # host): the log is there, so ask again rather than fail the gateway's start.
            if not unanswered:
                log.warning("log %s: %s; asking again", address, exc or type(exc).__name__)
                unanswered = True
            await asyncio.sleep(0.25)
            continue
        if first is not None:
            headers = first.headers or {}
            if headers.get(ENTRY) != EntryKind.SESSION.value or not headers.get(SESSION):
                raise LogError(f"stream {address.stream} is not a soupbintcp feed")
            return str(headers[SESSION])
        if writer:
            return None
        if not said:
            log.warning("log %s: waiting for the writer to start the feed", address)
            said = True
        await asyncio.sleep(0.25)


def _holds_entries(info: StreamInfo | None) -> bool:
    return info is not None and info.state.last_seq > 0


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
    **serve_options: Any,
) -> Gateway:
    """Serve the feed whose log is at `log_url` (``nats://HOST:PORT[,...]/STREAM``) on
    `listen`, through the cache journal `cache`; with `writer`, also be its writer
    (creating the stream, `replicas` copies, if missing). `serve_options` are those of
    `soupbintcp.serve` (credentials or authenticate, ssl, timeouts, limits...).

    If the log is unreachable and the cache holds the session, the gateway serves the
    cache at once and follows the log once it answers; with an empty cache it waits for
    the log (a session id is needed to answer a login)."""
    address = parse_log_address(log_url)
    cache_path = Path(cache)
    options = dict(nats_options or {})
    store: FileStore | None = None
    if cache_path.exists():
        try:
            store = FileStore(cache_path, create=False)
        except StoreError as exc:
            raise LogError(f"cannot use {cache_path} as the cache: {exc}") from exc
    gateway = Gateway(address, cache_path, _load_state(cache_path, store, address.stream), store)
    try:
        nc: NATS | None
        try:
            nc = await connect_log(address, "soupbintcp-gateway", **options)
        except LogUnavailable as exc:
            if writer or store is None or store.session_id is None:
                log.warning("%s: waiting for it", exc)
                nc = await wait_available(address, "soupbintcp-gateway", **options)
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
            logged = await _session_of_log(nc, address, writer)
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
