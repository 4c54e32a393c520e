"""The `MessageStore` contract, run against every store and durability policy."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from soupbintcp import LocalProtocolError
from soupbintcp.lowlevel import PacketDecoder, Role, SequencedDataPacket
from soupbintcp.store import Durability, FileStore, MemoryStore, MessageStore, StoreError

StoreFactory = Callable[[], MessageStore]


def frames_of(messages: list[bytes]) -> bytes:
    return b"".join(SequencedDataPacket(m).encode() for m in messages)


def decode(frames: bytes) -> list[bytes]:
    decoder = PacketDecoder(Role.SERVER)
    decoder.feed(frames)
    payloads = decoder.next_sequenced_payloads()
    assert decoder.buffered == 0, "read_frames returned a partial frame"
    return payloads


def sample(i: int) -> bytes:
    """Message i: varied sizes, content tied to the number."""
    return (b"%d:" % i) * (i % 13)


@pytest.fixture(params=["memory", "file-publish", "file-timer", "file-fsync"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    opened: list[MessageStore] = []

    def factory() -> MessageStore:
        store: MessageStore
        if request.param == "memory":
            store = MemoryStore(session_id="ABC")
        else:
            store = FileStore(
                tmp_path / "journal",
                durability=Durability.TIMER
                if request.param == "file-timer"
                else Durability.PUBLISH,
                fsync=request.param == "file-fsync",
                session_id="ABC",
                index_interval=4,
            )
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> MessageStore:
    return make_store()


def test_is_a_message_store(store: MessageStore) -> None:
    assert isinstance(store, MessageStore)
    assert store.session_id == "ABC"


def test_empty(store: MessageStore) -> None:
    assert (store.count, store.durable_count) == (0, 0)
    assert store.read_frames(1, 1000) == (b"", 0)
    assert store.read(1, 10) == []


def test_append_numbers_from_one(store: MessageStore) -> None:
    assert [store.append(sample(i)) for i in range(1, 6)] == [1, 2, 3, 4, 5]
    assert store.append_many([b"x", b"y"]) == 6
    assert store.append_frames(frames_of([b"z", b""]), 2) == 8
    assert store.count == 9
    store.flush()
    assert store.durable_count == 9
    assert store.read(1, 9) == [*(sample(i) for i in range(1, 6)), b"x", b"y", b"z", b""]


def test_append_many_empty_does_nothing(store: MessageStore) -> None:
    store.append(b"a")
    assert store.append_many([]) == 2
    assert store.append_many(iter(())) == 2
    assert store.append_frames(b"", 0) == 2
    assert store.count == 1


def test_append_many_takes_any_iterable(store: MessageStore) -> None:
    assert store.append_many(sample(i) for i in range(1, 101)) == 1
    store.flush()
    assert store.read(1, 100) == [sample(i) for i in range(1, 101)]


def test_largest_payload(store: MessageStore) -> None:
    big = bytes(range(256)) * 255 + b"x" * 254  # 65534 bytes
    assert len(big) == 65534
    store.append(big)
    store.append_many([b"a", big])
    store.append_frames(SequencedDataPacket(big).encode(), 1)
    store.flush()
    assert store.read(1, 4) == [big, b"a", big, big]
    frames, n = store.read_frames(1, 10)
    assert (n, frames) == (1, SequencedDataPacket(big).encode())


def test_oversized_payload_appends_nothing(store: MessageStore) -> None:
    store.append(b"keep")
    with pytest.raises(LocalProtocolError, match="65535"):
        store.append(b"x" * 65535)
    with pytest.raises(LocalProtocolError):
        store.append_many([b"ok", b"x" * 70000, b"ok"])
    assert store.count == 1
    store.flush()
    assert store.read(1, 10) == [b"keep"]


@pytest.mark.parametrize(
    ("frames", "count"),
    [
        (frames_of([b"a", b"b"]), 1),  # bytes left over
        (frames_of([b"a", b"b"]), 3),  # runs past the end
        (frames_of([b"a", b"b"])[:-1], 2),  # the last frame is cut short
        (b"\x00\x02Ua", 1),  # not Sequenced Data
        (b"\x00\x00", 1),  # zero length field
        (b"x", 0),  # bytes for no frames
        (b"", 1),
    ],
)
def test_append_frames_rejects_malformed(store: MessageStore, frames: bytes, count: int) -> None:
    store.append(b"keep")
    with pytest.raises(LocalProtocolError):
        store.append_frames(frames, count)
    assert store.count == 1
    store.append(b"next")
    store.flush()
    assert store.read(1, 5) == [b"keep", b"next"]


def test_append_frames_rejects_negative_count(store: MessageStore) -> None:
    with pytest.raises(LocalProtocolError):
        store.append_frames(b"", -1)


def test_read_frames_are_wire_frames(store: MessageStore) -> None:
    messages = [sample(i) for i in range(1, 201)]
    store.append_many(messages)
    store.flush()
    frames, n = store.read_frames(1, 1 << 30)
    assert n == 200
    assert frames == frames_of(messages)
    assert decode(frames) == messages


@pytest.mark.parametrize("max_bytes", [0, 1, 3, 10, 37, 100, 1000, 4096])
def test_read_frames_bounded_and_at_least_one(store: MessageStore, max_bytes: int) -> None:
    messages = [sample(i) for i in range(1, 151)]
    store.append_many(messages)
    store.flush()
    for start in range(1, 151):
        frames, n = store.read_frames(start, max_bytes)
        assert n >= 1
        assert n == 1 or len(frames) <= max_bytes
        assert decode(frames) == messages[start - 1 : start - 1 + n]


@pytest.mark.parametrize("max_bytes", [1, 50, 333, 1 << 20])
def test_replay_whole_history_in_chunks(store: MessageStore, max_bytes: int) -> None:
    messages = [sample(i) for i in range(1, 301)]
    store.append_many(messages[:100])
    for m in messages[100:200]:
        store.append(m)
    store.append_frames(frames_of(messages[200:]), 100)
    store.flush()
    sequence, chunks = 1, []
    while True:
        frames, n = store.read_frames(sequence, max_bytes)
        if not n:
            break
        chunks.append(frames)
        sequence += n
    assert sequence == 301
    assert b"".join(chunks) == frames_of(messages)


def test_read_frames_past_durable_is_empty(store: MessageStore) -> None:
    store.append_many([b"a", b"b"])
    store.flush()
    assert store.read_frames(3, 100) == (b"", 0)
    assert store.read_frames(10**9, 100) == (b"", 0)


def test_read_stops_at_the_end(store: MessageStore) -> None:
    store.append_many([b"a", b"b", b"c"])
    store.flush()
    assert store.read(2, 100) == [b"b", b"c"]
    assert store.read(4, 1) == []
    assert store.read(1, 0) == []


@pytest.mark.parametrize("sequence", [0, -1])
def test_sequence_numbers_start_at_one(store: MessageStore, sequence: int) -> None:
    with pytest.raises(LocalProtocolError):
        store.read_frames(sequence, 100)
    with pytest.raises(LocalProtocolError):
        store.read(sequence, 1)


def test_closed_store_refuses(store: MessageStore) -> None:
    store.append(b"a")
    store.close()
    store.close()  # idempotent
    assert store.count == 1
    for call in (
        lambda: store.append(b"b"),
        lambda: store.append_many([b"b"]),
        lambda: store.append_frames(frames_of([b"b"]), 1),
        lambda: store.read_frames(1, 10),
        lambda: store.read(1, 1),
        store.flush,
    ):
        with pytest.raises(StoreError, match="closed"):
            call()


def test_context_manager_closes(make_store: StoreFactory) -> None:
    with make_store() as store:
        store.append(b"a")
    with pytest.raises(StoreError):
        store.append(b"b")


def test_invalid_session_id_rejected(tmp_path: Path) -> None:
    for bad in ("with space", "toolongsession", "dash-ed", "é"):
        with pytest.raises(LocalProtocolError):
            MemoryStore(session_id=bad)
        with pytest.raises(LocalProtocolError):
            FileStore(tmp_path / "j", session_id=bad)
    assert MemoryStore(session_id="").session_id is None


# --- property: random operations against a list ------------------------------------------------

payload = st.binary(max_size=30) | st.binary(min_size=100, max_size=400)


class StoreMachine(RuleBasedStateMachine):
    """Any mix of appends, flushes, reopens and reads agrees with a plain list."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="soupstore-"))
        self.model: list[bytes] = []
        self.durable = 0
        self.kind = "memory"
        self.durability = Durability.PUBLISH
        self.interval = 1
        self.store: MessageStore = MemoryStore()

    @initialize(
        kind=st.sampled_from(["memory", "file"]),
        durability=st.sampled_from(Durability),
        interval=st.sampled_from([1, 2, 3, 7, 256]),
    )
    def setup(self, kind: str, durability: Durability, interval: int) -> None:
        self.kind, self.durability, self.interval = kind, durability, interval
        self.open()

    def open(self) -> None:
        if self.kind == "file":
            self.store = FileStore(
                self.dir / "j", durability=self.durability, index_interval=self.interval
            )
        self.durable = len(self.model)

    def appended(self, first: int, messages: list[bytes]) -> None:
        assert first == len(self.model) + 1
        self.model += messages
        if self.kind == "memory" or self.durability is Durability.PUBLISH:
            self.durable = len(self.model)

    @rule(data=payload)
    def append(self, data: bytes) -> None:
        self.appended(self.store.append(data), [data])

    @rule(messages=st.lists(payload, max_size=12))
    def append_many(self, messages: list[bytes]) -> None:
        self.appended(self.store.append_many(messages), messages)

    @rule(messages=st.lists(payload, max_size=12))
    def append_frames(self, messages: list[bytes]) -> None:
        self.appended(self.store.append_frames(frames_of(messages), len(messages)), messages)

    @rule()
    def flush(self) -> None:
        self.store.flush()
        self.durable = len(self.model)

    @precondition(lambda self: self.kind == "file")
    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.open()

    @rule(data=st.data(), max_bytes=st.integers(0, 2000))
    def read_frames(self, data: st.DataObject, max_bytes: int) -> None:
        sequence = data.draw(st.integers(1, self.durable + 2))
        frames, n = self.store.read_frames(sequence, max_bytes)
        if sequence > self.durable:
            assert (frames, n) == (b"", 0)
            return
        assert n >= 1
        assert n == 1 or len(frames) <= max_bytes
        assert decode(frames) == self.model[sequence - 1 : sequence - 1 + n]

    @rule(data=st.data(), count=st.integers(0, 30))
    def read(self, data: st.DataObject, count: int) -> None:
        sequence = data.draw(st.integers(1, self.durable + 2))
        expected = self.model[sequence - 1 : min(sequence - 1 + count, self.durable)]
        assert self.store.read(sequence, count) == expected

    @invariant()
    def counts(self) -> None:
        assert self.store.count == len(self.model)
        assert self.store.durable_count == self.durable

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
