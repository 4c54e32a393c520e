"""The program under test in the order client's chaos trials: it enters a list of intended
orders (and cancels every third one once accepted) through `OrderClient` with a state
directory, in bursts, and exits 0 once every request has its answer. The trials SIGKILL it
at random moments and run it again with the same state until it finishes.

Run in a child forked from a forkserver that has already imported soupbintcp, so a restart
costs milliseconds, not the 0.4 s of a fresh interpreter.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from typing import Any

from soupbintcp import ReconnectPolicy
from soupbintcp.orders import OrderClient, OrderCore, OrderStatus, StateDir

#: Where a trial may have the child kill itself (SIGKILL) on the k-th pass, besides the
#: parent's kills at random times: the moments the issue names.
KILL_POINTS = {
    # the messages are in the journal (fsync'd), not yet written to the socket
    "durable": (StateDir, "write_ahead"),
    # a run of answers is in the stream journal, not yet applied or told
    "received": (StateDir, "received_run"),
    # written to the socket, answers not back yet: the restart's re-sends are duplicates
    "sent": (OrderClient, "_write"),
    # mid-burst: some orders of a burst made, others not (`OrderClient.enter` makes the
    # request with `enter_request`, and records the order once it is sent)
    "enter": (OrderCore, "enter_request"),
    # logged in again, the catch-up query not written yet
    "login": (OrderCore, "logged_in"),
}


def _arm(point: str, nth: int) -> None:
    cls, name = KILL_POINTS[point]
    original = getattr(cls, name)
    passes = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        passes[0] += 1
        if passes[0] == nth:
            os.kill(os.getpid(), 9)
        return result

    setattr(cls, name, wrapper)


async def _main(
    addresses: list[tuple[str, int]],
    user: str,
    state: str,
    intents: list[dict[str, Any]],
    seed: int,
) -> None:
    rng = random.Random(seed)
    client = await OrderClient.connect(
        addresses, user, "secret", state=state,
        reconnect=ReconnectPolicy(initial_delay=0.005, max_delay=0.05, jitter=0.5),
        heartbeat_interval=0.2, heartbeat_timeout=2.0, login_timeout=2.0, connect_timeout=1.0,
    )  # fmt: skip
    try:
        known = {o.cl_ord_id: o for o in client.orders.values() if o.replaces is None}
        i = 0
        while i < len(intents):
            burst = intents[i : i + rng.randint(1, 8)]
            i += len(burst)
            for intent in burst:
                if intent["id"] in known:
                    continue
                client.enter(
                    intent["symbol"], intent["side"], intent["qty"], intent["price"],
                    time_in_force=intent["tif"], cl_ord_id=intent["id"],
                )  # fmt: skip
            await asyncio.sleep(rng.random() * 0.004)
        # bounded: a request that never gets its answer fails the trial, it does not hang it
        await asyncio.wait_for(client.drain(), 10.0)
        # Cancel every third intended order still open (once: a cancel already asked for
        # by a killed run is in the journal; repeating it is benign anyway).
        for order in list(client.orders.values()):
            third = order.replaces is None and int(order.cl_ord_id[1:]) % 3 == 0
            if third and order.status in (OrderStatus.LIVE, OrderStatus.PARTLY_FILLED):
                client.cancel(order.user_ref_num)
        await asyncio.wait_for(client.drain(), 10.0)
        # and everything the venue did since (an order's later fills): the final view
        await asyncio.wait_for(client.sync(), 10.0)
    finally:
        await client.close()


def run(
    addresses: list[tuple[str, int]],
    user: str,
    state: str,
    intents_file: str,
    seed: int,
    kill_at: tuple[str, int] | None = None,
) -> None:
    """The child's entry point (a multiprocessing target)."""
    if kill_at is not None:
        _arm(*kill_at)
    with open(intents_file, encoding="utf-8") as f:
        intents = json.load(f)
    try:
        asyncio.run(_main(addresses, user, state, intents, seed))
    except BaseException as exc:  # the exit code tells the trial
        print(f"chaos client failed: {exc!r}", file=sys.stderr)
        os._exit(3)
    os._exit(0)
