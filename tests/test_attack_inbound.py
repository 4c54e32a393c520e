"""Attacks with what clients send (issue 15, points 2, 3 and 4): big Unsequenced packets to a
slow handler, Debug floods before login, Unsequenced floods with no handler, and a user's
Unsequenced Data across a reconnect. The server's memory is read from /proc; the honest
feed must lose nothing; what the handler sees must be in the order it was sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from soupbintcp import Connection

from .attack_support import (
    ATTACKER,
    ATTACKER_PASSWORD,
    RssSampler,
    attacker,
    honest_feed,
    latency_figures,
    report,
    serve_attacked,
)
from .helpers import wire
from .reliability_support import wait_until
from .server_support import RawClient

MIB = 1024 * 1024


class GatedHandler:
    """An `on_unsequenced` that holds every call until `release()`: the slowest handler.
    It records what it was called with, in the order of the calls."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls: list[tuple[int, bytes]] = []  # (client port, data)

    async def __call__(self, connection: Connection, data: bytes) -> None:
        self.calls.append((connection.address[1], data[:16]))
        await self.gate.wait()

    def release(self) -> None:
        self.gate.set()


# --- point 2: inbound bytes bounded in size --------------------------------------------------


async def big_packets_to_a_slow_handler(clients: int, seconds: float) -> None:
    handler = GatedHandler()
    server = await serve_attacked(on_unsequenced=handler)
    try:
        async with honest_feed(server) as feed:
            quiet = await feed.measure(0.5)
            memory = RssSampler()
            async with attacker(
                "flood", server.address, str(clients), "--login", "--numbered",
                "--user", ATTACKER, "--password", ATTACKER_PASSWORD,
                "--seconds", str(seconds), "--max-bytes", str(200 * MIB),
            ) as flood:  # fmt: skip
                await flood.ready()
                flood.go()
                attacked = await feed.measure(seconds)
                result = await flood.result()
                held = memory.peak
                handler.release()
                sent_packets = sum(result["packets"])
                await wait_until(
                    lambda: len(handler.calls) >= sent_packets, 60, "every packet handled"
                )
            memory.stop()
            await feed.finish()
        by_client: dict[int, list[int]] = {}
        for port, data in handler.calls:
            by_client.setdefault(port, []).append(int(data[:10]))
        report(
            "2 big Unsequenced packets to a slow handler",
            size=f"{clients} clients x {sum(result['sent']) // clients // MIB} MiB "
            f"of 64 KB packets in {result['seconds']} s",
            rss_before_mib=round(memory.before / MIB, 1),
            rss_peak_mib=round(held / MIB, 1),
            rss_after_mib=round(memory.after / MIB, 1),
            handled=len(handler.calls),
            lost=feed.published - len(feed.received),
            **latency_figures(quiet, attacked),
        )
        # Every packet the server read reached the handler once, in order, per client.
        assert len(by_client) == clients
        for numbers in by_client.values():
            assert numbers == list(range(len(numbers)))
        assert len(handler.calls) >= sent_packets
        # Bounded in bytes: the inbound queues (per connection and in total) hold a few MiB,
        # not 64 MiB per connection as 1,024 packets of 64 KB do. Generous margin.
        assert held - memory.before < 48 * MIB, (held - memory.before) / MIB
    finally:
        await server.close()


async def test_big_unsequenced_packets_to_a_slow_handler_are_bounded_in_bytes() -> None:
    await big_packets_to_a_slow_handler(clients=4, seconds=1.5)


@pytest.mark.long
async def test_big_unsequenced_packets_to_a_slow_handler_are_bounded_in_bytes_long() -> None:
    await big_packets_to_a_slow_handler(clients=8, seconds=4)


# --- point 3: work before login and without a handler ----------------------------------------


