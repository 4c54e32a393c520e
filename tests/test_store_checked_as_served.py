"""A read checks the bytes it serves: the whole checksum blocks inside what a read hands out
are checked in that buffer, not read from the file a second time. So the bytes sent are the
bytes checked, and a replay's first read (before the check ahead got there) copies the
journal once. Only the blocks at a read's edges are read again."""

from __future__ import annotations

import os
import random
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import soupbintcp.store._ahead as ahead
import soupbintcp.store._checksums as checksums_module
from soupbintcp.store import FileStore
from soupbintcp.store._checksums import Checksums
from soupbintcp.store._journal import HEADER_SIZE, read_header

from .test_store_checksums import messages_of, write

BLOCK = 4096  # the side file's block, as its spec says
CHECKSUMS_FILE = checksums_module.__file__


def test_a_first_read_checks_the_served_bytes_without_reading_them_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "j.soup"
    messages = messages_of(11, 4000)  # about 150 blocks
    write(journal, messages)
    size = journal.stat().st_size
    # Hold the check ahead after its first block: every read then checks in line.
    release = threading.Event()
    monkeypatch.setattr(ahead, "STEP", 1)
    monkeypatch.setattr(ahead, "pause", lambda: release.wait(30))
    checked_from_file = 0
    real_pread = os.pread

    def pread(fd: int, n: int, at: int) -> bytes:
        nonlocal checked_from_file
        data = real_pread(fd, n, at)
        if sys._getframe(1).f_code.co_filename == CHECKSUMS_FILE:
            checked_from_file += len(data)
        return data

    with FileStore(journal, index_interval=16) as store:
        try:
            monkeypatch.setattr(os, "pread", pread)
            # Reads of about 1 MiB, as a server's replay makes them.
            served: list[bytes] = []
            sequence = 1
            while sequence <= store.durable_count:
                frames, n = store.read_frames(sequence, 1 << 20)
                at = 0
                for _ in range(n):
                    length = int.from_bytes(frames[at : at + 2], "big")
                    served.append(frames[at + 3 : at + 2 + length])
                    at += 2 + length
                sequence += n
            # The read marked what it checked good (the check ahead is still held).
            sums = store._sums
            assert sums is not None
            assert all(sums.known_good(k) for k in range(len(sums.sums)))
        finally:
            monkeypatch.setattr(os, "pread", real_pread)
            release.set()  # before the close, which waits for the check ahead
    assert served == messages
    # The edges of each read (its first and last blocks), not the journal a second time.
    assert checked_from_file <= 4 * BLOCK * (size // (1 << 20) + 1), checked_from_file


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**16),
    flip=st.one_of(st.none(), st.floats(0, 1)),
    window=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    served=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
def test_checking_in_the_served_buffer_finds_what_the_file_check_finds(
    tmp_path: Path,
    seed: int,
    flip: float | None,
    window: tuple[float, float],
    served: tuple[float, float],
) -> None:
    journal = tmp_path / f"j{seed}.soup"
    for p in (journal, Path(f"{journal}.idx"), Path(f"{journal}.crc")):
        p.unlink(missing_ok=True)
    write(journal, messages_of(seed, random.Random(seed).randint(1, 600)))
    data = bytearray(journal.read_bytes())
    if flip is not None:
        data[HEADER_SIZE + int(flip * (len(data) - HEADER_SIZE - 1))] ^= 0x40
        journal.write_bytes(bytes(data))
    size = len(data)
    start, end = sorted(HEADER_SIZE + int(f * (size - HEADER_SIZE)) for f in window)
    end = max(end, start + 1)
    # What a read serves lies inside [start, end), as `read_frames`'s buffer does.
    lo, hi = sorted(start + int(f * (end - start)) for f in served)
    fd = os.open(journal, os.O_RDONLY)
    try:
        journal_id = read_header(fd, str(journal)).journal_id
        by_file = Checksums.load(str(journal), journal_id)
        by_buffer = Checksums.load(str(journal), journal_id)
        assert by_file is not None
        assert by_buffer is not None
        expected = by_file.first_bad(fd, start, end)
        assert by_buffer.first_bad(fd, start, end, bytes(data[lo:hi]), lo) == expected
        # What it marked good is good.
        for k in range(len(by_buffer.sums)):
            if by_buffer.known_good(k):
                block = HEADER_SIZE + k * BLOCK
                assert by_file.first_bad(fd, block, block + BLOCK) is None
    finally:
        os.close(fd)
