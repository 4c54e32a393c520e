"""The server's answer path (issue 22): `Stream.publish` takes the round trip's case (an
answer published while its follower holds the stream, durable at once, in line with the
head) itself. It must do exactly what the general path does: `publish_frames` of the same
frame, which goes through `_append` and `_appended`. Hypothesis runs both streams through
the same operations (publishing, holds, followers going live and leaving, a store whose
durability lags until flushed, the loop's callbacks) and compares what every follower was
written, its sequence numbers and the streams' state after each step."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st

from soupbintcp import Connection, serve
from soupbintcp._server._stream import Stream
from soupbintcp._wire._packets import sequenced_frame
from soupbintcp.lowlevel import ServerConnectionState, UnsequencedDataPacket
from soupbintcp.store import MemoryStore

from .helpers import wait_for, wire
from .server_support import CREDENTIALS, SESSION, RawClient

pytestmark = pytest.mark.fast_path


class LaggingStore(MemoryStore):
    """A store durable at once, or (`lag`) only up to what `flush` made durable."""

    __slots__ = ("lag", "mark")

    def __init__(self, lag: bool) -> None:
        super().__init__()
        self.lag = lag
        self.mark = 0

    @property
    def durable_count(self) -> int:
        return min(self.count, self.mark) if self.lag else self.count

    def flush(self) -> None:
        self.mark = self.count


class Loop:
    """What a stream asks of its loop, run by hand."""

    def __init__(self) -> None:
        self.soon: list[Callable[[], None]] = []
        self.later: list[Callable[[], None]] = []

    def time(self) -> float:
        return 1.0

    def call_soon(self, callback: Callable[[], None]) -> Any:
        self.soon.append(callback)
        return SimpleNamespace(cancel=lambda: self.soon.remove(callback))

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        self.later.append(callback)
        return SimpleNamespace(cancel=lambda: self.later.remove(callback))

    def run(self, which: list[Callable[[], None]]) -> None:
        todo = which[:]
        which.clear()
        for callback in todo:
            callback()


class Follower:
    def __init__(self, log: list[tuple[Any, ...]], name: int) -> None:
        self.bytes_sent = 0
        self.transport = SimpleNamespace(write=lambda data: log.append((name, "write", data)))
        self.sent = 0
        self.session = SimpleNamespace(sequenced_sent=self._sent)
        self.connection = None
        self._log = log
        self._name = name

    def _sent(self, count: int, now: float) -> None:
        self.sent += count

    def catch_up(self) -> None:
        self._log.append((self._name, "catch_up"))

    def end_of_session(self) -> None:  # pragma: no cover - the stream does not end here
        self._log.append((self._name, "end"))


class Side:
    def __init__(self, lag: bool, max_fanout: int, general: bool) -> None:
        self.loop = Loop()
        self.store = LaggingStore(lag)
        config = SimpleNamespace(dialect=None, max_fanout=max_fanout, flush_interval=0.005)
        events = SimpleNamespace(emit=lambda event: None)
        self.stream = Stream(
            cast(Any, config), cast(Any, self.loop), self.store, None, owned=False,
            events=cast(Any, events), session_id="S",
        )  # fmt: skip
        self.log: list[tuple[Any, ...]] = []
        self.followers = [Follower(self.log, i) for i in range(2)]
        for follower in self.followers:
            self.stream.follow(cast(Any, follower))
        self.general = general
        self.holds = 0

    def do(self, op: tuple[Any, ...]) -> Any:
        stream, kind = self.stream, op[0]
        if kind == "publish":
            if self.general:
                return stream.publish_frames(sequenced_frame(op[1]), 1)
            return stream.publish(op[1])
        if kind == "hold":
            self.holds += 1
            stream.hold()
        elif kind == "release" and self.holds:
            self.holds -= 1
            stream.release()
        elif kind == "live":
            stream.go_live(cast(Any, self.followers[op[1]]))
        elif kind == "leave":
            stream.leave_live(cast(Any, self.followers[op[1]]))
        elif kind == "flush":
            self.store.flush()
            self.loop.run(self.loop.later)
        elif kind == "soon":
            self.loop.run(self.loop.soon)
        return None

    def state(self) -> tuple[Any, ...]:
        stream = self.stream
        return (
            self.log, [(f.sent, f.bytes_sent) for f in self.followers], stream.head,
            stream.pending_bytes, stream._pending, stream._counts, stream._due,
            len(self.loop.soon), len(self.loop.later), self.store.count,
        )  # fmt: skip


ops = st.one_of(
    st.tuples(st.just("publish"), st.binary(min_size=1, max_size=40)),
    st.tuples(st.sampled_from(["hold", "release", "flush", "soon"])),
    st.tuples(st.sampled_from(["live", "leave"]), st.integers(0, 1)),
)


@settings(max_examples=300)
@given(
    steps=st.lists(ops, max_size=40),
    lag=st.booleans(),
    max_fanout=st.sampled_from([1 << 20, 100]),
)
def test_publish_is_publish_frames_of_its_frame(
    steps: list[tuple[Any, ...]], lag: bool, max_fanout: int
) -> None:
    fast = Side(lag, max_fanout, general=False)
    general = Side(lag, max_fanout, general=True)
    for step in steps:
        assert fast.do(step) == general.do(step), step
        assert fast.state() == general.state(), step


def test_the_held_answer_waits_for_the_release_then_goes_out_once() -> None:
    side = Side(lag=False, max_fanout=1 << 20, general=False)
    side.do(("live", 0))
    side.do(("hold",))
    assert side.do(("publish", b"answer")) == 1
    assert side.log == []
    assert side.loop.soon == []  # no loop turn needed: the release writes it
    side.do(("release",))
    assert side.log == [(0, "write", b"\x00\x07Sanswer")]
    assert side.followers[0].sent == 1


def test_a_lagging_store_holds_the_answer_until_flushed() -> None:
    # Journaled before sent: with the store not durable yet, the release writes nothing.
    side = Side(lag=True, max_fanout=1 << 20, general=False)
    side.do(("live", 0))
    side.do(("hold",))
    side.do(("publish", b"answer"))
    side.do(("release",))
    assert side.log == []
    side.do(("flush",))
    assert side.log == [(0, "write", b"\x00\x07Sanswer")]


# --- the one-packet path's handler call (the inbox's usual case, inlined) -----------------


async def _gated_server(gate: asyncio.Event, calls: list[bytes]) -> Any:
    """A handler that records each call as it is made (so a call out of turn shows at
    once); the first request's call returns an awaitable that waits for `gate`."""

    async def gated() -> None:
        await gate.wait()

    def handler(connection: Connection, data: bytes) -> Awaitable[None] | None:
        calls.append(data)
        return gated() if len(calls) == 1 else None

    return await serve(
        ("127.0.0.1", 0), store=MemoryStore(), session_id=SESSION, credentials=CREDENTIALS,
        on_unsequenced=handler,
    )  # fmt: skip


