"""The check ahead: a thread that checks a journal's blocks from its open on. What it finds
bad is reported and never served; closing the store stops it; a replay that gets ahead of it
checks for itself, so racing it never sends a bad block; its own errors never escape."""

from __future__ import annotations

import logging
import threading
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import soupbintcp.store._ahead as ahead
from soupbintcp.store import FileStore
from soupbintcp.store._checksums import Checksums
from soupbintcp.store._crc import crc32
from soupbintcp.store._journal import HEADER_SIZE

from .test_store_checksums import first_damaged, messages_of, read_all, starts_of, write

BLOCK = 4096  # the side file's block, as its spec says


def damaged_journal(tmp_path: Path, block: int) -> tuple[Path, list[bytes], int]:
    """A journal of 2,000 messages (about 80 blocks) with a byte flipped in `block`."""
    journal = tmp_path / "j.soup"
    messages = messages_of(7, 2000)
    write(journal, messages)
    data = bytearray(journal.read_bytes())
    at = HEADER_SIZE + block * BLOCK + 1000
    assert at < len(data) - BLOCK
    data[at] ^= 0x10
    journal.write_bytes(bytes(data))
    return journal, messages, first_damaged(messages, at)


def test_damage_found_ahead_is_reported_and_never_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal, messages, damaged = damaged_journal(tmp_path, 40)
    caplog.set_level(logging.WARNING, "soupbintcp.store")
    with FileStore(journal, index_interval=16) as store:
        check = store._ahead
        assert check is not None
        check.join(30)
        assert check.bad == HEADER_SIZE + 40 * BLOCK
        sums = store._sums
        assert sums is not None
        # Every other block was found good, and only those.
        assert [k for k in range(len(sums.sums)) if not sums.known_good(k)] == [40]
        served, refused = read_all(store)
    assert served == messages[: damaged - 1]
    assert refused is not None
    assert refused.sequence == damaged
    lines = [r.getMessage() for r in caplog.records if "check ahead" in r.getMessage()]
    assert len(lines) == 1
    assert str(journal) in lines[0]
    assert f"message {damaged:,} at offset {starts_of(messages)[damaged - 1]:,}" in lines[0]


def test_close_stops_the_check_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = tmp_path / "j.soup"
    write(journal, messages_of(3, 2000))
    monkeypatch.setattr(ahead, "STEP", 1)
    started = threading.Event()

    def slow() -> None:
        started.set()
        threading.Event().wait(0.05)  # about 80 steps: 4 s unless stopped

    monkeypatch.setattr(ahead, "pause", slow)
    store = FileStore(journal, index_interval=16)
    check = store._ahead
    assert check is not None
    assert started.wait(10)
    store.close()
    assert not check.running
    assert check.finished is None  # stopped, not done
    sums = store._sums
    assert sums is not None
    assert sum(sums.known_good(k) for k in range(len(sums.sums))) < len(sums.sums) // 2


@pytest.mark.parametrize("block", [2, 60], ids=["damage-checked-ahead", "damage-ahead-of-it"])
def test_a_replay_racing_the_check_ahead_never_sends_a_bad_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    journal, messages, damaged = damaged_journal(tmp_path, block)
    monkeypatch.setattr(ahead, "STEP", 8)
    held, go = threading.Event(), threading.Event()

    def hold() -> None:  # after its first step (blocks 0 to 7), until the replay is done
        held.set()
        go.wait(30)

    monkeypatch.setattr(ahead, "pause", hold)
    store = FileStore(journal, index_interval=16)
    try:
        assert held.wait(10)
        served, refused = read_all(store)  # from message 1, past where the check ahead is
        assert served == messages[: damaged - 1]
        assert refused is not None
        assert refused.sequence == damaged
    finally:
        go.set()
    check = store._ahead
    assert check is not None
    check.join(30)
    assert check.bad == HEADER_SIZE + block * BLOCK
    served, refused = read_all(store)  # and again, every other block now known good
    store.close()
    assert served == messages[: damaged - 1]
    assert refused is not None
    assert refused.sequence == damaged


def test_an_error_in_the_check_ahead_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    journal, messages, damaged = damaged_journal(tmp_path, 30)

    def failing(self: Checksums, fd: int, first: int, upto: int) -> list[int]:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Checksums, "check_blocks", failing)
    escaped: list[object] = []
    monkeypatch.setattr(threading, "excepthook", escaped.append)
    caplog.set_level(logging.WARNING, "soupbintcp.store")
    with FileStore(journal, index_interval=16) as store:
        check = store._ahead
        assert check is not None
        check.join(30)
        served, refused = read_all(store)  # the reads check for themselves
    assert escaped == []
    assert any("checking ahead stopped" in r.getMessage() for r in caplog.records)
    assert served == messages[: damaged - 1]
    assert refused is not None
    assert refused.sequence == damaged


@given(data=st.binary(max_size=20_000), start=st.integers(0, 2**32 - 1))
def test_the_checksum_is_zlibs_crc32(data: bytes, start: int) -> None:
    # Side files stay readable whichever library wrote them.
    assert crc32(data, start) == zlib.crc32(data, start)


def test_damage_found_ahead_is_named_by_its_wire_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "late.soup"
    messages = messages_of(9, 1000)
    with FileStore(journal, first_sequence=5001, index_interval=16) as store:
        store.append_many(messages)
    data = bytearray(journal.read_bytes())
    at = HEADER_SIZE + 10 * BLOCK + 123
    data[at] ^= 0x01
    journal.write_bytes(bytes(data))
    # Records start 8 bytes later in format 3 (the first sequence number comes first).
    starts = [s + 8 for s in starts_of(messages)]
    block = HEADER_SIZE + 10 * BLOCK
    ends = [s + 3 + len(m) for s, m in zip(starts, messages, strict=True)]
    damaged = next(n for n, end in enumerate(ends, 1) if end > block)
    caplog.set_level(logging.WARNING, "soupbintcp.store")
    with FileStore(journal, index_interval=16) as store:
        check = store._ahead
        assert check is not None
        check.join(30)
    lines = [r.getMessage() for r in caplog.records if "check ahead" in r.getMessage()]
    assert len(lines) == 1
    assert f"message {5000 + damaged:,} at offset {starts[damaged - 1]:,}" in lines[0]
