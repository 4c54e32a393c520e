"""The round trip's fast paths (issue 22) against the general ones they stand in for: a chunk
that is exactly one Sequenced Data packet taken without the frame walk, and the Unsequenced
Data header packed at once. Either gives what the general path gives, or declines and
consumes nothing."""

from __future__ import annotations

import asyncio
from itertools import count

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import soupbintcp
from soupbintcp import Connection, Dialect, LocalProtocolError, Message, serve
from soupbintcp._client._inbox import Inbox
from soupbintcp._session._events import SequencedFrames, SequencedMessages
from soupbintcp.lowlevel import (
    ClientSession,
    PacketDecoder,
    Role,
    ServerConnectionState,
    UnsequencedDataPacket,
)
from soupbintcp.store import MemoryStore

from .helpers import sequenced, wire, within

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path

packet_types = st.sampled_from([b"S", b"U", b"H", b"Z", b"+", b"A", b"X"])
one_packet = st.builds(wire, packet_types, st.binary(max_size=40))
#: A chunk: mostly one packet (the case the fast path takes), or several, a part of one,
#: a bad length field, or any bytes.
chunks = st.one_of(
    one_packet,
    st.builds(lambda ps: b"".join(ps), st.lists(one_packet, min_size=2, max_size=3)),
    st.builds(lambda p, cut: p[:cut], one_packet, st.integers(0, 6)),
    st.builds(lambda p: b"\x00\x00" + p[2:], one_packet),
    st.builds(lambda p: b"\x00\x09" + p[2:], one_packet),
    st.binary(max_size=12),
)


@given(
    before=st.binary(max_size=4),
    data=chunks,
    omega=st.booleans(),
    limit=st.sampled_from([0xFFFF, 20]),
)
def test_one_packet_is_the_walk_of_one_sequenced_packet(
    before: bytes, data: bytes, omega: bool, limit: int
) -> None:
    dialect = Dialect.OMEGA if omega else Dialect.SOUPBINTCP
    fast = PacketDecoder(Role.SERVER, dialect=dialect, max_packet_length=limit)
    walk = PacketDecoder(Role.SERVER, dialect=dialect, max_packet_length=limit)
    for decoder in (fast, walk):
        decoder.feed(wire(b"H"))  # the stream does not start here
        decoder.next_packet()
        decoder.feed(before)  # perhaps a part of a packet left over
    state = (fast.offset, fast.buffered)
    payload = fast.one_packet(data, 83)
    walk.feed(data)
    payloads = walk.next_sequenced_payloads()
    if payload is None:
        assert (fast.offset, fast.buffered) == state  # nothing consumed
        # declined only when the walk would not take exactly this one whole packet
        assert not (payloads and walk.buffered == 0 and len(payloads) == 1)
    else:
        assert [payload] == payloads
        assert walk.buffered == fast.buffered == 0
        assert fast.offset == walk.offset


def _accepted(sequence: int) -> bytes:
    return wire(b"A", b"SESSION1  " + str(sequence).rjust(20).encode())


def _logged_in(resent: int = 0, dialect: Dialect = Dialect.SOUPBINTCP) -> ClientSession:
    """Logged in; with `resent`, resumed on a second connection where the server starts
    that many messages back (duplicates to drop come first)."""
    session = ClientSession("user", "pw", dialect=dialect)
    session.login(0.0)
    session.receive_data(_accepted(1), 0.0)
    if resent:
        session.receive_data(b"".join(wire(b"S", b"m") for _ in range(resent)), 0.0)
        session.connection_lost()
        session.login(0.0)
        session.receive_data(_accepted(1), 0.0)
    return session


@given(
    data=chunks,
    resent=st.integers(0, 2),
    omega=st.booleans(),
    before=st.sampled_from([b"", b"\x00", b"\x00\x05S"]),
)
@example(data=wire(b"S"), resent=0, omega=True, before=b"")  # Omega: "no more messages"
@example(data=wire(b"S", b"x"), resent=0, omega=False, before=b"\x00")
def test_receive_one_is_receive_data_of_one_message(
    data: bytes, resent: int, omega: bool, before: bytes
) -> None:
    # `resent`: the server answered a resume from an earlier number, so duplicates come first;
    # `before`: a part of a packet is buffered already (then the chunk is not one packet).
    dialect = Dialect.OMEGA if omega else Dialect.SOUPBINTCP
    fast = _logged_in(resent, dialect)
    slow = _logged_in(resent, dialect)
    for session in (fast, slow):
        session.receive_data(before, 5.0)
    msg = fast.receive_one(data, 5.0)
    if msg is None:
        assert fast.next_sequence == slow.next_sequence
        try:  # nothing was consumed: the general path still gets the whole chunk
            fast.receive_data(data, 5.0)
        except Exception as exc:
            with pytest.raises(type(exc)):
                slow.receive_data(data, 5.0)
        else:
            slow.receive_data(data, 5.0)
        assert fast.next_sequence == slow.next_sequence
        return
    events = slow.receive_data(data, 5.0)
    assert sequenced(events) == [(msg.sequence, msg.data)]
    assert len(events) == 1
    assert fast.next_sequence == slow.next_sequence


