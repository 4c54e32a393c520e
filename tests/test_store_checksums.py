"""The journal's checksums: flipped bytes are found, never served, never cut as a torn tail;
format 1 journals stay readable and are upgraded by their next writer."""

from __future__ import annotations

import errno
import logging
import os
import random
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from soupbintcp.lowlevel import SequencedDataPacket
from soupbintcp.store import (
    Durability,
    FileStore,
    JournalCorruptError,
    JournalReader,
    StoreError,
)
from soupbintcp.store._journal import HEADER_SIZE

BLOCK = 4096  # the spec of the side file: a CRC-32 per 4 KiB of records


def messages_of(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(1, 300)) for _ in range(n)]


def starts_of(messages: list[bytes]) -> list[int]:
    """Where each record starts, from the message sizes alone (2 + 1 + payload each)."""
    out, at = [], HEADER_SIZE
    for m in messages:
        out.append(at)
        at += 3 + len(m)
    return out


def first_damaged(messages: list[bytes], offset: int) -> int:
    """The sequence number of the first record that overlaps the block holding `offset`."""
    block_start = HEADER_SIZE + (offset - HEADER_SIZE) // BLOCK * BLOCK
    for n, (start, m) in enumerate(zip(starts_of(messages), messages, strict=True), 1):
        if start + 3 + len(m) > block_start:
            return n
    raise AssertionError("offset past the records")


def write(path: Path, messages: list[bytes], interval: int = 16) -> None:
    with FileStore(path, session_id="S1", index_interval=interval) as store:
        for i in range(0, len(messages), 7):  # appends of several sizes
            store.append_many(messages[i : i + 7])


def read_all(reader: JournalReader | FileStore) -> tuple[list[bytes], JournalCorruptError | None]:
    """Every message served until the first refusal, through `read_frames` as a server does."""
    out: list[bytes] = []
    sequence = 1
    while sequence <= reader.durable_count:
        try:
            frames, n = reader.read_frames(sequence, 2000)
        except JournalCorruptError as exc:
            return out, exc
        at = 0
        for _ in range(n):
            size = int.from_bytes(frames[at : at + 2], "big")
            assert frames[at + 2] == ord("S")
            out.append(frames[at + 3 : at + 2 + size])
            at += 2 + size
        assert at == len(frames)
        sequence += n
    return out, None


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**16), flips=st.lists(st.floats(0, 1), min_size=1, max_size=4))
# Records wholly before a damaged block, in a read whose walk breaks on the damage further on:
# they were withheld (the whole read failed) until the walk's good frames were handed out.
@example(seed=702, flips=[0.28397425198059173])
def test_flipped_bytes_are_found_and_never_served(
    tmp_path: Path, seed: int, flips: list[float]
) -> None:
    journal = tmp_path / f"flip{seed}.soup"
    for p in (journal, Path(f"{journal}.idx"), Path(f"{journal}.crc")):
        p.unlink(missing_ok=True)
    messages = messages_of(seed, 200)
    write(journal, messages)
    data = bytearray(journal.read_bytes())
    records = len(data) - HEADER_SIZE
    offsets = sorted({HEADER_SIZE + int(f * (records - 1)) for f in flips})
    for at in offsets:
        data[at] ^= 0xFF
    journal.write_bytes(bytes(data))
    damaged = first_damaged(messages, offsets[0])

    with JournalReader(journal, index_interval=16) as reader:
        report = reader.verify()
        assert not report.ok
        assert report.checksums == "bad"
        assert report.damage_message == damaged
        assert report.damage_offset == starts_of(messages)[damaged - 1]
        served, refused = read_all(reader)
    # Nothing corrupt is served: what is served is the journal's own, up to the damage.
    assert served == messages[: len(served)]
    assert len(served) <= damaged - 1
    if reader.count >= damaged:  # the structure let the reader see that far
        assert refused is not None
        assert refused.sequence <= damaged

    # A writer never cuts a record the checksums vouch for: it refuses, or opens with all.
    try:
        store = FileStore(journal, index_interval=16)
    except JournalCorruptError as exc:
        refused = exc
    else:
        with store:
            assert store.count == len(messages)
            assert store.recovered_bytes == 0
            served, refused = read_all(store)
            assert served == messages[: damaged - 1]
    # Opening checks the tail: it names the damage found there (maybe not the first); a
    # read names the first.
    assert refused is not None
    assert refused.sequence in {first_damaged(messages, at) for at in offsets}


def test_flip_near_the_end_is_refused_at_open_with_where(tmp_path: Path) -> None:
    journal = tmp_path / "end.soup"
    messages = messages_of(1, 500)
    write(journal, messages, interval=256)
    data = bytearray(journal.read_bytes())
    data[-40:-36] = bytes(b ^ 0x55 for b in data[-40:-36])  # 4 bytes near the end
    journal.write_bytes(bytes(data))
    damaged = first_damaged(messages, len(data) - 40)
    with pytest.raises(JournalCorruptError) as caught:
        FileStore(journal)
    assert caught.value.sequence == damaged
    assert caught.value.offset == starts_of(messages)[damaged - 1]
    assert str(journal) in str(caught.value)
    assert journal.stat().st_size == len(data)  # nothing cut


