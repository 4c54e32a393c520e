"""Captures made with tcpdump on loopback of the project's own server, clients and MoldUDP64
transmitter: the journal imported from the capture is the server's journal, byte for byte,
and `soupbintcp pcap info` / `journal import --pcap` say so from the command line.

`make test` installs tcpdump when the machine lacks it (the Makefile's `tcpdump` target)."""

from __future__ import annotations

import asyncio
import itertools
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import soupbintcp
from soupbintcp.capture import Capture, CaptureTimes, import_stream, times_path
from soupbintcp.moldudp64 import serve_requests, transmit
from soupbintcp.store import FileStore, JournalReader, MemoryStore

from .capture_support import tcpdump
from .mold_support import itch_like, random_group

CLI = [sys.executable, "-m", "soupbintcp"]
HEADER = 32  # the journal header holds a random journal id; the records follow it


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


async def _read_until(client: soupbintcp.AsyncClient, last: int) -> list[int]:
    got = []
    async for msg in client:
        assert msg.sequence is not None
        got.append(msg.sequence)
        if msg.sequence == last:
            break
    return got


async def test_a_soupbintcp_capture_imports_as_the_servers_own_journal(tmp_path: Path) -> None:
    messages = itch_like(5000, seed=25)
    served = tmp_path / "server.soup"
    store = FileStore(served, session_id="CAP25")
    server = await soupbintcp.serve(("127.0.0.1", 0), store=store, credentials={"u": "p"})
    port = server.address[1]
    try:
        async with tcpdump(tmp_path / "feed.pcap", f"tcp port {port}"):
            server.publish_many(messages[:3000])
            first = await soupbintcp.connect_async(("127.0.0.1", port), "u", "p", sequence=1)
            late = await soupbintcp.connect_async(("127.0.0.1", port), "u", "p", sequence=2500)
            server.publish_many(messages[3000:])  # live, to both
            assert await _read_until(first, 5000) == list(range(1, 5001))
            assert await _read_until(late, 5000) == list(range(2500, 5001))
            await first.logout()
            await late.logout()
            # A third login, after the others left: several logins of one session.
            again = await soupbintcp.connect_async(("127.0.0.1", port), "u", "p", sequence=4990)
            assert await _read_until(again, 5000) == list(range(4990, 5001))
            await again.logout()
    finally:
        await server.close()
        store.close()
    capture = Capture((tmp_path / "feed.pcap").read_bytes())
    (stream,) = capture.streams
    assert (stream.kind, stream.session, stream.connections) == ("SoupBinTCP", "CAP25", 3)
    assert (stream.first, stream.last, stream.merged.gaps) == (1, 5000, [])
    assert stream.merged.duplicates == 2501 + 11  # the late logins' replays, dropped

    imported = tmp_path / "imported.soup"
    result = cli("journal", "import", "--pcap", str(tmp_path / "feed.pcap"), str(imported))
    assert result.returncode == 0, result.stderr
    assert "imported 5,000 messages (1..5,000)" in result.stderr
    assert imported.read_bytes()[HEADER:] == served.read_bytes()[HEADER:]
    with JournalReader(imported) as reader:
        assert reader.session_id == "CAP25"
    times = CaptureTimes.read(times_path(imported))
    assert times.first_sequence == 1
    assert len(times.times) == 5000
    assert list(times.times) == sorted(times.times)
    assert capture.first_time <= times.times[0]
    assert times.times[-1] <= capture.last_time

    dump = cli("journal", "dump", str(imported), "--timestamps", "--from", "5000")
    assert dump.returncode == 0, dump.stderr
    stamp = datetime.fromtimestamp(times.times[-1] // 10**9, UTC)
    assert dump.stdout.startswith(
        f"{stamp:%Y-%m-%dT%H:%M:%S}.{times.times[-1] % 10**9:09d}Z 5000\t"
    )

    info = cli("pcap", "info", str(tmp_path / "feed.pcap"))
    assert info.returncode == 0, info.stderr
    assert f"SoupBinTCP 127.0.0.1:{port} session 'CAP25', 3 logins" in info.stdout
    assert "messages   5,000 numbered 1..5,000" in info.stdout
    assert "gaps       none" in info.stdout


async def test_a_moldudp64_capture_imports_the_transmitted_session(tmp_path: Path) -> None:
    messages = itch_like(3000, seed=7)
    store = MemoryStore(session_id="MOLD25")
    group = random_group()
    requests = await serve_requests(store, ("127.0.0.1", 0))
    tx = await transmit(store, group, interface="127.0.0.1", ttl=0, heartbeat_interval=0.05)
    try:
        async with tcpdump(tmp_path / "mold.pcap", f"udp port {group[1]}"):
            for start in range(0, 3000, 500):
                store.append_many(messages[start : start + 500])
                await asyncio.sleep(0.01)
            for _ in range(500):
                if tx.next_sequence > 3000:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # a heartbeat after the last message
    finally:
        await tx.close()
        await requests.close()
    capture = Capture((tmp_path / "mold.pcap").read_bytes())
    (stream,) = capture.streams
    assert (stream.kind, stream.session, stream.address) == (
        "MoldUDP64",
        "MOLD25",
        f"{group[0]}:{group[1]}",
    )
    assert (stream.first, stream.last, stream.merged.gaps) == (1, 3000, [])
    journal = tmp_path / "mold.soup"
    with FileStore(journal, session_id="MOLD25") as out:
        report = import_stream(stream, out, journal)
    assert (report.first, report.count) == (1, 3000)
    with JournalReader(journal) as reader:
        assert reader.read(1, 3000) == messages


async def test_serve_paces_an_imported_capture_by_its_capture_times(tmp_path: Path) -> None:
    from .capture_support import pcap_file
    from .test_capture_reads_what_the_wire_proves import T0, conversation, server_bytes

    # Three messages captured 0.3 s apart (each in its own segment), then served at 1x.
    stream = server_bytes("PACE", 1, [b"one", b"two", b"three"])
    cuts = [len(stream) - 14, len(stream) - 8]  # after message 1 (6 bytes), 2 (6 bytes)
    frames = conversation(stream, cuts=cuts)
    frames = [(T0 + max(0, i - 3) * 300_000_000, f) for i, (_, f) in enumerate(frames)]
    (tmp_path / "paced.pcap").write_bytes(pcap_file(frames))
    imported = tmp_path / "paced.soup"
    assert (
        cli("journal", "import", "--pcap", str(tmp_path / "paced.pcap"), str(imported)).returncode
        == 0
    )
    times = CaptureTimes.read(times_path(imported)).times
    assert [t - times[0] for t in times] == [0, 300_000_000, 600_000_000]

    served = tmp_path / "served.soup"
    proc = await asyncio.create_subprocess_exec(
        *CLI, "--loop", "asyncio", "serve", "--listen", "127.0.0.1:0", "--store", str(served),
        "--import-journal", str(imported), "--pace", "1x", "--end-session-after-replay",
        "--no-auth", stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        port = None
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, "serve ended"
            if m := re.search(r"127\.0\.0\.1:(\d+)", line):
                port = int(m[1])
        client = await soupbintcp.connect_async(("127.0.0.1", port), "u", "p", sequence=1)
        arrived = [(time.monotonic(), msg.data) async for msg in client]
        await client.close()
    finally:
        proc.terminate()
        await proc.wait()
    assert [data for _, data in arrived] == [b"one", b"two", b"three"]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(arrived)]
    assert all(0.2 < gap < 0.6 for gap in gaps), gaps
