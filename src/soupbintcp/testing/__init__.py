"""Testing an order-entry program against a real venue: the ``venue`` pytest fixture.

Installed with the package as a pytest plugin (entry point ``soupbintcp``), so a test only
asks for it::

    def test_my_strategy_gets_a_fill(venue):
        venue.submit("maker", ouch.EnterOrder(1, ouch.Side.SELL, 100, "AAPL", 1_000_000))
        run_my_strategy(venue.address)          # connects over loopback, as in production
        ...

The venue runs in a background thread (no event loop needed in the test) and starts in a
few milliseconds; ``@pytest.mark.venue(symbols=[...], bots=2, ...)`` passes `Venue` options.
`start_venue` does the same outside pytest. See docs/order-entry.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ._running import RunningVenue, start_venue

__all__ = ["RunningVenue", "pytest_configure", "start_venue", "venue"]


def pytest_configure(config: Any) -> None:
    """Register the ``venue`` marker (its keywords are `Venue`'s options)."""
    config.addinivalue_line(
        "markers", "venue(**options): options of the venue fixture (symbols=..., bots=...)"
    )


@pytest.fixture
def venue(request: pytest.FixtureRequest) -> Iterator[RunningVenue]:
    """A test exchange on loopback for this test: OUCH at ``venue.address``, ITCH at
    ``venue.itch_address``, scripted faults as methods; closed after the test."""
    marker = request.node.get_closest_marker("venue")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    running = start_venue(**options)
    try:
        yield running
    finally:
        running.close()
