"""A client session and a server session wired back to back: no sockets, one fake clock."""

from __future__ import annotations

import random

import pytest

from soupbintcp.lowlevel import (
    ClientSession,
    EndOfSessionPacket,
    LoginAcceptedPacket,
    LoginRequestPacket,
    SequencedMessages,
    ServerConnectionState,
    UnsequencedDataPacket,
)

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path


def test_100000_sequenced_messages_numbered_correctly() -> None:
    rng = random.Random(7)
    client = ClientSession("user", "secret", client_heartbeat_timeout_ms=3000)
    server = ServerConnectionState(0.0)
    now = 0.0
    [request] = server.receive_data(client.login(now), now)
    assert isinstance(request, LoginRequestPacket)
    assert server.client_heartbeat_timeout == 3.0
    assert client.receive_data(server.accept("SESSION1", 1, now), now) == [
        LoginAcceptedPacket("SESSION1", 1)
    ]
    expected = 1
    sent = 0
    wire = bytearray()
    while sent < 100_000:
        batch = [rng.randbytes(rng.randint(11, 50)) for _ in range(rng.randint(1, 500))]
        batch = batch[: 100_000 - sent]
        wire += server.send_sequenced_many(batch, now)
        if rng.random() < 0.2:
            wire += server.send_unsequenced(b"note", now)
        sent += len(batch)
        # deliver in random-sized chunks, as TCP would
        while len(wire) > 4096 or (sent == 100_000 and wire):
            cut = min(len(wire), rng.randint(1, 70_000))
            chunk, wire = bytes(wire[:cut]), wire[cut:]
            for event in client.receive_data(chunk, now):
                if isinstance(event, SequencedMessages):
                    assert event.first_sequence == expected
                    expected = event.next_sequence
                else:
                    assert isinstance(event, UnsequencedDataPacket)
        now += 0.01
        # both sides keep the link alive
        for raw in (server.handle_timer(now),):
            if raw:
                client.receive_data(raw, now)
        if raw := client.handle_timer(now):
            server.receive_data(raw, now)
    assert expected == 100_001
    assert client.next_sequence == server.next_sequence == 100_001
    assert client.receive_data(server.end_session(now), now) == [EndOfSessionPacket()]


def test_heartbeats_keep_an_idle_link_alive_for_a_minute() -> None:
    client = ClientSession("user", "secret", heartbeat_timeout=3.0)
    server = ServerConnectionState(0.0, client_heartbeat_timeout=3.0)
    server.receive_data(client.login(0.0), 0.0)
    client.receive_data(server.accept("S", 1, 0.0), 0.0)
    now = 0.0
    while now < 60.0:
        deadline = min(t for t in (client.next_timer(), server.next_timer()) if t is not None)
        now = deadline
        if raw := client.handle_timer(now):
            server.receive_data(raw, now)
        if raw := server.handle_timer(now):
            client.receive_data(raw, now)
    assert client.next_sequence == 1  # heartbeats are not counted
