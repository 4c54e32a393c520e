"""`RunningVenue`: a `Venue` on its own event loop in a background thread.

So a test needs no event loop of its own: a blocking order-entry program, an asyncio one
(on its own loop) or a subprocess all connect over loopback. Every method hops to the
venue's thread and waits for the answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import soupbintcp.ouch as ouch
from soupbintcp.venue import Venue

__all__ = ["RunningVenue", "start_venue"]

T = TypeVar("T")
Address = tuple[str, int]


class RunningVenue:
    """A test exchange running in a thread. Make it with `start_venue`; `close()` it.

    ``address``/``addresses`` are the OUCH ports (mirrors), ``itch_address`` the ITCH feed.
    The scripted faults are methods, as on `Venue`: `reject_next`, `delay`, `drop_after`,
    `end_day`, `cancel_all`; `depth` and `next_user_ref_num` look inside.
    """

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self._loop = asyncio.new_event_loop()
        self._started = concurrent.futures.Future[None]()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="soupbintcp-venue", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.venue.start()
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        try:
            await self._stop.wait()
        finally:
            await self.venue.close()

    def _call(self, function: Callable[[], T]) -> T:
        async def call() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=10)

    # --- lifetime ----------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> RunningVenue:
        """Start the thread and wait until the venue listens."""
        self._thread.start()
        self._started.result(timeout)
        return self

    def close(self) -> None:
        """Stop the venue (its servers and journals) and the thread."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningVenue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- where it is ---------------------------------------------------------------------------

    @property
    def address(self) -> Address:
        """The first OUCH port."""
        return self.venue.address

    @property
    def addresses(self) -> list[Address]:
        """Every OUCH port (mirrors of one another)."""
        return self.venue.addresses

    @property
    def itch_address(self) -> Address:
        """The ITCH 5.0 feed over SoupBinTCP (any username and password)."""
        return self.venue.itch_address

    @property
    def session_id(self) -> str:
        """The day's SoupBinTCP session."""
        return self.venue.session_id

    # --- scripted faults ------------------------------------------------------------------------

    def reject_next(self, count: int, reason: ouch.RejectReason = ouch.RejectReason.OTHER) -> None:
        """Reject the next ``count`` Enter Orders and Replaces with ``reason``."""
        self._call(lambda: self.venue.reject_next(count, reason))

    def delay(self, milliseconds: float) -> None:
        """Hold every response this long (0: no more delay)."""
        self._call(lambda: self.venue.delay(milliseconds))

    def drop_after(self, account: str, count: int) -> None:
        """Close ``account``'s connection right after its ``count``-th next message."""
        self._call(lambda: self.venue.drop_after(account, count))

    def end_day(self) -> None:
        """End of day: resting orders cancelled, System Event E, no new orders."""
        self._call(self.venue.end_day)

    def cancel_all(self, account: str) -> None:
        """Cancel every open order of ``account``."""
        self._call(lambda: self.venue.cancel_all(account))

    # --- looking inside --------------------------------------------------------------------------

    def depth(
        self, symbol: str, visible: bool = False
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids, asks) of ``symbol`` as [(price in ticks, shares)], best first."""
        return self._call(lambda: self.venue.engine.books[symbol].depth(visible))

    def next_user_ref_num(self, account: str) -> int:
        """The UserRefNum ``account`` may use next (as Account Query would answer)."""
        return self._call(lambda: self.venue.engine.account(account.lower()).last_user_ref_num + 1)

    def submit(self, account: str, message: ouch.Message) -> None:
        """Apply an inbound message from ``account`` without a connection (e.g. a resting
        order for the program under test to trade with)."""
        payload = message.encode()
        self._call(lambda: self.venue.submit(account.lower(), payload))


def start_venue(symbols: Iterable[str] = ("AAPL", "MSFT", "SPY"), **options: Any) -> RunningVenue:
    """Start a `Venue` (with ``options``, as `Venue` takes them) in a background thread."""
    return RunningVenue(Venue(symbols, **options)).start()
