"""A capture's messages carried as frames, not objects: the compiled loops that find them
agree with their pure twins on random input, and an import holds no more than its memory
budget whatever the capture's size (the rest waits in a spool file)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soupbintcp._wire import Dialect, PacketDecoder, Role
from soupbintcp._wire._frames import hop, pure_hop
from soupbintcp.store import JournalReader

from .capture_support import pcap_file, tcp_frame, udp_frame
from .helpers import wire

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path

T0 = 1_765_000_000_000_000_000
SERVER = ("10.0.0.1", 7000)
CLIENT = ("10.0.0.2", 40001)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """Server bytes: Sequenced Data mostly, with other packets, zero lengths and cuts."""
    out = b""
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from([b"S", b"S", b"S", b"H", b"Z", b"+"]))
        body = draw(st.binary(max_size=40))
        packet = (len(body) + 1).to_bytes(2, "big") + kind + body
        if draw(st.integers(0, 9)) == 0:
            packet = b"\0\0S"  # a zero length
        out += packet
    return out[: draw(st.integers(0, len(out)))] if draw(st.booleans()) else out


@settings(max_examples=300, deadline=None)
@given(
    data=streams(),
    start=st.integers(0, 5),
    limit=st.sampled_from([65535, 1, 3, 20]),
    omega=st.booleans(),
)
def test_a_run_of_sequenced_frames_is_what_the_payload_split_finds(
    data: bytes, start: int, limit: int, omega: bool
) -> None:
    dialect = Dialect.OMEGA if omega else Dialect.SOUPBINTCP
    decoders = [
        PacketDecoder(Role.SERVER, dialect=dialect, max_packet_length=limit) for _ in range(3)
    ]
    for decoder in decoders:
        decoder.feed(b"\0\x01H" * start + data)  # heartbeats first: the run starts later
        for _ in range(start):
            decoder.next_packet()
    frames, count = decoders[0].next_sequenced_run()  # compiled when built
    pure = PacketDecoder.pure_next_sequenced_run(decoders[1])
    payloads = PacketDecoder.pure_next_sequenced_payloads(decoders[2])
    assert (frames, count) == pure
    assert count == len(payloads)
    assert frames == b"".join(wire(b"S", p) for p in payloads)
    assert decoders[0].offset == decoders[1].offset == decoders[2].offset


@settings(max_examples=300, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 300), max_size=8),
    cut=st.integers(0, 50),
    pos=st.integers(0, 3),
    count=st.integers(0, 10),
)
def test_the_compiled_hop_lands_where_the_pure_one_does(
    lengths: list[int], cut: int, pos: int, count: int
) -> None:
    buf = b"".join(n.to_bytes(2, "big") + b"S" * n for n in lengths)
    buf = buf[: max(0, len(buf) - cut)]
    pos = min(pos, len(buf))
    mine, reference = hop(buf, pos, count), pure_hop(buf, pos, count)
    assert (mine > len(buf)) == (reference > len(buf))
    if reference <= len(buf):
        assert mine == reference


# In a child process, so that its peak resident memory is the import's own.
CHILD = """
import json, sys
from pathlib import Path
from soupbintcp.capture import Capture, choose, import_stream
from soupbintcp.store import FileStore

def memory(field):  # bytes resident now (VmRSS) or at the peak so far (VmHWM)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

path, out, budget = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
before = memory("VmRSS")
capture = Capture(path, budget=budget, spool=out.parent)
stream = capture.select(session="S1")
with FileStore(out, session_id="S1", first_sequence=choose(stream).first) as store:
    report = import_stream(stream, store, out)
mold = capture.select(session="M1")
print(json.dumps([before, memory("VmHWM"), report.count, mold.merged.count,
                  capture.spool.spilled]))
"""


def message(n: int) -> bytes:
    return b"message %08d " % n + bytes(26)  # 43 bytes: an ITCH-sized message


def big_feed(path: Path, megabytes: int) -> tuple[int, int]:
    """A capture of about `megabytes` of messages, half SoupBinTCP session S1 in full
    segments, half MoldUDP64 session M1 in full datagrams: (S1's messages, M1's)."""
    total = megabytes << 20
    soup = mold_count = 0
    seq = 1001
    with path.open("wb") as out:
        out.write(pcap_file([]))
        head = [
            tcp_frame(CLIENT, SERVER, 10, flags=0x02),
            tcp_frame(SERVER, CLIENT, 1000, flags=0x12),
            tcp_frame(SERVER, CLIENT, seq, wire(b"A", b"S1".rjust(10) + b"1".rjust(20))),
        ]
        seq += 33
        records = [(T0 + i, f) for i, f in enumerate(head)]
        written = 0
        while written < total:
            stream = b"".join(wire(b"S", message(soup + k + 1)) for k in range(3300))
            soup += 3300
            for a in range(0, len(stream), 1448):
                records.append(
                    (T0 + len(records), tcp_frame(SERVER, CLIENT, seq, stream[a : a + 1448]))
                )
                seq += len(stream[a : a + 1448])
            written += len(stream)
            for _ in range(110):
                msgs = [message(mold_count + k + 1) for k in range(30)]
                datagram = b"M1".ljust(10) + (mold_count + 1).to_bytes(8, "big") + b"\0\x1e"
                datagram += b"".join(len(m).to_bytes(2, "big") + m for m in msgs)
                mold_count += 30
                written += len(datagram)
                records.append(
                    (T0 + len(records), udp_frame(CLIENT, ("239.1.1.1", 5000), datagram))
                )
            out.write(pcap_file(records)[24:])
            records = []
    return soup, mold_count


@pytest.mark.timeout(180)
def test_an_import_holds_its_budget_whatever_the_capture_holds(tmp_path: Path) -> None:
    capture = tmp_path / "feed.pcap"
    soup, mold = big_feed(capture, 48)
    size = capture.stat().st_size
    out = tmp_path / "out.soup"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(capture), str(out), str(4 << 20)],
        capture_output=True, text=True, timeout=170, check=True,
    )  # fmt: skip
    before, peak, count, mold_count, spilled = json.loads(child.stdout)
    assert (count, mold_count) == (soup, mold)
    assert spilled > size * 3 // 4  # every message beyond the budget waited in the file
    # Holding the messages would hold more than the capture's size. The budget holds 4 MiB;
    # a chunk of the file, a part of the connection, a batch of the journal: about 8 more.
    assert peak - before < 20 << 20 < size // 2, (peak - before, size)
    with JournalReader(out) as journal:
        assert journal.read(1, 2) == [message(1), message(2)]
        assert journal.read(soup, 1) == [message(soup)]
    assert (tmp_path / "out.soup.times").stat().st_size == 20 + 8 * soup
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("soupbintcp-capture")]
