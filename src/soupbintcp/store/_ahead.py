"""The check ahead: a thread that checks a journal's blocks against their checksums from the
start, as soon as a `FileStore` opens it, so that replays find them known good.

Why a thread: checked in line, a replay from the page cache ran at about half the speed of
one without checksums (the CRC-32 of the bytes costs about as much as sending them over
loopback, `bench/bench_server.py --scenarios checksums`). Checked ahead, the first client
of a freshly opened journal is sent blocks already known good. A read that gets ahead of the
thread checks its blocks itself, as before: what is sent is always checked, whichever
thread checked it, and a block is marked good only once its bytes matched.

The thread reads through a descriptor of its own and stops at `stop()` (the store's close),
between two steps of `STEP` blocks. Between steps it lets other threads take the GIL, so
the event loop of a server opening a long journal waits a step (about 0.1 ms) at most, not
the interpreter's switch interval. An error in the thread (the file gone, a disk error) is
logged and ends it: never the process. Damage is logged once, as a WARNING naming the file,
the offset and the message (the one ERROR line stays the server's, when a replay reaches the
damage, with its metric); the damaged blocks are never marked good, so every read that
reaches them refuses them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from array import array
from bisect import bisect_right
from typing import Final

from ._checksums import BLOCK, Checksums
from ._journal import HEADER_SIZE
from ._protocol import JournalCorruptError
from ._recovery import first_record_in

__all__ = ["STEP", "CheckAhead"]

logger = logging.getLogger("soupbintcp.store")

#: Blocks checked per step: 256 KiB, a fraction of a millisecond.
STEP: Final = 64


def pause() -> None:
    """Between two steps: hand the GIL to any thread waiting for it."""
    time.sleep(0)


class CheckAhead:
    """Checks the whole blocks of the journal at `path` that `sums` holds when started."""

    __slots__ = (
        "_base", "_index", "_interval", "_stop", "_sums", "_thread", "bad", "damage", "finished",
        "path",
    )  # fmt: skip

    def __init__(
        self, path: str, sums: Checksums, index: array[int], interval: int, base: int = 0
    ) -> None:
        self.path = path
        self._base = base  # record n is message n + base (a journal of format 3)
        self._sums = sums
        self._index = index  # the store's sparse index: to name the damaged message
        self._interval = interval
        self._stop = threading.Event()
        #: The first damaged block's offset, once the thread found one.
        self.bad: int | None = None
        #: The same, as the error a replay reaching it raises (message number, record
        #: offset): the store's `corruption`, which the server's corrupt-from gauge shows.
        self.damage: JournalCorruptError | None = None
        #: When (`time.monotonic()`) every block was checked; None before, or if stopped.
        self.finished: float | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"soupbintcp check ahead {path}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait until every block is checked (tests, benchmarks)."""
        self._thread.join(timeout)

    def stop(self) -> None:
        """Stop the thread and wait for it (at most one step)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            logger.warning("journal %s: not checked ahead: %s", self.path, exc)
            return
        try:
            self._check(fd)
        except Exception as exc:  # a thread's error must never end the process
            logger.warning("journal %s: checking ahead stopped: %r", self.path, exc)
        finally:
            os.close(fd)

    def _check(self, fd: int) -> None:
        sums = self._sums
        whole = len(sums.sums)  # the blocks there at the start; appends are checked on read
        began = time.monotonic()
        k = 0
        while k < whole and not self._stop.is_set():
            while k < whole and sums.known_good(k):
                k += 1
            upto = min(k + STEP, whole)
            if k >= upto:
                break
            bad = sums.check_blocks(fd, k, upto)
            if bad and self.bad is None:
                self.bad = HEADER_SIZE + bad[0] * BLOCK
                self._report(fd, self.bad)
            k = upto
            pause()
        if k >= whole:
            self.finished = time.monotonic()
            logger.debug(
                "journal %s: %d blocks checked ahead in %.3f s",
                self.path,
                whole,
                self.finished - began,
            )

    def _report(self, fd: int, bad: int) -> None:
        index = self._index
        j = max(0, bisect_right(index, bad) - 1)
        start, before = (index[j], j * self._interval) if len(index) else (HEADER_SIZE, 0)
        at, before, _ = first_record_in(fd, start, before, bad)
        why = f"the checksum of bytes {bad:,} to {bad + BLOCK:,} does not match"
        self.damage = JournalCorruptError(self.path, at, before + 1 + self._base, why)
        logger.warning(
            "journal %s is corrupt from message %s at offset %s (%s, found by the check "
            "ahead): nothing from there on will be served; `soupbintcp journal verify %s` "
            "says more",
            self.path,
            f"{before + 1 + self._base:,}",
            f"{at:,}",
            why,
            self.path,
        )