async def _one_chunk_each(client: RawClient, requests: list[bytes]) -> None:
    for data in requests:
        client.send(wire(b"U", data))
        await client.writer.drain()
        await asyncio.sleep(0.02)  # each its own read, so its own one-packet chunk


async def test_one_packet_chunks_wait_for_a_coroutine_handler_in_order() -> None:
    gate, calls = asyncio.Event(), list[bytes]()
    server = await _gated_server(gate, calls)
    try:
        client = await RawClient.connect(server.address)
        assert (await client.login(session=SESSION))[0] == b"A"
        await _one_chunk_each(client, [b"1", b"2", b"3"])
        assert calls == [b"1"]  # the others wait for the first call to finish
        gate.set()
        await wait_for(lambda: len(calls) == 3)
        assert calls == [b"1", b"2", b"3"]
        client.close()
    finally:
        await server.close()


async def test_one_packet_chunks_of_a_reconnected_user_wait_for_its_earlier_ones() -> None:
    gate, calls = asyncio.Event(), list[bytes]()
    server = await _gated_server(gate, calls)
    try:
        first = await RawClient.connect(server.address)
        assert (await first.login(session=SESSION))[0] == b"A"
        await _one_chunk_each(first, [b"earlier"])
        first.close()
        second = await RawClient.connect(server.address)
        assert (await second.login(session=SESSION))[0] == b"A"
        await _one_chunk_each(second, [b"later"])
        assert calls == [b"earlier"]  # not overtaken by the same user's new connection
        gate.set()
        await wait_for(lambda: len(calls) == 2)
        assert calls == [b"earlier", b"later"]
        second.close()
    finally:
        await server.close()


# --- the session's one-packet check (PacketDecoder.one_packet's, inlined) ----------------

_types = st.sampled_from([b"U", b"R", b"+", b"L", b"O", b"S"])
_packet = st.builds(wire, _types, st.binary(max_size=60))
_chunks = st.one_of(
    _packet,
    st.builds(wire, st.just(b"U"), st.binary(min_size=45, max_size=55)),  # about the limit
    st.builds(lambda a, b: a + b, _packet, _packet),
    st.builds(lambda p, cut: p[:cut], _packet, st.integers(0, 6)),
    st.builds(lambda p: b"\x00\x00" + p[2:], _packet),
    st.binary(max_size=12),
)


def _outcome(session: ServerConnectionState, data: bytes) -> Any:
    try:
        return session.receive_data(data, 5.0), repr(session.error)
    except Exception as exc:
        return repr(exc)


@given(
    before=st.one_of(st.just(b""), st.builds(lambda p, cut: p[:cut], _packet, st.integers(1, 4))),
    data=_chunks,
    limit=st.sampled_from([0xFFFF, 50]),  # the Login Request's length is 47
)
def test_receive_one_unsequenced_is_the_general_path_of_one_request(
    before: bytes, data: bytes, limit: int
) -> None:
    """Also with part of a packet buffered before, and with a packet over the limit: what
    the inlined check must decline."""
    login = wire(b"L", b"user  secret    " + b" " * 10 + b"1".rjust(20))
    sessions = []
    for _ in range(2):
        session = ServerConnectionState(0.0, max_packet_length=limit)
        session.receive_data(login, 0.0)
        session.accept("SESSION1", 1, 0.0)
        try:  # a part of a packet, or a whole bad one: only the first is of use here
            session.receive_data(before, 1.0)
        except Exception:
            reject()
        assume(session.error is None)
        sessions.append(session)
    fast, slow = sessions
    payload = fast.receive_one_unsequenced(data, 5.0)
    if payload is None:  # nothing consumed: the general path gets the whole chunk
        assert _outcome(fast, data) == _outcome(slow, data)
    else:
        assert slow.receive_data(data, 5.0) == [UnsequencedDataPacket(payload)]
        assert slow.error is None
        assert fast.next_timer() == slow.next_timer()
    assert fast.state is slow.state
    assert fast.buffered == slow.buffered
