"""The zero-copy batch view (`receive_frames`): the same messages as every other path, exactly
once and in order, across reconnects and resent duplicates, mixed with the other paths."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

import soupbintcp
from soupbintcp import SessionEnded
from soupbintcp.lowlevel import (
    Event,
    FramesItem,
    SequencedFrames,
    SequencedMessages,
    ServerConnectionState,
    UnsequencedDataPacket,
)

from .fault_proxy import FaultProxy
from .helpers import login_pair, wait_for, within
from .scripted_server import ScriptedServer
from .test_client_async import FAST, connect, msgs, run_on

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path


def messages_of(events: list[Event]) -> list[tuple[int | None, bytes]]:
    """(sequence, payload) of every message among `events`, whichever way they came."""
    out: list[tuple[int | None, bytes]] = []
    for event in events:
        if isinstance(event, SequencedMessages | SequencedFrames):
            out.extend((m.sequence, m.data) for m in event.to_messages())
        elif isinstance(event, UnsequencedDataPacket):
            out.append((None, event.data))
    return out


def frames_messages(items: list[FramesItem]) -> list[tuple[int | None, bytes]]:
    out: list[tuple[int | None, bytes]] = []
    for item in items:
        if isinstance(item, SequencedFrames):
            view = memoryview(item.buffer)
            out.extend(
                (item.first_sequence + i, bytes(view[o : o + n]))
                for i, (o, n) in enumerate(zip(item.offsets, item.lengths, strict=True))
            )
        else:
            out.append((None, item.data))
    return out


# --- the session: the view is the same stream ------------------------------------------------


@given(
    st.lists(st.binary(max_size=40), max_size=60),
    st.lists(st.integers(0, 3_000), max_size=10),
    st.integers(0, 30),
)
@settings(max_examples=200)
def test_session_view_matches_the_payload_runs(
    data: list[bytes], cuts: list[int], overlap: int
) -> None:
    """Same stream, same chunking, a resume that resends `overlap` duplicates: equal output."""
    seen = []
    for view in (False, True):
        client, server = login_pair()
        client.frames_view = view
        stream = server.send_sequenced_many(data, 0.0)
        marks = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
        events: list[Event] = []
        for a, b in itertools.pairwise(marks):
            events += client.receive_data(stream[a:b], 0.0)
        # Resume after the connection is lost: the server resends from before the next one.
        client.connection_lost()
        server2 = ServerConnectionState(0.0)
        server2.receive_data(client.login(0.0), 0.0)
        start = max(1, client.next_sequence - overlap)
        events += client.receive_data(server2.accept("SESSION1", start, 0.0), 0.0)
        events += client.receive_data(
            server2.send_sequenced_many([*data[start - 1 :], b"new"], 0.0), 0.0
        )
        kinds = {type(e) for e in events} & {SequencedMessages, SequencedFrames}
        assert kinds <= {SequencedFrames if view else SequencedMessages}
        seen.append(messages_of(events))
    assert seen[0] == seen[1]
    assert seen[0] == [(i + 1, p) for i, p in enumerate([*data, b"new"])]


def test_view_of_payloads_round_trips() -> None:
    payloads_ = [b"", b"abc", b"x" * 300]
    frames = SequencedFrames.from_payloads(7, payloads_)
    assert (len(frames), frames.next_sequence) == (3, 10)
    assert frames.payloads() == payloads_
    assert (list(frames.offsets), list(frames.lengths)) == ([0, 0, 3], [0, 3, 300])
    assert [(m.sequence, m.data) for m in frames.to_messages()] == [
        (7, b""),
        (8, b"abc"),
        (9, payloads_[2]),
    ]


# --- asyncio ---------------------------------------------------------------------------------


async def test_receive_frames_hands_the_received_bytes_over(scripted: ScriptedServer) -> None:
    client = await connect(scripted)
    scripted.publish(*msgs(2_000))
    got: list[tuple[int | None, bytes]] = []
    while len(got) < 2_000:
        items = await within(client.receive_frames())
        assert all(type(i) is SequencedFrames for i in items)
        got += frames_messages(items)
    assert got == [(i, m) for i, m in enumerate(msgs(2_000), 1)]
    await client.close()
    with pytest.raises(SessionEnded):
        await client.receive_frames()


async def test_frames_mixed_with_the_other_paths(scripted: ScriptedServer) -> None:
    """Messages queued before the first call, one taken by receive_msg, an unsequenced one,
    a batch after: each exactly once, in stream order."""
    scripted.publish(*msgs(10))
    client = await connect(scripted)
    await wait_for(lambda: client.queued == 10)
    first = await within(client.receive_msg())
    got = frames_messages(await within(client.receive_frames()))  # the rest of the run, copied
    scripted.publish(*msgs(5, 11))
    await wait_for(lambda: client.queued == 5)
    batch = await within(client.receive_batch())  # views turned back into payload runs
    assert all(type(i) is SequencedMessages for i in batch)
    assert [(first.sequence, first.data), *got] == [(i, m) for i, m in enumerate(msgs(10), 1)]
    assert [m for i in batch if isinstance(i, SequencedMessages) for m in i.messages] == msgs(5, 11)
    await client.close()


async def test_frames_skip_resent_duplicates(scripted: ScriptedServer) -> None:
    scripted.publish(*msgs(10))
    client = await connect(scripted, reconnect=FAST)
    got = frames_messages(await within(client.receive_frames()))
    await wait_for(lambda: client.queued == 10 - len(got))
    scripted.resend_overlap = 7
    scripted.drop_all()
    scripted.publish(*msgs(5, 11))
    while len(got) < 15:
        got += frames_messages(await within(client.receive_frames()))
    assert got == [(i, m) for i, m in enumerate(msgs(15), 1)]
    assert client.reconnects == 1
    await client.close()


async def cut_scenario(total: int, min_cuts: int, seed: int) -> None:
    """Connections cut at random points (mid-packet too); the view, receive_batch and
    receive_msg taken at random: every message exactly once, in order."""
    rng = random.Random(seed)
    server = ScriptedServer()
    target = await server.start()
    data = [rng.randbytes(rng.randint(11, 50)) for _ in range(total)]
    server.publish(*data)
    proxy = FaultProxy(
        target, cut_at=lambda n: rng.randint(0, 60_000) if n < min_cuts + 5 else None, seed=seed
    )
    address = await proxy.start()
    try:
        client = await within(
            soupbintcp.connect_async(address, "user", "secret", reconnect=FAST), 10
        )
        got: list[tuple[int | None, bytes]] = []
        while len(got) < total:
            way = rng.random()
            if way < 0.6:
                got += frames_messages(await within(client.receive_frames(), 20))
            elif way < 0.9:
                for item in await within(client.receive_batch(), 20):
                    assert isinstance(item, SequencedMessages)
                    got += [(item.first_sequence + i, m) for i, m in enumerate(item.messages)]
            else:
                msg = await within(client.receive_msg(), 20)
                got.append((msg.sequence, msg.data))
        assert got == [(i, m) for i, m in enumerate(data, 1)]
        assert proxy.cuts >= min_cuts
        await client.close()
    finally:
        await proxy.close()
        await server.close()


@pytest.mark.parametrize(
    "loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)
def test_frames_across_random_cuts_exactly_once_in_order(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    run_on(loop_factory, cut_scenario(total=40_000, min_cuts=10, seed=3))
