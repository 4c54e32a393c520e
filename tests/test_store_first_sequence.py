"""Stores whose first message is not number 1 (format 3 journals): a journal of a session
that a capture joined late holds messages N, N + 1, ... numbered as on the wire.

The property: a store starting at N behaves exactly like one starting at 1, shifted by
N - 1 (appends, reads, runs of frames, reopening, a torn tail cut). Format 3 is checked
against its layout written here by hand from the `_journal` docstring; format 2 journals
written by hand still open as starting at 1."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soupbintcp.lowlevel import SequencedDataPacket
from soupbintcp.store import (
    Durability,
    FileStore,
    JournalCorruptError,
    JournalReader,
    MemoryStore,
    StoreError,
)


def wire(messages: list[bytes]) -> bytes:
    return b"".join(SequencedDataPacket(m).encode() for m in messages)


payloads = st.binary(max_size=40)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), payloads),
        st.tuples(st.just("many"), st.lists(payloads, max_size=7)),
        st.tuples(st.just("frames"), st.lists(payloads, max_size=7)),
        st.tuples(st.just("flush"), st.none()),
        st.tuples(st.just("reopen"), st.none()),
        st.tuples(st.just("tear"), st.binary(min_size=1, max_size=6)),
    ),
    max_size=25,
)
firsts = st.one_of(st.integers(2, 1000), st.integers(2, 2**63))


def apply(store: FileStore | MemoryStore, op: str, arg: object) -> int | None:
    if op == "append":
        assert isinstance(arg, bytes)
        return store.append(arg)
    if op == "many":
        assert isinstance(arg, list)
        return store.append_many(arg)
    if op == "frames":
        assert isinstance(arg, list)
        return store.append_frames(wire(arg), len(arg))
    store.flush()
    return None


def torn(tail: bytes) -> bytes:
    """A partial last record beginning with `tail` (its length field says more follows)."""
    return b"\x00\x40S" + tail if len(tail) > 2 else tail[:1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=firsts, steps=ops, timer=st.booleans(), interval=st.sampled_from([1, 3, 256]))
def test_a_file_store_from_n_is_one_from_1_shifted(
    first: int, steps: list[tuple[str, object]], timer: bool, interval: int
) -> None:
    durability = Durability.TIMER if timer else Durability.PUBLISH
    shift = first - 1
    with tempfile.TemporaryDirectory(prefix="sbt25n-") as tmp:
        paths = (Path(tmp) / "one.soup", Path(tmp) / "n.soup")

        def open_both() -> tuple[FileStore, FileStore]:
            return (
                FileStore(paths[0], durability=durability, index_interval=interval),
                FileStore(paths[1], durability=durability, index_interval=interval,
                          first_sequence=None if os.path.exists(paths[1]) else first),
            )  # fmt: skip

        one, n = open_both()
        assert (one.first_sequence, n.first_sequence) == (1, first)
        try:
            for op, arg in steps:
                if op in ("reopen", "tear"):
                    one.close()
                    n.close()
                    if op == "tear":
                        assert isinstance(arg, bytes)
                        for path in paths:
                            with path.open("ab") as f:
                                f.write(torn(arg))
                    one, n = open_both()
                    assert n.recovered_bytes == one.recovered_bytes
                    assert n.first_sequence == first
                else:
                    a, b = apply(one, op, arg), apply(n, op, arg)
                    assert b == (None if a is None else a + shift)
                assert n.count == one.count + shift
                assert n.durable_count == one.durable_count + shift
            n.flush()
            one.flush()
            held = one.count
            assert n.read(first, held + 5) == one.read(1, held + 5)
            for s in range(1, held + 1):
                assert n.read_frames(s + shift, 50) == one.read_frames(s, 50)
                assert n.read(s + shift, 3) == one.read(s, 3)
            assert n.read_frames(held + first, 50) == (b"", 0)
            with pytest.raises(StoreError, match=f"starts at message {first:,}"):
                n.read_frames(first - 1, 50)
            with pytest.raises(StoreError, match=f"starts at message {first:,}"):
                n.read(1, 1)
        finally:
            one.close()
            n.close()
        # The journal is the other's with 8 bytes (the first sequence number) more before
        # the records; a reader sees the same, shifted.
        assert paths[1].read_bytes()[40:] == paths[0].read_bytes()[32:]
        with JournalReader(paths[1], index_interval=interval) as reader:
            assert (reader.first_sequence, reader.count) == (first, held + shift)
            assert reader.read(first, held) == JournalReader(paths[0]).read(1, held)
            report = reader.verify()
            assert report.ok, report
            assert (report.messages, report.first_sequence, report.last_sequence) == (
                held,
                first,
                held + shift,
            )


@settings(max_examples=30, deadline=None)
@given(first=firsts, steps=ops)
def test_a_memory_store_from_n_is_one_from_1_shifted(
    first: int, steps: list[tuple[str, object]]
) -> None:
    one, n = MemoryStore(), MemoryStore(first_sequence=first)
    shift = first - 1
    for op, arg in steps:
        if op in ("reopen", "tear"):
            continue
        a, b = apply(one, op, arg), apply(n, op, arg)
        assert b == (None if a is None else a + shift)
        assert (n.count, n.durable_count) == (one.count + shift, one.durable_count + shift)
    for s in range(1, one.count + 1):
        assert n.read_frames(s + shift, 50) == one.read_frames(s, 50)
        assert n.read(s + shift, 3) == one.read(s, 3)
    with pytest.raises(StoreError, match="starts at message"):
        n.read(first - 1, 1)


def format_3(first: int, messages: list[bytes], session: bytes = b"        S1") -> bytes:
    """A format 3 journal, from the layout in the `_journal` docstring."""
    header = bytearray(32)
    header[:8] = b"SBTCPJNL"
    header[8:10] = (3).to_bytes(2, "big")
    header[12:22] = session
    header[22:30] = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    return bytes(header) + first.to_bytes(8, "big") + wire(messages)


def test_format_3_as_documented(tmp_path: Path) -> None:
    journal = tmp_path / "late.soup"
    journal.write_bytes(format_3(1_000_001, [b"a", b"bc", b"def"]))
    with JournalReader(journal) as reader:
        assert (reader.first_sequence, reader.count, reader.session_id) == (
            1_000_001,
            1_000_003,
            "S1",
        )
        assert reader.read(1_000_002, 5) == [b"bc", b"def"]
        assert reader.verify().version == 3
    with FileStore(journal, session_id="S1") as store:  # no checksums yet: made by the writer
        assert store.append(b"g") == 1_000_004
        assert store.read_frames(1_000_003, 100) == (wire([b"def", b"g"]), 2)
    # What a writer creates is the same layout.
    made = tmp_path / "made.soup"
    with FileStore(made, session_id="S1", first_sequence=1_000_001) as store:
        store.append_many([b"a", b"bc", b"def", b"g"])
    data = made.read_bytes()
    assert data[8:10] == b"\x00\x03"
    assert data[32:40] == (1_000_001).to_bytes(8, "big")
    assert data[40:] == wire([b"a", b"bc", b"def", b"g"])
    with JournalReader(made) as reader:
        assert reader.verify().ok


def test_a_journal_from_1_is_still_format_2(tmp_path: Path) -> None:
    """Older versions read what this one writes unless it starts later."""
    journal = tmp_path / "j.soup"
    with FileStore(journal, first_sequence=1) as store:
        store.append(b"x")
    data = journal.read_bytes()
    assert data[8:10] == b"\x00\x02"
    assert data[32:] == wire([b"x"])


def test_a_format_2_journal_written_by_hand_opens_from_1(tmp_path: Path) -> None:
    journal = tmp_path / "old.soup"
    header = bytearray(32)
    header[:8] = b"SBTCPJNL"
    header[8:10] = (2).to_bytes(2, "big")
    header[12:22] = b"        S1"
    header[22:30] = bytes(range(8))
    messages = [b"m%d" % i for i in range(1, 600)]
    journal.write_bytes(bytes(header) + wire(messages))
    with JournalReader(journal) as reader:
        assert (reader.first_sequence, reader.count) == (1, 599)
        assert reader.read(1, 599) == messages
    with FileStore(journal) as store:
        assert (store.first_sequence, store.count) == (1, 599)
        assert store.append(b"next") == 600
        assert store.read(598, 5) == [b"m598", b"m599", b"next"]


def test_the_first_sequence_is_the_journals(tmp_path: Path) -> None:
    journal = tmp_path / "j.soup"
    FileStore(journal, first_sequence=50).close()
    with pytest.raises(StoreError, match="starts at message 50, not the requested 51"):
        FileStore(journal, first_sequence=51)
    with FileStore(journal, first_sequence=50) as store:
        assert (store.count, store.durable_count) == (49, 49)
        assert store.read(50, 1) == []
        assert store.read_frames(50, 10) == (b"", 0)
    for bad in (0, -3, 2**64):
        with pytest.raises(StoreError, match="first sequence number"):
            FileStore(tmp_path / f"bad{bad}.soup", first_sequence=bad)
        with pytest.raises(StoreError, match="first sequence number"):
            MemoryStore(first_sequence=bad)


def test_a_damaged_first_sequence_number_is_caught(tmp_path: Path) -> None:
    """The checksums cover it: a journal whose numbering changed is not served."""
    journal = tmp_path / "j.soup"
    with FileStore(journal, first_sequence=7000, index_interval=4) as store:
        for i in range(3000):  # the index's last entry is well past the first block
            store.append(b"%d" % i)
    with journal.open("r+b") as f:
        f.seek(39)
        f.write(b"\x59")  # 7000 = 0x1b58: now 0x1b59
    with pytest.raises(JournalCorruptError, match="first sequence number") as caught:
        FileStore(journal, index_interval=4)
    assert caught.value.sequence == 7001  # what the damaged field now calls record 1
    with JournalReader(journal, index_interval=4) as reader:
        report = reader.verify()
        assert (report.checksums, report.ok) == ("bad", False)
    header = journal.read_bytes()[:40]
    journal.write_bytes(header[:32] + bytes(8) + b"")
    with pytest.raises(StoreError, match="no valid first sequence number"):
        JournalReader(journal)


def test_corruption_is_reported_with_wire_numbers(tmp_path: Path) -> None:
    journal = tmp_path / "j.soup"
    with FileStore(journal, first_sequence=500, index_interval=4) as store:
        store.append_many([bytes([i]) * 100 for i in range(100)])
    data = bytearray(journal.read_bytes())
    data[40 + 103 * 60 + 50] ^= 0xFF  # inside message 560's payload, block 1
    journal.write_bytes(bytes(data))
    with JournalReader(journal, index_interval=4) as reader:
        report = reader.verify()
        assert report.damage_message is not None
        assert 500 <= report.damage_message <= 560
        with pytest.raises(JournalCorruptError) as caught:
            reader.read(report.damage_message, 1)
        assert caught.value.sequence == report.damage_message
        assert reader.read(500, 1) == [bytes([0]) * 100]