try:
    from soupbintcp._speedups import _core
except ImportError:  # not built: the agreement test below says so
    _core = None  # type: ignore[assignment]


@pytest.mark.skipif(_core is None, reason="the compiled fast path is not built")
@given(
    data=chunks,
    sequence=st.one_of(st.integers(1, 2**64 + 5), st.just(2**70)),
    limit=st.sampled_from([0xFFFF, 20, 1]),
    omega=st.booleans(),
    kind=st.sampled_from([bytes, bytearray]),
)
@example(data=wire(b"S"), sequence=1, limit=0xFFFF, omega=True, kind=bytes)  # Omega's "no more"
@example(data=wire(b"S"), sequence=1, limit=0xFFFF, omega=False, kind=bytes)
@example(data=wire(b"S", bytes(20)), sequence=1, limit=20, omega=False, kind=bytes)  # 1 too long
def test_the_compiled_one_sequenced_message_is_its_pure_twin(
    data: bytes, sequence: int, limit: int, omega: bool, kind: type[bytes]
) -> None:
    from soupbintcp._session._client import one_sequenced_message

    data = kind(data)  # a sans-IO caller may hand a bytearray
    pure = one_sequenced_message(Message, data, sequence, limit, omega)
    fast = _core.one_sequenced_message(Message, data, sequence, limit, omega)
    assert fast == pure
    assert type(fast) is type(pure)
    if fast is not None:
        assert (fast.sequence, fast.data) == (sequence, data[3:])


def test_the_compiled_one_sequenced_message_wants_a_tuple_class() -> None:
    if _core is None:
        pytest.skip("the compiled fast path is not built")
    with pytest.raises(TypeError):
        _core.one_sequenced_message(list, wire(b"S", b"x"), 1, 0xFFFF, False)  # type: ignore[type-var]


def test_receive_one_counts_as_a_sign_of_life() -> None:
    session = _logged_in()
    assert session.receive_one(wire(b"S", b"x"), 9.0) == (1, b"x")
    # the server's silence counts from 9.0: its heartbeat timeout (15 s) is due at 24.0
    assert session.next_timer() == pytest.approx(1.0)  # our own heartbeat comes first
    session.send_unsequenced(b"", 30.0)
    assert session.next_timer() == pytest.approx(24.0)


def _server_side(logged_in: bool) -> ServerConnectionState:
    server = ServerConnectionState(0.0)
    server.receive_data(wire(b"L", b"user  secret    " + b" " * 10 + b"1".rjust(20)), 0.0)
    if logged_in:
        server.accept("SESSION1", 1, 0.0)
    return server


@given(data=chunks, logged_in=st.booleans())
def test_receive_one_unsequenced_is_receive_data_of_one_request(
    data: bytes, logged_in: bool
) -> None:
    fast = _server_side(logged_in)
    slow = _server_side(logged_in)
    payload = fast.receive_one_unsequenced(data, 5.0)
    if payload is None:
        assert fast.state is slow.state
        try:  # nothing was consumed: the general path still gets the whole chunk
            fast.receive_data(data, 5.0)
        except Exception as exc:
            with pytest.raises(type(exc)):
                slow.receive_data(data, 5.0)
        else:
            slow.receive_data(data, 5.0)
        assert fast.state is slow.state
        return
    events = slow.receive_data(data, 5.0)
    assert events == [UnsequencedDataPacket(payload)]
    assert fast.state is slow.state


@given(st.binary(max_size=70))
def test_unsequenced_header_is_the_spec_layout(data: bytes) -> None:
    assert _logged_in().send_unsequenced(data, 1.0) == wire(b"U", data)


