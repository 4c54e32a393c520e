"""Talking to NATS: connecting to the log's nodes, and the feed's stream.

Layer 4. Everything that names `nats-py` directly is here or in the follower and writer, so
that importing `soupbintcp` never needs it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import PeerInfo, StorageType, StreamConfig, StreamInfo
from nats.js.errors import APIError, NotFoundError

from ._log import ENTRY, SESSION, EntryKind, LogAddress, LogError, LogUnavailable

__all__ = [
    "NodeWatch",
    "connect_log",
    "ensure_stream",
    "session_of_log",
    "stop_task",
    "stream_info",
    "wait_available",
]

log = logging.getLogger("soupbintcp.jetstream")

T = TypeVar("T")

#: How long one round of connection attempts may take before we say the log is unreachable.
_CONNECT_TIMEOUT = 1.0
_PLACEMENT_WAIT = 10.0
#: JetStream's answers while peers are missing: no suitable peers (10005), insufficient
#: resources (10023), no JetStream leader yet (10008).
_PLACEMENT_ERRORS = (10005, 10023, 10008)
#: How long the node we are connected to may leave the stream unanswered (no delivery, no
#: acknowledgement, no stream leader) before we move to another node. A node cut off from
#: the other two still answers NATS pings, so nats-py alone would stay on it.
NODE_BOUND: Final = 3.0
#: A replica not heard from for this long (seconds; JetStream's heartbeat is every second)
#: is not in step with its leader.
_PEER_SILENCE: Final = 3.0
#: A node left for not answering is not chosen again for this long (unless every node was):
#: a partition's majority needs a few seconds to elect the stream's new leader, and going
#: back to the cut-off node meanwhile costs another `NODE_BOUND`.
_AVOID_FOR: Final = 15.0


class _Nodes:
    """Which node a reconnection tries next: round the pool, skipping the nodes we left
    lately because they stopped answering for the stream (nats-py's own choice may pick
    them again). Only the last one left was skipped once; a partition's majority side still
    electing its leader was then left for the cut-off node again, and the feed stalled for
    most of a 12 s partition."""

    def __init__(self, wait: float, clock: Callable[[], float] = time.monotonic) -> None:
        #: node (host:port) -> when we left it for not answering.
        self.left: dict[str, float] = {}
        self._turn = 0
        self._wait = wait
        self._clock = clock

    def leave(self, node: str) -> None:
        self.left[node] = self._clock()

    def choose(self, servers: list[Any], _info: dict[str, Any]) -> tuple[Any, float]:
        now = self._clock()
        left = self.left
        fresh = [s for s in servers if now - left.get(s.uri.netloc, now - _AVOID_FOR) >= _AVOID_FOR]
        # Every node left lately: round them all, the one left longest ago first (it has had
        # the most time to recover).
        choices = fresh or sorted(servers, key=lambda s: left.get(s.uri.netloc, 0.0))
        self._turn += 1
        # The first try at once (a node we chose to leave); later ones paced.
        wait = 0.0 if self._turn == 1 else self._wait
        return choices[(self._turn - 1) % len(choices)], wait

    def connected(self) -> None:
        self._turn = 0


_CHOICES: weakref.WeakKeyDictionary[NATS, _Nodes] = weakref.WeakKeyDictionary()


def _describe(exc: BaseException) -> str:
    """An exception as a person reads it: nats-py's often have an empty message."""
    return str(exc) or type(exc).__name__