def test_a_corrupt_length_field_with_an_intact_index_is_never_served(tmp_path: Path) -> None:
    journal = tmp_path / "len.soup"
    messages = messages_of(2, 2000)
    write(journal, messages, interval=16)
    starts = starts_of(messages)
    data = bytearray(journal.read_bytes())
    data[starts[999] : starts[999] + 2] = b"\xff\xf0"  # message 1000 claims ~65 KB
    journal.write_bytes(bytes(data))
    with FileStore(journal, index_interval=16) as store:  # the tail checks out
        served, refused = read_all(store)
    assert refused is not None
    assert served == messages[: refused.sequence - 1]
    assert refused.sequence == first_damaged(messages, starts[999])


def test_a_format_1_journal_is_read_and_upgraded_by_its_next_writer(tmp_path: Path) -> None:
    journal = tmp_path / "old.soup"
    messages = messages_of(3, 300)
    header = bytearray(HEADER_SIZE)
    header[:8] = b"SBTCPJNL"
    header[8:10] = (1).to_bytes(2, "big")
    header[12:22] = b"        S1"
    header[22:30] = bytes(range(8))
    journal.write_bytes(bytes(header) + b"".join(SequencedDataPacket(m).encode() for m in messages))
    with JournalReader(journal) as reader:
        report = reader.verify()
        assert (report.version, report.checksums, report.messages) == (1, "none", 300)
        assert reader.read(1, 300) == messages
    assert not Path(f"{journal}.crc").exists()
    with FileStore(journal, session_id="S1") as store:
        assert store.count == 300
        store.append(b"new")
    assert journal.read_bytes()[8:10] == b"\x00\x02"
    with JournalReader(journal) as reader:
        report = reader.verify()
        assert (report.version, report.checksums, report.ok) == (2, "ok", True)
        assert reader.read(1, 301) == [*messages, b"new"]


def test_records_past_the_checksums_after_a_crash_are_checked_and_adopted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "crash.soup"
    messages = messages_of(4, 400)
    write(journal, messages[:100])
    side = Path(f"{journal}.crc")
    before = side.read_bytes()
    write(journal, messages[100:])
    side.write_bytes(before)  # the side file lags: the writer died before updating it
    with JournalReader(journal, index_interval=16) as reader:
        report = reader.verify()
        assert report.ok
        assert report.unchecked_bytes > 0
    with caplog.at_level(logging.WARNING, "soupbintcp.store"):
        store = FileStore(journal, index_interval=16)
    with store:
        assert store.count == 400
    assert "had no checksum yet" in caplog.text
    with JournalReader(journal, index_interval=16) as reader:
        report = reader.verify()
        assert report.ok
        assert report.unchecked_bytes == 0


def test_a_bad_side_file_of_another_journal_is_not_trusted(tmp_path: Path) -> None:
    a, b = tmp_path / "a.soup", tmp_path / "b.soup"
    write(a, messages_of(5, 50))
    write(b, messages_of(6, 50))
    Path(f"{a}.crc").write_bytes(Path(f"{b}.crc").read_bytes())
    with JournalReader(a) as reader:
        assert reader.verify().checksums == "missing"
    data = bytearray(a.read_bytes())
    data[8:10] = (9).to_bytes(2, "big")
    a.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="format version 9"):
        JournalReader(a)


def test_one_message_appends_are_checksummed_with_their_block_and_found(tmp_path: Path) -> None:
    journal = tmp_path / "single.soup"
    messages = messages_of(7, 3000)
    with FileStore(journal, index_interval=16) as store:
        for i, m in enumerate(messages, 1):
            store.append(m)
            if i % 500 == 0:  # reads between appends check what is not summed yet
                assert store.read(i - 10, 11) == messages[i - 11 : i]
        copy = tmp_path / "killed.soup"  # what a kill now leaves: the side file behind
        for suffix in ("", ".idx", ".crc"):
            Path(f"{copy}{suffix}").write_bytes(Path(f"{journal}{suffix}").read_bytes())
    with JournalReader(journal, index_interval=16) as reader:
        report = reader.verify()
        assert (report.ok, report.unchecked_bytes, report.messages) == (True, 0, 3000)
    with FileStore(copy, index_interval=16) as store:  # adopts what the side file lacked
        assert store.read(1, 3000) == messages
    data = bytearray(journal.read_bytes())
    at = len(data) - 100  # in the records of the last, small appends
    data[at] ^= 1
    journal.write_bytes(bytes(data))
    with JournalReader(journal, index_interval=16) as reader:
        assert reader.verify().damage_message == first_damaged(messages, at)