async def flood(login: bool, clients: int, seconds: float) -> dict[str, Any]:
    server = await serve_attacked()  # no on_unsequenced handler
    try:
        async with honest_feed(server) as feed:
            quiet = await feed.measure(0.5)
            memory = RssSampler()
            args = ["--login", "--user", ATTACKER, "--password", ATTACKER_PASSWORD] if login else []
            async with attacker(
                "flood", server.address, str(clients), *args, "--seconds", str(seconds),
                "--max-bytes", str(4096 * MIB),
            ) as blast:  # fmt: skip
                await blast.ready()
                blast.go()
                attacked = await feed.measure(seconds)
                result = await blast.result()
            memory.stop()
            await feed.finish()
        what = "Unsequenced Data with no handler" if login else "Debug packets before login"
        report(
            f"3 {what}",
            size=f"{clients} connections, {seconds:g} s of 64 KB packets",
            attacker_bytes_sent_mib=round(sum(result["sent"]) / MIB, 1),
            attacker_closed=sum(result["closed"]),
            lost=feed.published - len(feed.received),
            **memory.figures(),
            **latency_figures(quiet, attacked),
        )
        return result
    finally:
        await server.close()


async def test_debug_flood_before_login_is_cut_off() -> None:
    result = await flood(login=False, clients=2, seconds=2)
    # What a connection may send before it logs in is a Login Request and a little more:
    # the server closes it, having taken no more than what sits in the socket buffers.
    assert all(result["closed"]), result
    assert max(result["sent"]) < 16 * MIB, result


async def test_unsequenced_flood_without_a_handler_is_throttled() -> None:
    result = await flood(login=True, clients=2, seconds=2)
    # Nothing consumes that data: the server reads it at a bounded rate, not at the rate
    # of the loopback (gigabytes a second).
    assert sum(result["sent"]) < 32 * MIB, result


# --- point 4: order across a reconnect -------------------------------------------------------


async def test_a_users_unsequenced_data_keeps_its_order_across_a_reconnect() -> None:
    handler = GatedHandler()
    server = await serve_attacked(on_unsequenced=handler)
    count = 300
    try:
        async with honest_feed(server) as feed:
            quiet = await feed.measure(0.3)

            def users() -> list[Connection]:
                return [c for c in server.connections if c.username == ATTACKER]

            # The first connection sends its orders, the handler is slow, the link drops.
            old = await RawClient.connect(server.address)
            assert (await old.login(username=ATTACKER, password=ATTACKER_PASSWORD))[0] == b"A"
            old.send(b"".join(wire(b"U", b"old%06d" % i) for i in range(count)))
            old.writer.write_eof()
            await wait_until(lambda: not users(), 10, "the first connection closed")
            # The client reconnects at once and sends more.
            new = await RawClient.connect(server.address)
            assert (await new.login(username=ATTACKER, password=ATTACKER_PASSWORD))[0] == b"A"
            new.send(b"".join(wire(b"U", b"new%06d" % i) for i in range(count)))
            new.send(wire(b"O"))  # Logout Request: the server has read it all once it closes
            await wait_until(lambda: not users(), 10, "the second connection closed")
            attacked = await feed.measure(0.3)
            handler.release()
            await wait_until(lambda: len(handler.calls) >= 2 * count, 10, "all handled")
            await feed.finish()
            old.close()
            new.close()
        seen = [data[:9] for _, data in handler.calls]
        first_new = next(i for i, d in enumerate(seen) if d.startswith(b"new"))
        last_old = max(i for i, d in enumerate(seen) if d.startswith(b"old"))
        report(
            "4 Unsequenced Data across a reconnect",
            size=f"{count} messages queued for a slow handler, then {count} more after a reconnect",
            first_new_handled_at=first_new,
            last_old_handled_at=last_old,
            lost=feed.published - len(feed.received),
            **latency_figures(quiet, attacked),
        )
        # Per user, the handler sees the messages in the order they were sent.
        assert seen == [b"old%06d" % i for i in range(count)] + [
            b"new%06d" % i for i in range(count)
        ]
    finally:
        await server.close()
