from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings

from .scripted_server import ScriptedServer

# Hypothesis' per-example deadline (200 ms) and its too_slow health check measure how fast
# the machine is, not our code: on a shared 2-core CI box a decode of 60 bytes has missed
# the deadline (DeadlineExceeded) while another process held the CPU. Speed is checked in
# bench/, so the suite runs every property without them; the properties themselves are
# unchanged. A test's own @settings still overrides this profile.
settings.register_profile(
    "suite", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("suite")

T = TypeVar("T")


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `predicate()` holds, polling the loop; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def within(awaitable: Awaitable[T], timeout: float = 10.0) -> T:
    return await asyncio.wait_for(awaitable, timeout)
