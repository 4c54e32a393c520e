"""`FileStore`: the journal format, durability, crash recovery and the sparse index."""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import textwrap
from array import array
from pathlib import Path
from typing import Any

import pytest

import soupbintcp.store._frames as frames_module
import soupbintcp.store._recovery as recovery_module
from soupbintcp.lowlevel import PacketDecoder, Role, SequencedDataPacket
from soupbintcp.store import Durability, FileStore, JournalCorruptError, StoreError
from soupbintcp.store._file import HEADER_SIZE, IDX_HEADER_SIZE, MAGIC


def frames_of(messages: list[bytes]) -> bytes:
    return b"".join(SequencedDataPacket(m).encode() for m in messages)


def sample(i: int) -> bytes:
    return (b"%d:" % i) * (i % 13)


def samples(first: int, last: int) -> list[bytes]:
    return [sample(i) for i in range(first, last + 1)]


def offsets_of(messages: list[bytes], interval: int) -> list[int]:
    """Where messages 1, N+1, 2N+1, ... start in the journal."""
    out, at = [], HEADER_SIZE
    for i, m in enumerate(messages):
        if i % interval == 0:
            out.append(at)
        at += len(m) + 3
    return out


def index_entries(path: Path) -> list[int]:
    data = Path(str(path) + ".idx").read_bytes()
    entries = array("Q")
    entries.frombytes(data[IDX_HEADER_SIZE:])
    if sys.byteorder != "little":
        entries.byteswap()
    return list(entries)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "session.journal"


def write_journal(path: Path, messages: list[bytes], interval: int = 4) -> None:
    with FileStore(path, session_id="SESS1", index_interval=interval) as store:
        store.append_many(messages)


# --- format ------------------------------------------------------------------------------------


def test_file_is_header_then_wire_frames(journal: Path) -> None:
    messages = samples(1, 50)
    with FileStore(journal, session_id="SESS1") as store:
        store.append_many(messages[:20])
        for m in messages[20:30]:
            store.append(m)
        store.append_frames(frames_of(messages[30:]), 20)
    data = journal.read_bytes()
    assert data[:8] == MAGIC == b"SBTCPJNL"
    assert data[8:10] == b"\x00\x02"  # format 2: checksums beside it
    assert data[12:22] == b"     SESS1"
    assert len(data[22:30]) == 8  # journal id
    assert data[HEADER_SIZE:] == frames_of(messages)
    decoder = PacketDecoder(Role.SERVER)
    decoder.feed(data[HEADER_SIZE:])
    assert decoder.next_sequenced_payloads() == messages


def test_str_and_pathlike_paths(journal: Path) -> None:
    with FileStore(str(journal)) as store:
        assert store.path == str(journal)
        store.append(b"a")
    with FileStore(journal) as store:
        assert store.read(1, 1) == [b"a"]
        assert "count=1" in repr(store)
    assert "closed" in repr(store)
    assert store.closed


def test_no_session_id_recorded(journal: Path) -> None:
    with FileStore(journal) as store:
        assert store.session_id is None
    assert journal.read_bytes()[12:22] == b" " * 10


# --- reopen ------------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [1, 3, 256])
def test_reopen_preserves_everything(journal: Path, interval: int) -> None:
    messages = samples(1, 700)
    with FileStore(journal, session_id="SESS1", index_interval=interval) as store:
        store.append_many(messages[:300])
        for m in messages[300:400]:
            store.append(m)
        store.append_frames(frames_of(messages[400:]), 300)
    with FileStore(journal, index_interval=interval) as store:
        assert (store.count, store.durable_count) == (700, 700)
        assert store.session_id == "SESS1"
        assert store.recovered_bytes == 0
        assert store.read(1, 1000) == messages
        assert store.append(b"next") == 701
        assert store.append_many([b"a", b"b"]) == 702
    with FileStore(journal, index_interval=interval) as store:
        assert store.read(699, 10) == [*messages[698:], b"next", b"a", b"b"]
    assert index_entries(journal) == offsets_of([*messages, b"next", b"a", b"b"], interval)


def test_session_id_checked_on_open(journal: Path) -> None:
    write_journal(journal, [b"a"])
    with FileStore(journal, session_id="SESS1") as store:
        assert store.session_id == "SESS1"
    with FileStore(journal) as store:  # None: whatever the journal records
        assert store.session_id == "SESS1"
    with pytest.raises(StoreError, match="SESS2"):
        FileStore(journal, session_id="SESS2")
    with FileStore(journal) as store:  # the failed open left it usable
        assert store.read(1, 1) == [b"a"]