class NodeWatch:
    """Moves a connection off a node that stops answering for the stream.

    `answered()` whenever the log answered through this connection (an entry delivered,
    an append acknowledged, a stream leader named); `unanswered(why)` whenever it did not.
    Once nothing has answered for `bound` seconds while connected, the connection is moved
    to another node of the cluster (logged), and the clock starts again.
    """

    def __init__(self, nc: NATS, address: LogAddress, bound: float = NODE_BOUND) -> None:
        self._nc = nc
        self._address = address
        self._bound = bound
        self._loop = asyncio.get_running_loop()
        self._since = self._loop.time()
        #: How many times this watch moved its connection (for tests and status lines).
        self.moves = 0

    def answered(self) -> None:
        self._since = self._loop.time()

    def silent_for(self) -> float:
        return self._loop.time() - self._since

    async def unanswered(self, why: str) -> None:
        nc = self._nc
        if not nc.is_connected:
            self._since = self._loop.time()  # reconnecting already: nats-py moves it
            return
        silent = self.silent_for()
        if silent < self._bound:
            return
        url = nc.connected_url
        node = url.netloc if url is not None else "?"
        log.warning(
            "log %s: node %s has not answered for the stream for %.1f s (%s): it may have "
            "lost its quorum; moving to another node",
            self._address,
            node,
            silent,
            why,
        )
        self.moves += 1
        self._since = self._loop.time()
        choice = _CHOICES.get(nc)
        if choice is not None:
            choice.leave(node)
        await nc.force_reconnect()


async def connect_log(address: LogAddress, name: str, **options: Any) -> NATS:
    """A NATS connection to one of `address.servers` (the client learns the other cluster
    nodes from the one it reaches), reconnecting forever. `LogUnavailable` if none answers
    now."""

    async def disconnected() -> None:
        # nats-py calls this also when a first connection fails or when we close: only a
        # connection that was up can be lost.
        if nc.is_closed or not connected:
            return
        log.warning("log %s: connection lost; reconnecting", address)

    async def reconnected() -> None:
        nodes.connected()
        url = nc.connected_url
        log.warning("log %s: reconnected to %s", address, url.netloc if url else "?")

    async def error(exc: Exception) -> None:
        log.debug("log %s: %s", address, exc)

    # nats-py takes fractions of seconds here although its annotations say int.
    timing: dict[str, Any] = {"connect_timeout": _CONNECT_TIMEOUT, "reconnect_time_wait": 0.25}
    nc = NATS()
    nodes = _Nodes(float((timing | options)["reconnect_time_wait"]))
    connected = False
    try:
        # nats-py, told to reconnect forever, also retries a first connection forever:
        # bound it, so that a gateway can say the log is unreachable and serve its cache.
        await asyncio.wait_for(
            _connect(
                nc,
                servers=list(address.servers),
                name=name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                ping_interval=1,
                max_outstanding_pings=3,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
                reconnect_to_server_handler=nodes.choose,
                **(timing | options),
            ),
            _CONNECT_TIMEOUT * (len(address.servers) + 1) + 1.0,
        )
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        await nc.close()
        raise LogUnavailable(f"no node of the log {address} answers ({_describe(exc)})") from exc
    connected = True
    _CHOICES[nc] = nodes
    return nc


async def _connect(nc: NATS, **options: Any) -> None:
    await nc.connect(**options)