def test_unsequenced_refused_as_before() -> None:
    session = ClientSession("user", "pw")
    with pytest.raises(LocalProtocolError, match="state 'idle'"):
        session.send_unsequenced(b"x", 0.0)
    with pytest.raises(LocalProtocolError, match="does not fit"):
        _logged_in().send_unsequenced(bytes(0xFFFF), 0.0)
    assert len(_logged_in().send_unsequenced(bytes(0xFFFE), 0.0)) == 0xFFFF + 2


async def test_answers_go_out_before_the_loop_turns() -> None:
    """What `on_unsequenced` publishes is written when the bytes are handled, not one turn
    of the event loop later: a callback the handler scheduled before publishing already
    sees it sent. Several requests in one chunk are answered in order, and a request in
    pieces (the general path) the same way."""
    seen: list[tuple[int, int]] = []  # (bytes sent when the callback ran, after publishing)

    def answer(connection: Connection, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        holder: list[int] = []
        loop.call_soon(lambda: seen.append((connection.bytes_sent, holder[0])))
        connection.publish(b"re:" + data)
        holder.append(connection.bytes_sent + len(b"re:" + data) + 3)

    async with serve(
        ("127.0.0.1", 0),
        user_store=lambda user: MemoryStore(),
        session_id="RTT",
        authenticate=lambda *_: True,
        on_unsequenced=answer,
    ) as server:
        client = await soupbintcp.connect_async(server.address, "u", "-", session_id="RTT")
        client.send_unseq_data(b"1")
        assert await within(client.receive_msg()) == Message((1, b"re:1"))
        client.send_unseq_data(b"2")
        client.send_unseq_data(b"3")
        assert await within(client.receive_msg()) == Message((2, b"re:2"))
        assert await within(client.receive_msg()) == Message((3, b"re:3"))
        await client.close()
    assert len(seen) == 3
    assert all(sent >= wanted for sent, wanted in seen), seen


@given(
    puts=st.lists(st.integers(0, 3), min_size=1, max_size=12),
    takes=st.lists(st.sampled_from(["msg", "batch", "frames"]), min_size=1, max_size=30),
)
def test_single_messages_queued_mix_with_runs(puts: list[int], takes: list[str]) -> None:
    """`put_one`'s messages (the async client's fast path) come out of every handout in
    stream order, exactly once, as the runs around them do (0 in `puts`: one message by
    `put_one`; n: a run of n)."""
    inbox = Inbox(1000, pause=lambda: False, resume=lambda: None)
    sent: list[tuple[int, bytes]] = []
    for n in puts:
        first = len(sent) + 1
        payloads = [b"m%d" % (first + i) for i in range(max(n, 1))]
        sent += [(first + i, p) for i, p in enumerate(payloads)]
        if n == 0:
            inbox.put_one(Message((first, payloads[0])))
        else:
            inbox.queue([SequencedMessages(first, payloads)])
    got: list[tuple[int | None, bytes]] = []
    for how in [*takes, "batch"]:
        if how == "msg":
            msg = next(inbox._run, None) or inbox._take_one()
            if msg is not None:
                got.append((msg.sequence, msg.data))
        elif how == "batch":
            for item in inbox.take_all():
                assert isinstance(item, SequencedMessages)
                got += list(zip(count(item.first_sequence), item.messages, strict=False))
        else:
            for frames in inbox.take_frames():
                assert isinstance(frames, SequencedFrames)
                got += list(zip(count(frames.first_sequence), frames.payloads(), strict=False))
    assert got == sent
    assert inbox._unread() == 0


def test_single_messages_pause_and_resume_reading() -> None:
    """Messages queued one by one (`put_one`) stop reading at the high-water mark and, taken
    one by one, start it again at the low-water mark: once each, not before."""
    calls: list[str] = []

    def pause() -> bool:
        calls.append("pause")
        return True

    inbox = Inbox(8, pause=pause, resume=lambda: calls.append("resume"))
    for seq in range(1, 9):
        inbox.put_one(Message((seq, b"m")))
    assert calls == ["pause"]
    taken = [inbox._take_one() for _ in range(6)]  # 8 -> 2 queued: the low water is 2
    assert [m.sequence for m in taken if m is not None] == [1, 2, 3, 4, 5, 6]
    assert calls == ["pause", "resume"]
    assert inbox._unread() == 2
    assert [inbox._take_one(), inbox._take_one()] == [Message((7, b"m")), Message((8, b"m"))]
    assert calls == ["pause", "resume"]
    assert inbox._unread() == 0