def test_session_id_requested_for_a_journal_without_one(journal: Path) -> None:
    FileStore(journal).close()
    with pytest.raises(StoreError):
        FileStore(journal, session_id="SESS1")


def test_create_false_needs_an_existing_journal(journal: Path) -> None:
    with pytest.raises(StoreError, match="no journal"):
        FileStore(journal, create=False)
    assert not journal.exists()
    FileStore(journal).close()
    FileStore(journal, create=False).close()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"SBTCPJ",
        b"not a journal at all, just some text file....",
        b"SBTCPJNL\x00\x02" + bytes(22),
    ],
)
def test_not_a_journal(journal: Path, content: bytes) -> None:
    journal.write_bytes(content)
    with pytest.raises(StoreError):
        FileStore(journal)
    assert journal.read_bytes() == content  # never clobbered


def test_one_writer_at_a_time(journal: Path) -> None:
    with FileStore(journal) as store:
        store.append(b"a")
        with pytest.raises(StoreError, match="elsewhere"):
            FileStore(journal)
        with FileStore(journal, readonly=True) as reader:  # readers do not lock
            assert reader.read(1, 5) == [b"a"]
    FileStore(journal).close()  # the lock went with the close


def test_readonly(journal: Path) -> None:
    with pytest.raises(StoreError):
        FileStore(journal, readonly=True)  # never creates
    write_journal(journal, samples(1, 9))
    with journal.open("ab") as f:
        f.write(b"\x00\x09Spart")
    size = journal.stat().st_size
    with FileStore(journal, readonly=True, index_interval=4) as store:
        assert store.count == 9
        assert store.recovered_bytes == 7
        assert store.read(1, 20) == samples(1, 9)
        with pytest.raises(StoreError, match="read-only"):
            store.append(b"x")
        store.flush()
    assert journal.stat().st_size == size  # nothing cut, nothing written


# --- torn tails --------------------------------------------------------------------------------

TORN_TAILS = {
    "partial length field": b"\x00",
    "length field only": b"\x00\x05",
    "header only": b"\x00\x05S",
    "partial payload": b"\x00\x05Sab",
    "partial big frame": b"\xff\xffS" + b"x" * 1000,
    "zero length": b"\x00\x00\x00\x00",
    "zero length, rest of a page": bytes(4093),
    "zero-filled megabyte": bytes(1 << 20),
    "wrong type byte": b"\x00\x03Uab",
    "wrong type byte, partial": b"\x00\x09Xab",
}


@pytest.mark.parametrize("tail", TORN_TAILS.values(), ids=TORN_TAILS.keys())
@pytest.mark.parametrize("count", [8, 9])  # the torn record would, or would not, be indexed
def test_torn_tail_is_cut(
    journal: Path, tail: bytes, count: int, caplog: pytest.LogCaptureFixture
) -> None:
    messages = samples(1, count)
    write_journal(journal, messages)
    good_size = journal.stat().st_size
    with journal.open("ab") as f:
        f.write(tail)
    with caplog.at_level(logging.WARNING, logger="soupbintcp.store"):
        store = FileStore(journal, index_interval=4)
    with store:
        assert store.recovered_bytes == len(tail)
        assert (store.count, store.durable_count) == (count, count)
        assert journal.stat().st_size == good_size
        assert store.read(1, 100) == messages
        assert store.append(b"after") == count + 1
    assert any(
        r.name == "soupbintcp.store"
        and r.levelno == logging.WARNING
        and str(good_size) in r.message
        for r in caplog.records
    )
    with FileStore(journal, index_interval=4) as store:
        assert store.recovered_bytes == 0
        assert store.read(1, 100) == [*messages, b"after"]
    assert index_entries(journal) == offsets_of([*messages, b"after"], 4)


def test_torn_tail_of_an_empty_journal(journal: Path) -> None:
    FileStore(journal).close()
    with journal.open("ab") as f:
        f.write(b"\x00\x07Sab")
    with FileStore(journal) as store:
        assert (store.count, store.recovered_bytes) == (0, 5)
        assert store.append(b"a") == 1