async def stream_info(
    js: JetStreamContext, address: LogAddress, *, quorum: bool = False
) -> StreamInfo | None:
    """The stream's info, or None if it does not exist. `LogUnavailable` on a timeout; with
    `quorum`, also when the answer cannot be trusted to say where the log ends: the stream
    has no leader, or the leader that answered has no replica in step with it (a leader cut
    off from the others answers from what it holds, entries no quorum took included)."""
    try:
        info = await js.stream_info(address.stream)
    except NotFoundError:
        return None
    except (TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
        raise LogUnavailable(f"the log {address} does not answer ({type(exc).__name__})") from exc
    cluster = info.cluster
    if quorum and cluster is not None:
        if not cluster.leader:
            raise LogUnavailable(f"the log {address} has no leader for the stream")
        replicas = cluster.replicas or []
        if replicas and not any(_in_step(peer) for peer in replicas):
            raise LogUnavailable(
                f"the log {address}: the stream's leader {cluster.leader} has no replica in "
                "step with it (it may be cut off from them)"
            )
    return info


def _in_step(peer: PeerInfo) -> bool:
    """A replica the leader heard from lately. JetStream calls a replica `current` for up to
    ten of its one-second heartbeats after it last heard from it; a leader cut off from its
    replicas says so only then. `active` (nanoseconds since heard from) says it sooner."""
    recent = peer.active is None or peer.active < _PEER_SILENCE * 1e9
    return bool(peer.current) and not peer.offline and recent


async def ensure_stream(
    js: JetStreamContext, address: LogAddress, replicas: int | None
) -> StreamInfo:
    """The feed's stream, created if missing with `replicas` copies (None: 3, or as many
    as the cluster has nodes when it has fewer)."""
    info = await stream_info(js, address)
    if info is not None:
        subjects = info.config.subjects or []
        if address.subject not in subjects:
            raise LogError(
                f"stream {address.stream} exists but does not hold {address.subject}: "
                "not a soupbintcp feed"
            )
        return info
    tries = [replicas] if replicas is not None else [3, 2, 1]
    last: Exception | None = None
    loop = asyncio.get_running_loop()
    # A cluster that has just started may not have placed its peers yet: keep asking.
    deadline = loop.time() + _PLACEMENT_WAIT
    index = 0
    while index < len(tries):
        count = tries[index]
        config = StreamConfig(
            name=address.stream,
            subjects=[address.subject],
            num_replicas=count,
            storage=StorageType.FILE,
            allow_direct=True,
        )
        try:
            info = await js.add_stream(config)
        except APIError as exc:
            last = exc
            # 10074: replicas > 1 without a cluster.
            if exc.err_code == 10074 and replicas is None:
                index += 1
                continue
            if exc.err_code == 10058:  # created meanwhile by another writer
                found = await stream_info(js, address)
                if found is not None:
                    return found
            if exc.err_code in _PLACEMENT_ERRORS and loop.time() < deadline:
                await asyncio.sleep(0.2)
                continue
            if exc.err_code in _PLACEMENT_ERRORS and replicas is None:
                index += 1  # fewer nodes than replicas: as many copies as there are nodes
                deadline = loop.time() + 1.0
                continue
            raise LogError(f"cannot create stream {address.stream}: {exc.description}") from exc
        except (TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError):
            if loop.time() < deadline:
                await asyncio.sleep(0.2)
                continue
            raise LogUnavailable(f"the log {address} does not answer") from None
        log.info("log %s: created the stream with %d replicas", address, count)
        return info
    raise LogError(f"cannot create stream {address.stream}: {last}")


async def wait_available(
    address: LogAddress, name: str, stop: asyncio.Event | None = None, **options: Any
) -> NATS:
    """`connect_log`, retried until a node answers (or `stop` is set: `LogUnavailable` at
    once, even in the middle of an attempt)."""
    said = False
    while True:
        try:
            return await _or_stop(connect_log(address, name, **options), stop, address)
        except LogUnavailable as exc:
            if stop is not None and stop.is_set():
                raise
            if not said:
                log.warning("%s; retrying", exc)
                said = True
            await _or_stop(asyncio.sleep(0.5), stop, address)


async def _or_stop(
    step: Coroutine[Any, Any, T], stop: asyncio.Event | None, address: LogAddress
) -> T:
    """`step`'s result, or `LogUnavailable` as soon as `stop` is set (`step` cancelled)."""
    if stop is None:
        return await step
    task = asyncio.ensure_future(step)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not task.done():
        while not task.done():  # 3.11's wait_for can swallow one cancellation
            task.cancel()
            await asyncio.wait([task], timeout=0.1)
        raise LogUnavailable(f"stopped while waiting for the log {address}")
    return task.result()


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait for it to end. Cancelled again until it does: on Python 3.11
    `asyncio.wait_for` (which nats-py uses too) can swallow a cancellation that arrives as
    what it waits for completes."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
    if not task.cancelled() and task.exception() is not None:
        log.debug("%r ended with %r", task, task.exception())


async def session_of_log(
    nc: NATS, address: LogAddress, writer: bool, stop: asyncio.Event | None = None
) -> str | None:
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
                log.warning("log %s: %s; asking again", address, str(exc) or type(exc).__name__)
                unanswered = True
            await _or_stop(asyncio.sleep(0.25), stop, address)
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
        await _or_stop(asyncio.sleep(0.25), stop, address)


def _holds_entries(info: StreamInfo | None) -> bool:
    return info is not None and info.state.last_seq > 0
