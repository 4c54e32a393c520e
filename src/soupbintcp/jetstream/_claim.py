"""Taking a feed's log for one writer: the claim, and the takeover after a crashed writer.

Layer 4. A writer holds the log from the entry it claimed on; every append says which entry
it must follow (``Nats-Expected-Last-Sequence``), so a second writer can never interleave
with the first: whoever appends after the other's claim is fenced out (`WriterFenced`).
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Final

import nats
from nats.js import JetStreamContext

from ._follower import LogFollower
from ._log import (
    ENTRY,
    EXPECTED_LAST,
    SESSION,
    WRITER,
    WRONG_LAST_SEQUENCE,
    EntryKind,
    LogAddress,
    LogError,
    LogUnavailable,
    WriterFenced,
    describe_writer,
)
from ._nats import stream_info

__all__ = ["API_TIMEOUT", "LogClaim", "writer_token"]

#: How long one JetStream API call may take before the log counts as unreachable.
API_TIMEOUT: Final = 2.0
#: How long a starting writer waits for the log to answer (a new stream elects a leader).
_START_WAIT: Final = 15.0


def writer_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


class LogClaim:
    """The writer `token`'s claim on the log that `follower` reads, and the appends it
    waits for (the claim itself, End of Session, a release)."""

    def __init__(
        self,
        js: JetStreamContext,
        address: LogAddress,
        follower: LogFollower,
        *,
        session_id: str,
        token: str,
        takeover_after: float,
    ) -> None:
        self._js = js
        self.address = address
        self._follower = follower
        self.session_id = session_id
        self.token = token
        self._takeover_after = takeover_after
        self._loop = asyncio.get_running_loop()

    async def take(self) -> int:
        """Claim the log: at once if it is new or its last writer released it; after
        `takeover_after` seconds of silence if a writer held it (a crashed one);
        `WriterFenced` if that writer is still appending. Returns the claim's entry, once
        the follower has read up to it."""
        deadline = self._loop.time() + 3 * self._takeover_after
        unavailable_until = self._loop.time() + _START_WAIT
        while True:
            try:
                claim = await self._claim_once(deadline)
                if claim is not None:
                    break
            except LogUnavailable:
                if self._loop.time() > unavailable_until:
                    raise
                await asyncio.sleep(0.2)
        await self._follower.caught_up(claim, timeout=30.0)
        if self._follower.state.holder != self.token:
            raise WriterFenced(self.taken(self._follower.state.holder))
        return claim

    async def _claim_once(self, deadline: float) -> int | None:
        """One attempt at taking the log: the claim's entry once this writer holds it."""
        info = await stream_info(self._js, self.address)
        last = info.state.last_seq if info is not None else 0
        if last == 0:
            return await self.try_append(EntryKind.SESSION, 0, {SESSION: self.session_id})
        await self._follower.caught_up(last, timeout=30.0)
        state = self._follower.state
        if state.session_id != self.session_id:
            raise LogError(
                f"the log {self.address} holds session {state.session_id!r}, "
                f"not {self.session_id!r}"
            )
        if state.ended:
            raise LogError(
                f"session {self.session_id} has ended in the log {self.address}: "
                "a new session needs a new stream"
            )
        if state.holder is not None:
            last = await self._wait_silent(last, deadline)
        claim = await self.try_append(EntryKind.CLAIM, last, {})
        if claim is not None:
            return claim
        if self._loop.time() > deadline:
            raise WriterFenced(self._busy(state.last_writer))
        return None

    async def _wait_silent(self, last: int, deadline: float) -> int:
        """Wait until the log has had no new entry for `takeover_after` seconds; return the
        last entry then. `WriterFenced` if entries keep coming past `deadline`."""
        quiet_since = self._loop.time()
        while self._loop.time() - quiet_since < self._takeover_after:
            if self._loop.time() > deadline:
                raise WriterFenced(self._busy(self._follower.state.last_writer))
            await asyncio.sleep(0.1)
            info = await stream_info(self._js, self.address)
            now_last = info.state.last_seq if info is not None else last
            if now_last != last:
                last, quiet_since = now_last, self._loop.time()
        await self._follower.caught_up(last, timeout=30.0)
        return last

    async def try_append(self, kind: EntryKind, expected: int, extra: dict[str, str]) -> int | None:
        """One fenced append, waited for: its entry if the log took it as entry
        `expected + 1`, None if another entry is last."""
        headers = {ENTRY: kind.value, WRITER: self.token, EXPECTED_LAST: str(expected), **extra}
        try:
            ack = await self._js.publish(self.address.subject, b"", headers=headers, timeout=5.0)
        except nats.js.errors.APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                return None
            raise LogError(f"the log {self.address} refused a {kind.value}: {exc}") from exc
        except (TimeoutError, nats.errors.Error) as exc:
            # No responders / no response: no stream leader yet (a new stream, a lost node).
            raise LogUnavailable(f"the log {self.address} does not answer ({exc!r})") from exc
        return int(ack.seq)

    def _busy(self, other: str | None) -> str:
        return (
            f"another writer is appending to the log {self.address}: {describe_writer(other)}; "
            "two writers would fork the feed, so this one stops (stop the other first)"
        )

    def taken(self, other: str | None) -> str:
        """Why this writer stops: `other` claimed the log."""
        return (
            f"{describe_writer(other)} claimed the log {self.address}: this writer is fenced "
            "out and stops; what it published and the log did not take is discarded"
        )
