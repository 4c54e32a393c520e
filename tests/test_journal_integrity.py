"""A damaged journal is never served and always reported: the server stops the replay at the
bad record with one ERROR line and a metric; `journal verify` and `journal info` say where."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from soupbintcp import serve
from soupbintcp.store import FileStore

from .server_support import CREDENTIALS, SESSION, RawClient

BLOCK = 4096
HEADER = 32
CLI = [sys.executable, "-m", "soupbintcp"]


def message(i: int) -> bytes:
    return b"m%06d:" % i + b"x" * (i % 37)


def starts(n: int) -> list[int]:
    """Record offsets from the sizes alone: 32-byte header, then 2 + 1 + payload each."""
    out, at = [], HEADER
    for i in range(1, n + 1):
        out.append(at)
        at += 3 + len(message(i))
    return out


def first_in_block(n: int, offset: int) -> int:
    """The sequence number of the first record reaching into the block holding `offset`."""
    block = HEADER + (offset - HEADER) // BLOCK * BLOCK
    for seq, at in enumerate(starts(n), 1):
        if at + 3 + len(message(seq)) > block:
            return seq
    raise AssertionError


def make(path: Path, n: int) -> None:
    with FileStore(path, session_id=SESSION) as store:
        store.append_many([message(i) for i in range(1, n + 1)])


async def test_a_corrupt_length_field_stops_the_replay_with_one_error_and_a_metric(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "mp.soup"
    n = 3000
    make(journal, n)
    bad = starts(n)[1499]  # message 1500's length field: the index stays intact
    data = bytearray(journal.read_bytes())
    data[bad : bad + 2] = b"\xff\xf0"
    journal.write_bytes(bytes(data))
    damaged = first_in_block(n, bad)

    store = FileStore(journal)  # the tail checks out: the server starts
    caplog.set_level(logging.INFO, "soupbintcp")
    async with serve(
        ("127.0.0.1", 0), store=store, session_id=SESSION, credentials=CREDENTIALS
    ) as server:
        for _ in range(2):  # a second client meets the same damage
            client = await RawClient.connect(server.address)
            kind, _ = await client.login(sequence=1)
            assert kind == b"A"
            got = await client.rest()
            client.close()
            assert [k for k, _ in got] == [b"S"] * (damaged - 1)  # no End of Session
            assert [body for _, body in got] == [message(i) for i in range(1, damaged)]
        status = server.status()
        assert [s.corrupt_from for s in status.streams] == [damaged]
        assert status.stats.disconnects["journal_corrupt"] == 2
    store.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    line = errors[0].getMessage()
    assert str(journal) in line
    assert f"message {damaged:,}" in line
    assert f"offset {starts(n)[damaged - 1]:,}" in line


async def test_the_check_ahead_sets_the_corrupt_from_gauge_before_any_replay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "mp.soup"
    n = 3000
    make(journal, n)
    data = bytearray(journal.read_bytes())
    bad = len(data) // 2  # a flipped byte mid-journal: the open does not look there
    data[bad] ^= 0x01
    journal.write_bytes(bytes(data))
    damaged = first_in_block(n, bad)

    store = FileStore(journal)
    caplog.set_level(logging.INFO, "soupbintcp")
    async with serve(
        ("127.0.0.1", 0), store=store, session_id=SESSION, credentials=CREDENTIALS
    ) as server:
        check = store._ahead
        assert check is not None
        check.join(30)
        assert store.corruption is not None
        assert store.corruption.sequence == damaged
        assert store.corruption.offset == starts(n)[damaged - 1]
        # No client logged in, no replay reached it: the gauge shows it all the same.
        assert [s.corrupt_from for s in server.status().streams] == [damaged]
        # A client that then reaches it is refused there, and the gauge stays where it was.
        client = await RawClient.connect(server.address)
        kind, _ = await client.login(sequence=1)
        assert kind == b"A"
        got = await client.rest()
        client.close()
        assert [body for _, body in got] == [message(i) for i in range(1, damaged)]
        assert [s.corrupt_from for s in server.status().streams] == [damaged]
    store.close()
    warnings = [r.getMessage() for r in caplog.records if "check ahead" in r.getMessage()]
    assert len(warnings) == 1
    assert f"message {damaged:,} at offset {starts(n)[damaged - 1]:,}" in warnings[0]


def test_verify_and_info_say_where_flipped_bytes_start(tmp_path: Path) -> None:
    journal = tmp_path / "flip.soup"
    n = 20000
    make(journal, n)
    data = bytearray(journal.read_bytes())
    middle, end = len(data) // 2, len(data) - 60
    for at in (middle, middle + 1, end, end + 1):  # 4 bytes: 2 mid-journal, 2 near the end
        data[at] ^= 0x5A
    journal.write_bytes(bytes(data))
    damaged = first_in_block(n, middle)
    where = f"message {damaged:,} at offset {starts(n)[damaged - 1]:,}"

    out = subprocess.run(
        [*CLI, "journal", "verify", str(journal)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"CORRUPT from {where}" in out.stdout
    out = subprocess.run(
        [*CLI, "journal", "info", str(journal)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert f"BAD: damage starts at message {damaged:,}" in out.stdout
    assert "session      'SESSION1', not ended" in out.stdout
    # A writer refuses the journal rather than cut or serve a record that fails its check.
    out = subprocess.run(
        [*CLI, "serve", "--store", str(journal), "--no-auth", "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert "corrupt from message" in out.stderr
    assert journal.read_bytes() == bytes(data)


def test_a_served_and_ended_journal_says_so(tmp_path: Path) -> None:
    journal = tmp_path / "ended.soup"
    make(journal, 10)
    with FileStore(journal) as store:
        store.end_session()
    out = subprocess.run(
        [*CLI, "journal", "info", str(journal)], capture_output=True, text=True, check=False
    )
    assert "session      'SESSION1', ended (End of Session sent)" in out.stdout
    assert "checksums    ok" in out.stdout
