"""MoldUDP64 listener cases: the suite transmits, drops, duplicates and reorders on purpose,
serves the re-requests (or not), and judges the requests and what the listener prints.

Layer 4. Every case first sends messages 1..3 (again and again, which a listener must take
as duplicates) until the listener prints message 3: then it has joined the group.
"""

from __future__ import annotations

import asyncio
import time

from ._case import Failed, Level, Target
from ._listener_target import SESSION, ListenerRun, ListenerTarget
from ._packets import downstream
from ._registry import register

LISTENER = Target.MOLD_LISTENER
V = "moldudp64-1.00"
S = {V: "listener"}


async def ready(run: ListenerRun, timeout: float = 10.0) -> int:
    """Send messages 1..3 until the listener prints 3; the number of requests made so far."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.packet(1, 3)
        printed = await run.printed(3, 0.25)
        if printed is not None and 3 in printed:
            return len(run.asked)
    raise Failed(f"the listener printed no message 3 in {timeout:g} s of messages 1..3")


async def quiet(run: ListenerRun, after: int, seconds: float, what: str) -> None:
    await asyncio.sleep(seconds)
    if len(run.asked) > after:
        raise Failed(f"after {what}, it asked again ({run.shown_requests(after)})")


@register(
    LISTENER, "requests-the-gap", Level.MUST, sections=S,
    quote="A packet starting beyond it is a gap: ... request the missing range",
    sends="messages 1..3, then a packet of 7..8 (4..6 never sent)",
    expects="a request for 4 of at most 3 messages (never more than the gap), then 4..8 printed",
)  # fmt: skip
async def requests_the_gap(target: ListenerTarget, version: str) -> None:
    async with target.run() as run:
        seen = await ready(run)
        run.packet(7, 8)
        session, sequence, count = await run.request(3, seen)
        printed = await run.printed(8, 3)
    if session != SESSION or sequence != 4:
        raise Failed(f"the gap 4..6 asked as {count} from {sequence} of {session!r}")
    if not 1 <= count <= 3:
        raise Failed(f"the gap 4..6 (3 messages) asked as {count} messages from 4")
    if printed is not None and not set(range(4, 9)) <= set(printed):
        raise Failed(f"after the gap was answered, printed {printed}")


@register(
    LISTENER, "no-request-without-gap", Level.SHOULD, sections=S,
    quote="A packet starting below it is a duplicate, wholly or in part: drop what was already "
    "delivered.",
    sends="messages 1..3 again, 2..5 (overlapping), a heartbeat at 6",
    expects="no re-request in the next second",
)  # fmt: skip
async def no_request_without_gap(target: ListenerTarget, version: str) -> None:
    async with target.run() as run:
        seen = await ready(run)
        run.packet(1, 3)
        run.packet(2, 5)
        run.heartbeat(6)
        await quiet(run, seen, 1.0, "duplicates and packets in order")


@register(
    LISTENER, "tail-after-heartbeat", Level.MUST, sections=S,
    quote="A heartbeat whose number is beyond the next expected one means the tail was lost: "
    "request it.",
    sends="messages 1..3, then only heartbeats at 6",
    expects="a request for 4 of at most 2 messages",
)  # fmt: skip
async def tail_after_heartbeat(target: ListenerTarget, version: str) -> None:
    async with target.run() as run:
        seen = await ready(run)
        run.last = 5
        deadline = time.monotonic() + 3
        while len(run.asked) <= seen and time.monotonic() < deadline:
            run.heartbeat(6)
            await asyncio.sleep(0.2)
        if len(run.asked) <= seen:
            raise Failed("no request for the lost tail 4..5 in 3 s of heartbeats at 6")
        _, sequence, count = run.asked[seen]
    if sequence != 4 or not 1 <= count <= 2:
        raise Failed(f"the lost tail 4..5 asked as {count} from {sequence}")


@register(
    LISTENER, "other-session-ignored", Level.MUST, sections=S,
    quote="A packet of another session ... is dropped and counted, never delivered.",
    sends="messages 50..51 of another session, then message 4 of the session",
    expects="no request for 4..49, 50 never printed, 4 printed",
)  # fmt: skip
async def other_session(target: ListenerTarget, version: str) -> None:
    async with target.run() as run:
        seen = await ready(run)
        run.packet(50, 51, session=b"OTHERSESS9")
        await quiet(run, seen, 1.0, "a packet of another session at 50")
        run.packet(4, 4)
        printed = await run.printed(4, 3) or []
    if 50 in printed:
        raise Failed("printed message 50 of another session")
    if 4 not in printed:
        raise Failed(f"after a packet of another session, message 4 not printed: {printed}")


@register(
    LISTENER, "retries-lost-request", Level.MUST, sections=S,
    quote="Requests can be lost too: time them out and retry",
    sends="messages 1..3, a packet of 7..8; the first request is not answered",
    expects="the request made again within 5 s",
)  # fmt: skip
async def retries(target: ListenerTarget, version: str) -> None:
    async with target.run() as run:
        seen = await ready(run)
        run.answering = False
        run.packet(7, 8)
        await run.request(3, seen)
        _, sequence, _ = await run.request(5, seen + 1)
    if sequence != 4:
        raise Failed(f"the lost request for 4 retried as one for {sequence}")


@register(
    LISTENER, "bad-datagram-dropped", Level.MUST, sections=S,
    quote="A packet ... whose blocks do not exactly fill the datagram, is dropped and counted, "
    "never delivered.",
    sends="a packet at 4 whose Message Count says 2 but holds one block; then 4..5 whole",
    expects="nothing printed of the bad packet; 4 and 5 printed from the good one",
)  # fmt: skip
async def bad_datagram(target: ListenerTarget, version: str) -> None:
    async with target.run() as run:
        await ready(run)
        run.send(downstream(SESSION, 4, [b"bad-000004"], count=2))
        printed = await run.printed(4, 0.8) or []
        lines = run.printing.lines if run.printing is not None else []
        if 4 in printed or any("bad-000004" in line for line in lines):
            raise Failed("delivered a message of a packet whose count does not match its blocks")
        run.packet(4, 5)
        printed = await run.printed(5, 3) or []
    if 5 not in printed:
        raise Failed(f"after a malformed packet, messages 4..5 not printed: {printed}")


@register(
    LISTENER, "partial-answer-asks-rest", Level.MUST, sections=S,
    quote="The server may answer with fewer messages than asked (what fits in one datagram); "
    "the listener asks again for the rest.",
    sends="messages 1..3, a packet at 10; each request answered with one message only",
    expects="after the answer with 4, a request from 5",
)  # fmt: skip
async def partial_answer(target: ListenerTarget, version: str) -> None:
    async with target.run() as run:
        seen = await ready(run)
        run.answer_cap = 1
        run.packet(10, 10)
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            if any(seq == 5 for _, seq, _ in run.asked[seen:]):
                return
            await asyncio.sleep(0.05)
    raise Failed(
        f"after an answer of one message (4), no request from 5 ({run.shown_requests(seen)})"
    )


@register(
    LISTENER, "delivers-in-order-once", Level.MUST, sections=S,
    quote="deliver in order only ... drop what was already delivered",
    sends="messages 1..3, then 6..7, 4..5 and 4..7 again (reordered and duplicated)",
    expects="messages 1..7 printed once each, in order",
)  # fmt: skip
async def in_order(target: ListenerTarget, version: str) -> None:
    async with target.run() as run:
        await ready(run)
        run.packet(6, 7)
        run.packet(4, 5)
        run.packet(4, 7)
        printed = await run.printed(7, 3) or []
    if printed != list(range(1, 8)):
        raise Failed(f"printed {printed}, not 1..7 once each in order")
