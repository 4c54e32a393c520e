"""`JournalReader`: reading a journal beside its writer, and `verify()`."""

from __future__ import annotations

from pathlib import Path

import pytest

from soupbintcp.store import Durability, FileStore, JournalReader, StoreError


def samples(first: int, last: int) -> list[bytes]:
    return [b"m%d" % i * (i % 5) for i in range(first, last + 1)]


def test_reads_while_a_writer_holds_the_journal(tmp_path: Path) -> None:
    journal = tmp_path / "live.soup"
    with FileStore(journal, session_id="S1", index_interval=4) as writer:
        writer.append_many(samples(1, 10))
        with FileStore.open_read_only(journal, index_interval=4) as reader:
            assert reader.session_id == "S1"
            assert reader.count == reader.durable_count == 10
            writer.append_many(samples(11, 30))
            assert reader.count == 10  # a snapshot until refreshed
            assert reader.refresh() == 30
            assert reader.read(1, 100) == samples(1, 30)
            frames, n = reader.read_frames(7, 1 << 20)
            assert n == 24
            assert frames == writer.read_frames(7, 1 << 20)[0]


def test_sees_only_what_the_writer_made_durable(tmp_path: Path) -> None:
    journal = tmp_path / "timer.soup"
    with FileStore(journal, durability=Durability.TIMER) as writer:
        writer.append_many(samples(1, 5))
        writer.flush()
        writer.append_many(samples(6, 9))  # not flushed: not in the file
        with JournalReader(journal) as reader:
            assert reader.count == 5
            writer.flush()
            assert reader.refresh() == 9


def test_a_write_in_progress_is_left_out(tmp_path: Path) -> None:
    journal = tmp_path / "j.soup"
    with FileStore(journal) as writer:
        writer.append_many(samples(1, 3))
    with journal.open("ab") as f:
        f.write(b"\x00\x09Spart")  # a record whose end is not written yet
    size = journal.stat().st_size
    with JournalReader(journal) as reader:
        assert reader.count == 3
        assert reader.read(1, 10) == samples(1, 3)
        with journal.open("ab") as f:
            f.write(b"rest")  # the write completes
        assert reader.refresh() == 4
        assert reader.read(4, 1) == [b"partrest"]
    assert journal.stat().st_size == size + 4  # the reader wrote nothing


def test_verify_reports_a_sound_journal(tmp_path: Path) -> None:
    journal = tmp_path / "ok.soup"
    with FileStore(journal, session_id="S2", index_interval=2) as writer:
        writer.append_many(samples(1, 300))
    with JournalReader(journal, index_interval=2) as reader:
        report = reader.verify()
    assert report.ok
    assert report.messages == 300
    assert report.session_id == "S2"
    assert report.tail_bytes == 0
    assert report.tail_problem is None
    assert report.index == "ok"


def test_verify_reports_a_torn_tail_corruption_and_a_stale_index(tmp_path: Path) -> None:
    journal = tmp_path / "bad.soup"
    with FileStore(journal, index_interval=4) as writer:
        writer.append_many(samples(1, 20))
    with journal.open("ab") as f:
        f.write(b"\x00\x05Sab")
    with JournalReader(journal, index_interval=4) as reader:
        torn = reader.verify()
    assert not torn.ok
    assert not torn.corrupt
    assert torn.messages == 20
    assert torn.tail_bytes == 5
    assert torn.tail_problem == "a partial frame of 5 bytes"

    data = bytearray(journal.read_bytes())
    data[32 + 2] = ord("X")  # the type byte of message 1, with everything after it
    journal.write_bytes(bytes(data))
    with JournalReader(journal, index_interval=4) as reader:
        corrupt = reader.verify()
    assert corrupt.corrupt
    assert corrupt.messages == 0
    assert corrupt.tail_problem == "type byte b'X' instead of b'S'"
    assert corrupt.index == "stale"  # its entries do not match what the walk finds


def test_missing_or_foreign_files_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no journal"):
        JournalReader(tmp_path / "none.soup")
    (tmp_path / "x.soup").write_bytes(b"not a journal at all, no no no no")
    with pytest.raises(StoreError, match="not a soupbintcp journal"):
        JournalReader(tmp_path / "x.soup")
    with FileStore(tmp_path / "y.soup"):
        pass
    reader = JournalReader(tmp_path / "y.soup")
    reader.close()
    with pytest.raises(StoreError, match="closed"):
        reader.read(1, 1)