@pytest.mark.parametrize("inside", [1, 2, 3, 20], ids=lambda n: f"{n}-bytes-of-it-left")
def test_a_record_cut_at_the_end_of_a_block_is_torn_not_corrupt(
    tmp_path: Path, inside: int
) -> None:
    # The file cut exactly where a block ends, inside a record, its side file from before
    # the cut (a power cut can leave them so): the checksums cover the torn record's first
    # bytes, which match. It was refused as corruption; Hypothesis found it through a
    # gateway's cache (test_jetstream_recovery).
    journal = tmp_path / "cut.soup"
    block_end = HEADER_SIZE + 2 * BLOCK
    # A first message of p bytes, then records of 33: one starts `inside` bytes before the
    # end of block 1.
    p = next(p for p in range(1, 40) if (block_end - inside - HEADER_SIZE - 3 - p) % 33 == 0)
    messages = [b"p" * p] + [bytes([i % 251]) * 30 for i in range(1, 1000)]
    write(journal, messages)
    starts = starts_of(messages)
    held = starts.index(block_end - inside)  # messages wholly before the cut
    with open(journal, "r+b") as f:
        f.truncate(block_end)
    with JournalReader(journal, index_interval=16) as reader:
        report = reader.verify()
        assert report.checksums == "ok"
        assert report.damage_offset is None
        assert reader.count == held
    with FileStore(journal, index_interval=16) as store:
        assert store.count == held
        assert store.recovered_bytes == inside
        store.append_many(messages[held:])
    with FileStore(journal, index_interval=16) as store:
        assert store.read(1, len(messages)) == messages
    with JournalReader(journal, index_interval=16) as reader:
        assert reader.verify().ok


def side_file_by_hand(journal: Path) -> tuple[list[int], tuple[int, int, int]]:
    """What `<journal>.crc` must hold, from its spec and the journal's bytes: a CRC-32 per
    whole 4 KiB block of records, and (block, length, CRC) of the partial last one."""
    records = journal.read_bytes()[HEADER_SIZE:]
    whole = len(records) // BLOCK
    rest = records[whole * BLOCK :]
    sums = [zlib.crc32(records[k * BLOCK : (k + 1) * BLOCK]) for k in range(whole)]
    return sums, (whole, len(rest), zlib.crc32(rest) if rest else 0)


def side_file(journal: Path) -> tuple[list[int], tuple[int, int, int]]:
    data = Path(f"{journal}.crc").read_bytes()
    entries = data[40:]
    sums = [int.from_bytes(entries[i : i + 4], "little") for i in range(0, len(entries), 4)]
    tail = (
        int.from_bytes(data[24:32], "big"),
        int.from_bytes(data[32:36], "big"),
        int.from_bytes(data[36:40], "big"),
    )
    return sums, tail


class FailingOnce:
    """`os` for `store._file`, whose next `pwrite` to the journal fails (a full disk)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.armed = True

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def pwrite(self, fd: int, data: object, offset: int) -> int:
        if fd == self.fd and self.armed:
            self.armed = False
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        return os.pwrite(fd, data, offset)  # type: ignore[arg-type]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("one"), st.integers(1, 300)),
            st.tuples(st.just("many"), st.integers(1, 120)),
            st.tuples(st.just("flush"), st.booleans()),  # True: the flush's write fails once
        ),
        max_size=25,
    ),
    seed=st.integers(0, 2**16),
)
# A small flush (its bytes left to be read back with their block), then a flush of blocks:
# those must go on from the small flush's bytes; a failed flush, then its retry.
@example(steps=[("one", 30), ("flush", False), ("many", 100), ("flush", False)], seed=1)
@example(steps=[("many", 100), ("flush", True), ("one", 9), ("flush", True)], seed=2)
@example(steps=[("many", 100), ("flush", False), ("many", 100), ("flush", False)], seed=3)
def test_timer_flushes_failed_or_not_leave_the_checksums_of_what_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: list[tuple[str, int]], seed: int
) -> None:
    # After any TIMER appends, flushes and flushes whose write fails (a full disk), the side
    # file and every read must be those of the bytes actually written.
    import soupbintcp.store._file as file_module

    rng = random.Random(seed)
    journal = tmp_path / f"t{seed}-{len(steps)}.soup"
    for p in (journal, Path(f"{journal}.crc"), Path(f"{journal}.idx")):
        p.unlink(missing_ok=True)
    sent: list[bytes] = []
    with FileStore(journal, session_id="S1", durability=Durability.TIMER) as store:
        for kind, n in steps:
            if kind == "one":
                sent.append(rng.randbytes(n))
                store.append(sent[-1])
            elif kind == "many":
                batch = [rng.randbytes(rng.randint(1, 200)) for _ in range(n)]
                store.append_many(batch)
                sent += batch
            else:
                if n and store._pending:
                    failing = FailingOnce(store._wfd)
                    monkeypatch.setattr(file_module, "os", failing)
                    with pytest.raises(OSError, match="injected"):
                        store.flush()
                    monkeypatch.setattr(file_module, "os", os)
                    assert store.durable_count < store.count
                    served, refused = read_all(store)  # what is durable reads clean
                    assert refused is None
                    assert served == sent[: store.durable_count]
                store.flush()
                assert side_file(journal) == side_file_by_hand(journal)
                served, refused = read_all(store)
                assert refused is None
                assert served == sent
    assert side_file(journal) == side_file_by_hand(journal)
    with JournalReader(journal) as reader:
        assert reader.verify().ok
        assert read_all(reader) == (sent, None)
