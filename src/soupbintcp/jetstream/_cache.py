"""A gateway's cache beside its log: opening it, where it stands in the log, and what a
restart trusts.

Layer 4. The cache is a `FileStore` journal of the log's messages; a small side file
(``<cache>.log.json``) records how far into the log it reaches (`LogState`), written after
the cache, so never ahead of it unless a power cut tore the cache after both were written.
What the gateway then trusts is decided against the log's own bytes (`held_frames`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..store import FileStore, StoreError
from ._log import Batch, LogError, LogState

__all__ = [
    "frames_end",
    "held_frames",
    "load_state",
    "new_part",
    "open_cache",
    "save_state",
    "side_path",
    "without_end",
]

log = logging.getLogger("soupbintcp.jetstream")


def side_path(cache: Path) -> Path:
    return cache.with_name(cache.name + ".log.json")


def frames_end(frames: bytes, count: int) -> int:
    """Where the first `count` Sequenced Data frames of `frames` end (2-byte length each)."""
    end = 0
    for _ in range(count):
        end += 2 + int.from_bytes(frames[end : end + 2], "big")
    return end


def held_frames(cache: FileStore, first: int, count: int) -> bytes:
    """The frames of messages `first`..`first + count - 1` as the cache holds them."""
    parts: list[bytes] = []
    seq, last = first, first + count - 1
    while seq <= last:
        frames, got = cache.read_frames(seq, 1 << 20)
        if not got:
            break
        if seq + got - 1 > last:
            frames, got = frames[: frames_end(frames, last - seq + 1)], last - seq + 1
        parts.append(frames)
        seq += got
    return b"".join(parts)


#: The files a `FileStore` keeps beside its journal: its sparse index and its checksums.
_SIDECARS = (".idx", ".crc")


def without_end(path: Path, store: FileStore) -> FileStore:
    """`store`'s messages in a fresh journal at `path` that does not record End of Session
    (a journal that does cannot take another message)."""
    fresh_path = path.with_name(path.name + ".reopen")
    for suffix in ("", *_SIDECARS):
        Path(f"{fresh_path}{suffix}").unlink(missing_ok=True)
    fresh = FileStore(fresh_path, session_id=store.session_id)
    seq = 1
    while seq <= store.count:
        frames, got = store.read_frames(seq, 1 << 20)
        fresh.append_frames(frames, got)
        seq += got
    fresh.close()
    store.close()
    os.replace(fresh_path, path)
    for suffix in _SIDECARS:
        made = Path(f"{fresh_path}{suffix}")
        if made.exists():
            os.replace(made, f"{path}{suffix}")
        else:
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return FileStore(path, create=False)


def load_state(cache: Path, store: FileStore | None, stream: str) -> LogState:
    side = side_path(cache)
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


def open_cache(cache_path: Path, stream: str) -> tuple[FileStore | None, LogState]:
    """The cache as a gateway opens it (None: there is none yet) and where it stands in the
    log. `LogError` if the file is not a journal it can use."""
    store: FileStore | None = None
    if cache_path.exists():
        try:
            store = FileStore(cache_path, create=False)
        except StoreError as exc:
            raise LogError(f"cannot use {cache_path} as the cache: {exc}") from exc
    state = load_state(cache_path, store, stream)
    if (
        store is not None
        and store.session_ended
        and not (state.ended and state.count == store.count)
    ):
        # End of Session is recorded but the messages before it may be torn away: serve the
        # cache as open until the log says where the session ends.
        log.warning(
            "the cache %s records End of Session after %d messages but its record of the log "
            "does not confirm them: serving it as open until the log says where it ends",
            cache_path,
            store.count,
        )
        store = without_end(cache_path, store)
        state = load_state(cache_path, store, stream)
        state.ended = False
    return store, state


def save_state(cache: Path, stream: str, state: LogState) -> None:
    """Record how far into the log of `stream` the cache reaches (a warning if it cannot)."""
    saved = {
        "stream": stream,
        "session_id": state.session_id,
        "holder": state.holder,
        "count": state.count,
        "log_seq": state.log_seq,
        "ended": state.ended,
    }
    side = side_path(cache)
    tmp = side.with_name(side.name + ".tmp")
    try:
        tmp.write_text(json.dumps(saved), encoding="utf-8")
        os.replace(tmp, side)
    except OSError as exc:
        log.warning("cannot record the cache's place in the log in %s: %s", side, exc)


def new_part(cache: FileStore, cache_path: Path, batch: Batch) -> tuple[bytes, int] | None:
    """The part of `batch` the cache lacks (frames, count), None if it holds all of it.

    Where the cache holds the batch or its start (the side file was behind the cache, or a
    torn write cut the cache inside the batch), the bytes it holds must be the log's:
    `LogError` otherwise, as when the batch does not continue the cache."""
    held = cache.count
    frames, count = batch.frames, batch.count
    if batch.first > held:
        if batch.first != held + 1:
            raise LogError(
                f"the cache {cache_path} holds {held} messages but the log's next batch starts "
                f"at {batch.first}: it is the cache of another feed"
            )
        return frames, count
    have = min(count, held - batch.first + 1)
    end = frames_end(frames, have)
    if held_frames(cache, batch.first, have) != frames[:end]:
        raise LogError(
            f"the cache {cache_path} holds other bytes than the log under messages "
            f"{batch.first}..{batch.first + have - 1}: it is not a copy of this feed's log "
            "(move it away to replay the log into a new cache)"
        )
    if have == count:
        return None
    log.info(
        "the cache %s holds messages %d..%d of the log's batch %d..%d: appending the rest",
        cache_path,
        batch.first,
        held,
        batch.first,
        batch.first + count - 1,
    )
    return frames[end:], count - have
