"""`MemoryStore` specifics (the shared contract is in test_store_contract.py)."""

from __future__ import annotations

from soupbintcp.lowlevel import SequencedDataPacket
from soupbintcp.store import MemoryStore


def test_everything_is_durable_at_once() -> None:
    store = MemoryStore()
    store.append(b"a")
    assert store.durable_count == store.count == 1
    store.append_many([b"b", b"c"])
    assert store.durable_count == store.count == 3
    store.flush()  # nothing to do
    assert store.durable_count == 3


def test_no_session_id_by_default() -> None:
    assert MemoryStore().session_id is None
    assert MemoryStore(session_id="SESS01").session_id == "SESS01"


def test_frames_are_one_contiguous_run() -> None:
    store = MemoryStore()
    messages = [bytes([i % 256]) * (i % 300) for i in range(5000)]
    store.append_many(messages[:2500])
    store.append_frames(b"".join(SequencedDataPacket(m).encode() for m in messages[2500:]), 2500)
    expected = b"".join(SequencedDataPacket(m).encode() for m in messages)
    frames, n = store.read_frames(1, len(expected))
    assert (frames, n) == (expected, 5000)
    # A window in the middle is the matching slice of the whole.
    frames, n = store.read_frames(1234, 10_000)
    start = sum(len(m) + 3 for m in messages[:1233])
    assert frames == expected[start : start + len(frames)]
    assert len(frames) <= 10_000 < len(frames) + len(messages[1233 + n]) + 3


def test_read_frames_returns_bytes() -> None:
    store = MemoryStore()
    store.append(b"abc")
    frames, _ = store.read_frames(1, 100)
    assert type(frames) is bytes
    store.append(b"d")  # the store can still grow after a read
    assert store.read(1, 2) == [b"abc", b"d"]


def test_repr() -> None:
    store = MemoryStore(session_id="S1")
    assert "count=0" in repr(store)
    store.close()
    assert store.closed
    assert "closed" in repr(store)
