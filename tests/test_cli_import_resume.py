"""An interrupted import is resumed (issue 19, point 5): `journal import` killed half-way,
run again, goes on after what the journal holds, once that is checked to be the file's
first messages; a journal that is not is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from soupbintcp.store import FileStore, JournalReader, iter_binaryfile

CLI = [sys.executable, "-m", "soupbintcp"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("SOUPBINTCP_")}


def binaryfile(path: Path, n: int) -> None:
    with path.open("wb") as f:
        for start in range(0, n, 100_000):
            f.write(
                b"".join(
                    len(m).to_bytes(2, "big") + m
                    for m in (b"msg%09d" % i for i in range(start, min(n, start + 100_000)))
                )
            )


def test_an_import_killed_half_way_is_resumed_by_running_it_again(tmp_path: Path) -> None:
    source = tmp_path / "day.bin"
    total = 3_000_000
    binaryfile(source, total)
    journal = tmp_path / "day.soup"
    proc = subprocess.Popen(
        [*CLI, "journal", "import", str(source), str(journal)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=ENV,
    )
    held = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not held:
        if journal.exists():  # never without its header: it is linked into place whole
            with JournalReader(journal) as reader:
                held = reader.count
        time.sleep(0.005)
    assert proc.poll() is None, "the import ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with JournalReader(journal) as reader:
        half = reader.count
    assert 0 < half < total

    again = subprocess.run(
        [*CLI, "journal", "import", str(source), str(journal)],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert f"holds {half:,} message" in again.stderr
    assert f"imported {total - half:,} messages" in again.stderr
    with JournalReader(journal) as reader:
        assert reader.verify().ok
        assert reader.count == total
        assert reader.read(1, 5) == [b"msg%09d" % i for i in range(5)]
        assert reader.read(half - 1, 3) == [b"msg%09d" % i for i in range(half - 2, half + 1)]
        assert reader.read(total, 1) == [b"msg%09d" % (total - 1)]


def test_a_journal_that_is_not_the_files_beginning_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "small.bin"
    binaryfile(source, 100)
    journal = tmp_path / "other.soup"
    with FileStore(journal) as store:
        store.append_many([b"msg%09d" % i for i in range(10)] + [b"not from the file"])
    out = subprocess.run(
        [*CLI, "journal", "import", str(source), str(journal)],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        check=False,
    )
    assert out.returncode == 1
    assert "message 11 in the store differs from the file's" in out.stderr
    with JournalReader(journal) as reader:
        assert reader.count == 11  # nothing appended
    assert list(iter_binaryfile(source))[:1] == [b"msg000000000"]