@pytest.mark.parametrize("after", [[b"y"], [b"y" * 60000, b"z" * 60000]])
@pytest.mark.parametrize("bad", [19, 20])  # message 19 or the last, 20
def test_corruption_before_more_data_is_refused(
    journal: Path, after: list[bytes], bad: int
) -> None:
    messages = samples(1, 20)
    write_journal(journal, messages)
    data = bytearray(journal.read_bytes())
    data[HEADER_SIZE + len(frames_of(messages[: bad - 1])) + 2] = ord("X")  # its type byte
    data += frames_of(after)  # real data after the bad record: it is not a torn tail
    journal.write_bytes(data)
    with pytest.raises(StoreError, match="corrupt"):
        FileStore(journal)
    assert journal.read_bytes() == data  # nothing thrown away


def test_bad_last_record_then_zeros_is_a_torn_tail(journal: Path) -> None:
    write_journal(journal, samples(1, 20))
    with journal.open("ab") as f:
        f.write(b"\x00\x04Xabc" + bytes(70000))
    with FileStore(journal) as store:
        assert (store.count, store.recovered_bytes) == (20, 70006)


# --- the sparse index --------------------------------------------------------------------------


def test_index_holds_every_nth_offset(journal: Path) -> None:
    messages = samples(1, 10)
    write_journal(journal, messages, interval=4)
    # Frames of 5, 7, 9, 11, 13, ... bytes from offset 32.
    assert index_entries(journal) == offsets_of(messages, 4) == [32, 64, 128]
    idx = Path(str(journal) + ".idx").read_bytes()
    assert idx[:8] == b"SBTCPIDX"
    assert int.from_bytes(idx[12:16], "big") == 4
    assert idx[16:24] == journal.read_bytes()[22:30]  # names the journal it indexes


