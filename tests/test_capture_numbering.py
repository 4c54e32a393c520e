"""A capture that joined a session late, or lost packets in the middle, imports into
journals numbered as on the wire: `journal dump`, `journal info`, `serve` and a client's
replay show the wire numbers, and each unbroken piece can be imported into its own journal.

One capture is made with tcpdump on loopback of the project's own server and a client that
logs in at message 2,500; the other is a pcap written here, with a gap."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import soupbintcp
from soupbintcp.capture import CaptureTimes, times_path
from soupbintcp.store import FileStore, JournalReader

from .capture_support import pcap_file, tcpdump
from .helpers import within
from .mold_support import itch_like
from .server_support import RawClient
from .test_capture_reads_what_the_wire_proves import T0, conversation, messages, server_bytes

CLI = [sys.executable, "-m", "soupbintcp"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


def numbers(dump: str) -> list[int]:
    return [int(line.split(None, 1)[0]) for line in dump.splitlines()]


async def test_a_capture_from_a_login_at_2500_is_a_journal_from_2500(tmp_path: Path) -> None:
    messages_ = itch_like(4000, seed=2525)
    served = tmp_path / "server.soup"
    store = FileStore(served, session_id="LATE25")
    server = await soupbintcp.serve(("127.0.0.1", 0), store=store, credentials={"u": "p"})
    port = server.address[1]
    try:
        server.publish_many(messages_[:3000])  # before the capture starts
        async with tcpdump(tmp_path / "late.pcap", f"tcp port {port}"):
            client = await soupbintcp.connect_async(("127.0.0.1", port), "u", "p", sequence=2500)
            server.publish_many(messages_[3000:])
            got = []
            async for msg in client:
                got.append(msg.sequence)
                if msg.sequence == 4000:
                    break
            assert got == list(range(2500, 4001))
            await client.logout()
    finally:
        await server.close()
        store.close()

    imported = tmp_path / "imported.soup"
    result = cli("journal", "import", "--pcap", str(tmp_path / "late.pcap"), str(imported))
    assert result.returncode == 0, result.stderr
    assert "imported 1,501 messages (2,500..4,000)" in result.stderr
    assert "the journal starts at message 2,500" in result.stderr
    # The records are the server's own from message 2,500 on, byte for byte.
    start = 32 + sum(3 + len(m) for m in messages_[:2499])
    assert imported.read_bytes()[40:] == served.read_bytes()[start:]
    with JournalReader(imported) as reader:
        assert (reader.first_sequence, reader.count, reader.session_id) == (2500, 4000, "LATE25")
    assert CaptureTimes.read(times_path(imported)).first_sequence == 2500

    dump = cli("journal", "dump", str(imported), "-n", "3", "--format", "hex")
    assert dump.returncode == 0, dump.stderr
    assert numbers(dump.stdout) == [2500, 2501, 2502]
    assert dump.stdout.splitlines()[0] == f"2500 {messages_[2499].hex()}"
    stamped = cli("journal", "dump", str(imported), "--from", "4000", "--timestamps")
    assert stamped.stdout.split(" ", 1)[1].startswith("4000\t"), stamped.stdout
    info = cli("journal", "info", str(imported))
    assert "messages     1,501 (sequence 2,500..4,000)" in info.stdout, info.stdout
    assert "(format 3)" in info.stdout

    # Served again: a login asking for 1 is accepted at 2,500; a client replays the wire
    # numbers and the same bytes.
    with FileStore(imported) as again:
        replay = await soupbintcp.serve(("127.0.0.1", 0), store=again, credentials={"u": "p"})
        try:
            raw = await RawClient.connect(replay.address)
            assert await raw.login(username="u", password="p", sequence=1) == (
                b"A",
                b"LATE25".rjust(10) + b"2500".rjust(20),
            )
            raw.close()
            client = await soupbintcp.connect_async(replay.address, "u", "p", sequence=2500)
            try:
                for n in range(2500, 4001):
                    msg = await within(client.receive_msg(), 5)
                    assert (msg.sequence, msg.data) == (n, messages_[n - 1])
            finally:
                await client.close()
        finally:
            await replay.close()


async def test_each_piece_of_a_capture_with_a_gap_imports_under_its_own_numbers(
    tmp_path: Path,
) -> None:
    # A login at 30 proves 30..60 until a segment is lost after 40; a later login proves
    # 70..100 again: pieces 30..40 and 70..100, with 41..69 missing.
    msgs = messages(1, 100)
    stream = server_bytes("S1", 30, msgs[29:60])
    cut = len(server_bytes("S1", 30, msgs[29:40])) + 5
    frames = conversation(stream, cuts=[cut, cut + 30])
    del frames[4]
    second = conversation(
        server_bytes("S1", 70, msgs[69:]), client=("10.0.0.3", 40002), time=T0 + 10**9
    )
    capture = tmp_path / "gap.pcap"
    capture.write_bytes(pcap_file(frames + second))

    info = cli("pcap", "info", str(capture))
    assert info.returncode == 0, info.stderr
    assert "gaps       41..69" in info.stdout
    assert "piece 1    30..40 (11 messages)" in info.stdout, info.stdout
    assert "piece 2    70..100 (31 messages)" in info.stdout

    def imported(name: str, *choice: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        journal = tmp_path / name
        return cli("journal", "import", "--pcap", str(capture), str(journal), *choice), journal

    for choice, first, last in (((), 30, 40), (("--piece", "2"), 70, 100),
                                (("--from-sequence", "80"), 80, 100),
                                (("--from-sequence", "35"), 35, 40)):  # fmt: skip
        result, journal = imported(f"p{first}.soup", *choice)
        assert result.returncode == 0, result.stderr
        assert f"({first:,}..{last:,})" in result.stderr
        with JournalReader(journal) as reader:
            assert (reader.first_sequence, reader.count) == (first, last)
            assert reader.read(first, 100) == msgs[first - 1 : last]
        times = CaptureTimes.read(times_path(journal))
        assert (times.first_sequence, len(times.times)) == (first, last - first + 1)
        if not choice:
            assert "piece 1 of 2; messages 41..69 are not in the capture" in result.stderr
        if first == 70:
            dump = cli("journal", "dump", str(journal), "--format", "hex")
            assert numbers(dump.stdout) == list(range(70, 101))

    refusals = [
        (("--piece", "3"), "there is no piece 3 (the pieces: 1: 30..40, 2: 70..100)"),
        (("--from-sequence", "50"), "does not prove message 50"),
    ]
    for choice, why in refusals:
        result, journal = imported("bad.soup", *choice)
        assert result.returncode == 1
        assert why in result.stderr
        assert not journal.exists()

    # `serve --import-journal` replays piece 2 into a new journal that keeps its numbers.
    served = tmp_path / "served.soup"
    proc = await asyncio.create_subprocess_exec(
        *CLI, "--loop", "asyncio", "serve", "--listen", "127.0.0.1:0", "--store", str(served),
        "--import-journal", str(tmp_path / "p70.soup"), "--pace", "max",
        "--end-session-after-replay", "--no-auth", stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        port = None
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, "serve ended"
            if m := re.search(r"127\.0\.0\.1:(\d+)", line):
                port = int(m[1])
        client = await soupbintcp.connect_async(("127.0.0.1", port), "u", "p", sequence=70)
        arrived = [(msg.sequence, msg.data) async for msg in client]
        await client.close()
    finally:
        proc.terminate()
        await proc.wait()
    assert arrived == [(n, msgs[n - 1]) for n in range(70, 101)]
    with JournalReader(served) as reader:
        assert (reader.first_sequence, reader.count) == (70, 100)