def spy_scan(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record where each open starts scanning the journal."""
    starts: list[int] = []
    real = frames_module.scan

    def spy(fd: int, offset: int, *args: Any, **kwargs: Any) -> tuple[int, int, str | None]:
        starts.append(offset)
        return real(fd, offset, *args, **kwargs)

    monkeypatch.setattr(recovery_module, "scan", spy)
    return starts


def test_reopen_scans_only_the_tail(journal: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    messages = samples(1, 1000)
    write_journal(journal, messages, interval=16)
    starts = spy_scan(monkeypatch)
    with FileStore(journal, index_interval=16) as store:
        assert store.count == 1000
    assert starts == [offsets_of(messages, 16)[-1]]


def corrupt_bytes(path: Path) -> None:
    path.write_bytes(b"garbage")


def wrong_magic(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(data)


def shifted_entries(path: Path) -> None:
    # A plausible header, but every entry off by one byte.
    data = path.read_bytes()
    entries = array("Q")
    entries.frombytes(data[IDX_HEADER_SIZE:])
    path.write_bytes(data[:IDX_HEADER_SIZE] + array("Q", [e + 1 for e in entries]).tobytes())


def last_entry_wrong(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-8] + (int.from_bytes(data[-8:], "little") + 3).to_bytes(8, "little"))


def torn_last_entry(path: Path) -> None:
    with path.open("ab") as f:
        f.write(b"\x01\x02\x03")


def empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    "damage",
    [
        Path.unlink,
        corrupt_bytes,
        empty,
        wrong_magic,
        shifted_entries,
        last_entry_wrong,
        torn_last_entry,
    ],
)
def test_damaged_index_is_rebuilt(journal: Path, damage: Any) -> None:
    messages = samples(1, 300)
    write_journal(journal, messages, interval=8)
    damage(Path(str(journal) + ".idx"))
    with FileStore(journal, index_interval=8) as store:
        assert store.count == 300
        for seq in (1, 8, 9, 150, 297, 300):
            assert store.read(seq, 2) == messages[seq - 1 : seq + 1]
    assert index_entries(journal) == offsets_of(messages, 8)


def test_index_of_another_journal_is_ignored(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_journal(a, samples(1, 100), interval=4)
    write_journal(b, samples(1, 100), interval=4)  # same frames, different journal id
    Path(str(a) + ".idx").write_bytes(
        Path(str(a) + ".idx").read_bytes()[:16]
        + Path(str(b) + ".idx").read_bytes()[16:24]
        + Path(str(a) + ".idx").read_bytes()[24:]
    )
    with FileStore(a, index_interval=4) as store:
        assert store.count == 100
    assert Path(str(a) + ".idx").read_bytes()[16:24] == a.read_bytes()[22:30]


def test_index_with_another_interval_is_rebuilt(
    journal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = samples(1, 100)
    write_journal(journal, messages, interval=4)
    starts = spy_scan(monkeypatch)
    with FileStore(journal, index_interval=10) as store:
        assert store.read(1, 200) == messages
    assert starts == [HEADER_SIZE]
    assert index_entries(journal) == offsets_of(messages, 10)


def test_index_ahead_of_a_truncated_journal(journal: Path) -> None:
    # The journal lost its tail (say, a power cut without fsync) but its index did not.
    messages = samples(1, 100)
    write_journal(journal, messages, interval=4)
    keep = 61
    size = HEADER_SIZE + sum(len(m) + 3 for m in messages[:keep])
    os.truncate(journal, size)
    with FileStore(journal, index_interval=4) as store:
        assert (store.count, store.recovered_bytes) == (keep, 0)
        assert store.read(1, 200) == messages[:keep]
        store.append_many([b"new"] * 10)
    assert index_entries(journal) == offsets_of([*messages[:keep], *[b"new"] * 10], 4)


def test_index_that_cannot_be_written(journal: Path, caplog: pytest.LogCaptureFixture) -> None:
    Path(str(journal) + ".idx").mkdir()  # in the way
    with caplog.at_level(logging.WARNING, logger="soupbintcp.store"):
        with FileStore(journal, index_interval=4) as store:
            store.append_many(samples(1, 500))
        with FileStore(journal, index_interval=4) as store:
            assert store.read(1, 1000) == samples(1, 500)
    assert "cannot write its index" in caplog.text


def test_index_update_failure_does_not_fail_appends(
    journal: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with FileStore(journal, index_interval=2) as store:
        store.append_many(samples(1, 10))
        store.flush()  # 5 entries in the index file

        def failing(fd: int, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", failing)  # the index file's writes; not the journal's
        with caplog.at_level(logging.WARNING, logger="soupbintcp.store"):
            assert store.append_many(samples(11, 1000)) == 11
            store.flush()
        monkeypatch.undo()
    assert "index not updated" in caplog.text
    assert len(index_entries(journal)) == 5
    with FileStore(journal, index_interval=2) as store:
        assert store.read(1, 2000) == samples(1, 1000)
    assert index_entries(journal) == offsets_of(samples(1, 1000), 2)


def test_unclosed_store_is_flushed_when_collected(journal: Path) -> None:
    store = FileStore(journal, durability=Durability.TIMER)
    store.append(b"a")
    with pytest.warns(ResourceWarning, match="unclosed"):
        del store  # the last reference: collected at once
    with FileStore(journal) as store:
        assert store.read(1, 5) == [b"a"]


def test_index_is_written_as_the_journal_grows(journal: Path) -> None:
    with FileStore(journal, index_interval=2) as store:
        store.append_many(samples(1, 1000))
        # Batched: a crash would only lengthen the tail scan at the next open.
        assert len(index_entries(journal)) == 500
        store.append_many(samples(1001, 1010))
        assert len(index_entries(journal)) == 500
        store.flush()
        assert len(index_entries(journal)) == 505


# --- seeking -----------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [1, 2, 5, 256])
def test_read_frames_from_every_sequence(journal: Path, interval: int) -> None:
    messages = [bytes([i % 256]) * ((i * 37) % 700) for i in range(1, 601)]
    write_journal(journal, messages, interval=interval)
    with FileStore(journal, index_interval=interval) as store:
        for sequence in range(1, 601):
            for max_bytes in (0, 200, 2000):
                frames, n = store.read_frames(sequence, max_bytes)
                assert n >= 1
                assert n == 1 or len(frames) <= max_bytes
                assert frames == frames_of(messages[sequence - 1 : sequence - 1 + n])


def test_read_frames_ends_on_an_indexed_message(journal: Path) -> None:
    write_journal(journal, [b"x" * 10] * 40, interval=4)  # 13-byte frames
    with FileStore(journal, index_interval=4) as store:
        # 7 frames fit in 100 bytes; it stops before message 5 so the next read seeks for free.
        assert store.read_frames(1, 100)[1] == 4
        assert store.read_frames(2, 100)[1] == 7  # up to message 9
        assert store.read_frames(5, 40)[1] == 3  # no indexed message in reach: scanned
        assert store.read_frames(37, 1000)[1] == 4  # the end of the journal


# --- durability --------------------------------------------------------------------------------


def test_timer_durable_count_moves_at_flush(journal: Path) -> None:
    with FileStore(journal, durability=Durability.TIMER) as store:
        assert store.durability is Durability.TIMER
        assert store.append(b"a") == 1
        assert store.append_many([b"b", b"c"]) == 2
        assert (store.count, store.durable_count) == (3, 0)
        assert store.read_frames(1, 100) == (b"", 0)
        assert store.read(1, 3) == []
        assert journal.stat().st_size == HEADER_SIZE  # nothing written yet
        store.flush()
        assert (store.count, store.durable_count) == (3, 3)
        assert journal.stat().st_size == HEADER_SIZE + 3 * 4
        store.append(b"d")
        assert store.read(1, 10) == [b"a", b"b", b"c"]
        assert store.read_frames(4, 100) == (b"", 0)


def test_timer_close_flushes(journal: Path) -> None:
    with FileStore(journal, durability=Durability.TIMER) as store:
        store.append_many([b"a", b"b"])
    with FileStore(journal) as store:
        assert store.read(1, 5) == [b"a", b"b"]


def test_timer_buffer_is_bounded(journal: Path) -> None:
    with FileStore(journal, durability=Durability.TIMER) as store:
        store.append_many([b"x" * 60000] * 10)  # 600 kB buffered
        assert store.durable_count == 0
        store.append_many([b"y" * 60000] * 10)  # past 1 MiB: the first batch is written
        assert (store.count, store.durable_count) == (20, 10)


def test_publish_writes_every_call(journal: Path) -> None:
    with FileStore(journal) as store:
        store.append(b"a")
        assert journal.stat().st_size == HEADER_SIZE + 4
        store.append_frames(frames_of([b"b", b"c"]), 2)
        assert journal.stat().st_size == HEADER_SIZE + 12
        assert store.durable_count == 3


def test_fsync(journal: Path) -> None:
    for durability in Durability:
        with FileStore(journal, fsync=True, durability=durability) as store:
            store.append(b"a")
            store.flush()
    with FileStore(journal) as store:
        assert store.read(1, 5) == [b"a", b"a"]


def test_failed_write_appends_nothing(journal: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FileStore(journal, index_interval=2) as store:
        store.append_many(samples(1, 5))
        real_pwrite = os.pwrite

        def disk_full(fd: int, data: Any, offset: int) -> int:
            real_pwrite(fd, bytes(data[:5]), offset)  # a partial write, then the error
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "pwrite", disk_full)
        with pytest.raises(OSError, match="space"):
            store.append_many(samples(6, 20))
        assert (store.count, store.durable_count) == (5, 5)
        assert journal.stat().st_size == HEADER_SIZE + len(frames_of(samples(1, 5)))
        monkeypatch.setattr(os, "pwrite", real_pwrite)
        assert store.append_many(samples(6, 20)) == 6
    with FileStore(journal, index_interval=2) as store:
        assert store.read(1, 100) == samples(1, 20)
    assert index_entries(journal) == offsets_of(samples(1, 20), 2)


def test_failed_timer_flush_keeps_the_buffer(
    journal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FileStore(journal, durability=Durability.TIMER) as store:
        store.append_many([b"a", b"b"])
        real_pwrite = os.pwrite

        def failing(fd: int, data: Any, offset: int) -> int:
            raise OSError(errno.EIO, "I/O error")

        monkeypatch.setattr(os, "pwrite", failing)
        with pytest.raises(OSError, match="I/O"):
            store.flush()
        assert (store.count, store.durable_count) == (2, 0)
        monkeypatch.setattr(os, "pwrite", real_pwrite)
        store.flush()
        assert store.durable_count == 2
    with FileStore(journal) as store:
        assert store.read(1, 5) == [b"a", b"b"]


# --- crashes -----------------------------------------------------------------------------------


def run_in_child(body: Any) -> None:
    """Run `body` in a forked child that dies with os._exit, as a crash: no close, no flush.

    `body` returns what it opened so that it stays referenced until the child dies: a store
    collected on return would flush, which a crash never does."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            keep = body()  # noqa: F841 - alive until _exit
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0


def test_crash_loses_only_unflushed_timer_messages(journal: Path) -> None:
    def body() -> FileStore:
        store = FileStore(journal, durability=Durability.TIMER, index_interval=4)
        store.append_many(samples(1, 10))
        store.flush()
        store.append_many(samples(11, 15))  # never flushed: no client could have seen them
        return store

    run_in_child(body)
    with FileStore(journal, index_interval=4) as store:
        assert (store.count, store.recovered_bytes) == (10, 0)
        assert store.read(1, 20) == samples(1, 10)


def test_crash_keeps_every_published_message(journal: Path) -> None:
    def body() -> None:
        store = FileStore(journal, index_interval=4)
        store.append_many(samples(1, 999))
        store.append(sample(1000))

    run_in_child(body)
    with FileStore(journal, index_interval=4) as store:
        assert store.count == 1000
        assert store.read(1, 2000) == samples(1, 1000)


@pytest.mark.parametrize("durability", Durability)
def test_crash_in_the_middle_of_a_write(journal: Path, durability: Durability) -> None:
    batch = samples(101, 200)
    cut = len(frames_of(batch[:40])) + 5  # 40 whole frames and 5 bytes of the 41st

    def body() -> None:
        store = FileStore(journal, durability=durability, index_interval=4)
        store.append_many(samples(1, 100))
        store.flush()
        real_pwrite = os.pwrite

        def dies_midway(fd: int, data: Any, offset: int) -> int:
            real_pwrite(fd, bytes(data[:cut]), offset)
            os._exit(0)

        os.pwrite = dies_midway
        store.append_many(batch)
        store.flush()

    run_in_child(body)
    with FileStore(journal, index_interval=4) as store:
        # The whole frames of the cut batch are kept: append_many never returned, so no client
        # was sent them and their numbers are still free to name them.
        assert (store.count, store.recovered_bytes) == (140, 5)
        assert store.read(1, 200) == samples(1, 140)
        assert store.append(b"next") == 141
    with FileStore(journal, index_interval=4) as store:
        assert store.read(140, 5) == [sample(140), b"next"]
    assert index_entries(journal) == offsets_of([*samples(1, 140), b"next"], 4)


_WRITER = textwrap.dedent(
    """
    import sys
    from soupbintcp.store import FileStore

    def sample(i):
        return (b"%d:" % i) * (i % 97)

    store = FileStore(sys.argv[1], index_interval=64)
    n = store.count
    while True:
        batch = [sample(i) for i in range(n + 1, n + 1 + (n % 3000) + 1)]
        store.append_many(batch)
        n += len(batch)
        print(store.durable_count, flush=True)
    """
)


@pytest.mark.parametrize("reported", [1, 30_000, 60_000])
def test_sigkill_mid_append_leaves_a_consistent_journal(journal: Path, reported: int) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(journal)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    durable = 0
    try:
        for line in child.stdout:
            durable = int(line)
            if durable >= reported:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert durable >= reported
    with FileStore(journal, index_interval=64) as store:
        # Every message the writer reported durable is there, under its own number.
        assert store.count >= durable
        assert store.read(1, store.count) == [
            (b"%d:" % i) * (i % 97) for i in range(1, store.count + 1)
        ]
        n = store.count
        assert store.append(b"after") == n + 1


def test_a_corrupt_record_between_index_entries_is_a_store_error(journal: Path) -> None:
    messages = samples(1, 20)
    write_journal(journal, messages, interval=4)
    data = bytearray(journal.read_bytes())
    at = HEADER_SIZE + len(frames_of(messages[:1]))  # message 2: the index does not name it
    data[at : at + 2] = b"\xff\xff"
    journal.write_bytes(bytes(data))
    # The tail checked at open shares a checksum block with message 2: caught there.
    with pytest.raises(JournalCorruptError, match="from message 1 at offset 32") as caught:
        FileStore(journal, index_interval=4)
    assert (caught.value.sequence, caught.value.offset) == (1, HEADER_SIZE)
    # Without checksums (format 1 kept none) it is the structure: a seek to message 4
    # hops over message 2.
    Path(f"{journal}.crc").unlink()
    with (
        FileStore(journal, index_interval=4, readonly=True) as store,
        pytest.raises(StoreError, match="corrupt"),
    ):
        store.read_frames(4, 1 << 20)
