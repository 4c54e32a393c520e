"""The per-packet walk of a capture: compiled and pure give the same answers on random and
hostile captures, a file is read a chunk at a time (any chunk boundary reads the same), and
a capture far larger than a memory bound imports within it."""

from __future__ import annotations

import io
import itertools
import json
import struct
import subprocess
import sys
from array import array
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soupbintcp.capture import Capture, CaptureFile
from soupbintcp.capture import _files as files
from soupbintcp.capture._mold import MOLD_RUN, pure_mold_runs
from soupbintcp.capture._net import decode
from soupbintcp.capture._walk import Tally, pure_pcap_walk, segments

from .capture_support import pcap_file, tcp_frame, udp_frame
from .helpers import wire

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path

T0 = 1_765_000_000_123_456_789
SERVER = ("10.0.0.1", 7000)
CLIENT = ("10.0.0.2", 40001)
LINKTYPES = [0, 1, 101, 113, 228, 229, 276, 7]

try:
    from soupbintcp._speedups import _core
except ImportError:  # not built: the agreement tests below say so
    _core = None  # type: ignore[assignment]

needs_compiled = pytest.mark.skipif(_core is None, reason="the compiled fast path is not built")


def mold(session: bytes, sequence: int, msgs: list[bytes]) -> bytes:
    blocks = b"".join(len(m).to_bytes(2, "big") + m for m in msgs)
    return session.ljust(10) + struct.pack(">QH", sequence, len(msgs)) + blocks


def sample_frames() -> list[bytes]:
    """Frames of every kind the decoder knows, for the mutation strategies to start from."""
    datagram = mold(b"M1", 1, [b"abc", b"defgh"])
    udp = struct.pack(">HHHH", 9000, 5000, 8 + len(datagram), 0) + datagram
    ipv6 = struct.pack(">IHBB", 6 << 28, len(udp), 17, 64) + bytes(16) + b"\xff\x02" + bytes(14)
    ipv4 = tcp_frame(CLIENT, SERVER, 7, b"\x00\x05Sabcd")[14:]
    return [
        tcp_frame(CLIENT, SERVER, 2**32 - 3, b"\x00\x05Sabcd"),
        tcp_frame(SERVER, CLIENT, 99, flags=0x12),
        udp_frame(CLIENT, ("239.1.1.1", 5000), datagram),
        b"\0" * 12 + b"\x81\x00\0\0\x86\xdd" + ipv6 + udp,  # VLAN-tagged IPv6
        b"\0\0\0\1\0\6" + bytes(8) + b"\x08\x00" + ipv4,  # Linux cooked
        b"\x02\0\0\0" + ipv4,  # BSD loopback
        ipv4,  # raw
    ]


def near(n: int) -> st.SearchStrategy[int]:
    """A length field: right, a little off, or anything."""
    return st.sampled_from([n, n]) | st.integers(max(0, n - 3), n + 3) | st.integers(0, 0xFFFF)


@st.composite
def built_frames(draw: st.DrawFn) -> tuple[int, bytes]:
    """(linktype, frame) from drawn header fields: every length, offset, version, flag and
    protocol the decoder tests, right or wrong, then maybe cut."""
    payload = draw(st.binary(max_size=24))
    protocol = draw(st.sampled_from([6, 6, 17, 17, 1]))
    if protocol == 6:
        offset = draw(st.sampled_from([5, 5, 6, 4, 2]) | st.integers(0, 15))
        l4 = struct.pack(">HHII", 1, 2, draw(st.integers(0, 2**32 - 1)), 0)
        l4 += bytes([offset << 4, draw(st.integers(0, 255))]) + bytes(6)
        l4 += bytes(max(0, offset * 4 - 20)) + payload
    else:
        l4 = struct.pack(">HHHH", 1, 2, draw(near(8 + len(payload))), 0) + payload
    if draw(st.booleans()):
        ihl = draw(st.sampled_from([5, 5, 6, 1, 3]) | st.integers(0, 15))
        version = draw(st.sampled_from([4, 4, 6, 0]))
        fragment = draw(st.sampled_from([0x4000, 0x4000, 0x2000, 0x0001, 0x8000]))
        ip = struct.pack(
            ">BBHHHBBH4s4s", version << 4 | ihl, 0, draw(near(ihl * 4 + len(l4))), 0,
            fragment, 64, protocol, 0, b"\x0a\0\0\1", b"\x0a\0\0\2",
        ) + bytes(max(0, ihl * 4 - 20))  # fmt: skip
        ethertype = b"\x08\x00"
    else:
        version = draw(st.sampled_from([6, 6, 4]))
        ip = struct.pack(">IHBB", version << 28, draw(near(len(l4))), protocol, 64) + bytes(32)
        ethertype = b"\x86\xdd"
    linktype = draw(st.sampled_from(LINKTYPES))
    link = {
        0: draw(st.sampled_from([b"\x02\0\0\0", b"\0\0\0\x1e", b"\x07\0\0\0"])),
        1: bytes(12) + draw(st.sampled_from([b"", b"\x81\x00\0\0", b"\x88\xa8\0\0"])) + ethertype,
        113: bytes(14) + ethertype,
        276: ethertype + bytes(18),
    }.get(linktype, b"")
    frame = link + ip + l4
    return linktype, frame[: draw(st.integers(0, len(frame)) | st.just(len(frame)))]


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """A built frame, a sample frame with a few bytes overwritten, or random bytes."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=120))
    if kind > 2:
        return draw(built_frames())[1]
    frame = bytearray(draw(st.sampled_from(sample_frames())))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(frame) - 1))
        frame[at] = draw(st.integers(0, 255))
    return bytes(frame[: draw(st.integers(0, len(frame)))])


@needs_compiled
@settings(max_examples=500, deadline=None)
@given(built=built_frames())
def test_compiled_and_pure_decode_agree_on_any_headers(built: tuple[int, bytes]) -> None:
    linktype, frame = built
    assert _core.capture_decode(linktype, frame) == decode(linktype, frame)


@needs_compiled
@settings(max_examples=400, deadline=None)
@given(linktype=st.sampled_from(LINKTYPES), frame=frames())
def test_compiled_and_pure_decode_agree_on_any_frame(linktype: int, frame: bytes) -> None:
    assert _core.capture_decode(linktype, frame) == decode(linktype, frame)


@st.composite
def pcap_chunks(draw: st.DrawFn) -> tuple[bytes, int, bool, int, int]:
    """Record headers and frames (some cut by a snapshot length, some records cut by the end
    of the chunk or claiming any length), in either byte order."""
    big = draw(st.booleans())
    order = ">" if big else "<"
    out = bytearray(draw(st.binary(max_size=3)))  # where the walk starts
    start = len(out)
    for _ in range(draw(st.integers(0, 8))):
        frame = draw(frames())
        sec = draw(st.integers(0, 2**32 - 1))
        frac = draw(st.integers(0, 2**32 - 1))
        incl = len(frame) if draw(st.integers(0, 9)) else draw(st.integers(0, 2**32 - 1))
        orig = len(frame) + draw(st.sampled_from([0, 0, 1, 1000]))
        out += struct.pack(order + "IIII", sec, frac, incl, orig) + frame
    out = out[: draw(st.integers(start, len(out)))]
    return (
        bytes(out),
        start,
        big,
        draw(st.sampled_from([1, 1000])),
        draw(st.sampled_from(LINKTYPES)),
    )


@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunk=pcap_chunks())
def test_compiled_and_pure_pcap_walks_agree_on_any_chunk(
    chunk: tuple[bytes, int, bool, int, int],
) -> None:
    assert _core.pcap_walk(*chunk) == pure_pcap_walk(*chunk)


@st.composite
def mold_chunks(draw: st.DrawFn) -> tuple[bytes, int, bool, int, int]:
    """Records of MoldUDP64 datagrams (two flows, two sessions, numbered on or not, some
    malformed or cut by the snapshot length) among TCP segments and random frames."""
    big = draw(st.booleans())
    order = ">" if big else "<"
    out = bytearray()
    sequence = draw(st.sampled_from([1, 2**64 - 3]))
    flows = [  # the second differs from the first in its port alone
        (CLIENT, ("239.1.1.1", 5000)),
        (CLIENT, ("239.1.1.1", 5001)),
        (("10.0.0.9", 9), ("239.1.1.2", 5000)),
    ]
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            frame = draw(frames())
        elif kind == 1:
            frame = tcp_frame(CLIENT, SERVER, 7, draw(st.sampled_from([b"", b"x"])))
        else:
            n = draw(st.integers(0, 3))
            msgs = [b"m%d" % k * draw(st.sampled_from([1, 40])) for k in range(n)]
            sequence = draw(st.sampled_from([sequence, sequence, 5, min(sequence + 1, 2**64 - 1)]))
            data = mold(draw(st.sampled_from([b"S1", b"S2"])), sequence, msgs)
            if kind == 2:
                data = data[: draw(st.integers(0, len(data)))]
            frame = udp_frame(*draw(st.sampled_from(flows)), data)
            sequence = min(sequence + n, 2**64 - 1)
        incl = max(0, len(frame) - draw(st.sampled_from([0, 0, 0, 1, 5])))
        sec = draw(st.sampled_from([0, 1_765_000_000, 2**32 - 1]))
        out += struct.pack(order + "IIII", sec, draw(st.integers(0, 999)), incl, len(frame))
        out += frame[:incl]
    return bytes(out), 0, big, draw(st.sampled_from([1, 1000])), 1


@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunk=st.one_of(mold_chunks(), pcap_chunks()))
def test_the_compiled_walk_makes_mold_runs_as_the_pure_walk_then_mold_runs_do(
    chunk: tuple[bytes, int, bool, int, int],
) -> None:
    rows, *counts = pure_pcap_walk(*chunk)
    assert _core.pcap_walk(*chunk, MOLD_RUN) == (pure_mold_runs(rows), *counts)


def test_a_walk_reports_every_count_and_stops_at_the_first_record_not_whole() -> None:
    whole = pcap_file(
        [
            (T0, tcp_frame(CLIENT, SERVER, 1, b"hello")),
            (T0 + 5, b"\0" * 12 + b"\x08\x06" + bytes(28)),  # ARP: not TCP or UDP
            (T0 + 9, udp_frame(CLIENT, SERVER, b"0123456789abcdefghij")),
        ],
        snaplen=60,  # cuts the UDP frame (62 bytes) by two
    )
    data = whole[:-3]  # the last record is not whole
    rows, pos, records, truncated, other, acks, first, last = pure_pcap_walk(data, 24, False, 1, 1)
    assert (records, truncated, other, acks, first, last) == (2, 0, 1, 0, T0, T0 + 5)
    assert pos == 24 + 2 * 16 + 59 + 42
    assert [(r[0], r[4], r[5], r[6]) for r in rows] == [(6, b"hello", 0, T0)]
    rows, pos, records, truncated, other, acks, first, last = pure_pcap_walk(
        whole, pos, False, 1, 1
    )
    assert (records, truncated, other, acks, first, last) == (1, 1, 0, 0, T0 + 9, T0 + 9)
    assert pos == len(whole)
    assert [(r[0], r[4], r[5]) for r in rows] == [(17, b"0123456789abcdefgh", 2)]
    with pytest.raises(ValueError, match="outside"):
        pure_pcap_walk(whole, len(whole) + 1, False, 1, 1)


def test_a_pure_ack_of_a_flow_already_open_is_counted_not_handed_out() -> None:
    other = ("10.0.0.3", 40003)
    frames = [
        tcp_frame(CLIENT, SERVER, 5, flags=0x10),  # opens the flow: handed out
        tcp_frame(CLIENT, SERVER, 5, flags=0x10),  # left out
        tcp_frame(other, SERVER, 5, flags=0x14),  # an empty RST does not open its flow
        tcp_frame(other, SERVER, 5, flags=0x10),  # so this one is handed out
        tcp_frame(CLIENT, SERVER, 5, b"x", flags=0x10),  # data: handed out
        tcp_frame(CLIENT, SERVER, 6, flags=0x11),  # empty FIN: left out
        tcp_frame(SERVER, CLIENT, 9, flags=0x12),  # SYN-ACK: handed out, forgets nothing
        tcp_frame(CLIENT, SERVER, 6, flags=0x10),  # left out
        tcp_frame(CLIENT, SERVER, 1, flags=0x02),  # SYN: handed out, forgets every flow
        tcp_frame(SERVER, CLIENT, 10, flags=0x10),  # handed out again
    ]
    data = pcap_file([(T0 + i, f) for i, f in enumerate(frames)])
    rows, _, records, *_, acks, _, _ = pure_pcap_walk(data, 24, False, 1, 1)
    assert (records, acks) == (10, 3)
    assert [r[6] - T0 for r in rows] == [0, 2, 3, 4, 6, 8, 9]
    if _core is not None:
        assert _core.pcap_walk(data, 24, False, 1, 1)[0] == rows


@st.composite
def udp_rows(draw: st.DrawFn) -> list[tuple[object, ...]]:
    """Rows as `segments` hands them out: MoldUDP64 packets of two sessions on two flows,
    numbered on from each other or not, some malformed; heartbeats, TCP rows between."""
    rows: list[tuple[object, ...]] = []
    sequence = draw(st.sampled_from([1, 2**64 - 3]))
    for i in range(draw(st.integers(0, 12))):
        key = draw(st.sampled_from([b"k1", b"k2"]))
        kind = draw(st.integers(0, 9))
        if kind == 0:
            rows.append((6, key, 1, 0x18, b"", 0, i))
            continue
        msgs = [
            b"m%d" % n * draw(st.sampled_from([1, 1, 90])) for n in range(draw(st.integers(0, 3)))
        ]
        session = draw(st.sampled_from([b"S1", b"S2"]))
        sequence = draw(st.sampled_from([sequence, sequence, min(sequence + 1, 2**64 - 1), 5]))
        data = mold(session, sequence, msgs)
        if kind == 1:
            data = data[: draw(st.integers(0, len(data)))]
        elif kind == 2:
            data += b"!"
        elif kind == 3 and msgs:
            data = data[:18] + b"\xff\xff" + data[20:]
        # A time the sidecar cannot hold (a hostile pcapng) passes as it is.
        time = draw(st.sampled_from([i, i, i, 2**63 - 1, 2**63, -(2**63) - 1]))
        rows.append((17, key, 0, 0, data, 0, time))
        sequence = min(sequence + len(msgs), 2**64 - 1)
    return rows


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(rows=udp_rows())
def test_compiled_and_pure_mold_runs_agree(rows: list[tuple[object, ...]]) -> None:
    assert _core.mold_runs(rows, MOLD_RUN) == pure_mold_runs(rows)


def test_consecutive_mold_packets_of_one_flow_and_session_make_one_row() -> None:
    rows = [
        (17, b"k1", 0, 0, mold(b"S1", 1, [b"a", b"b"]), 0, 10),
        (17, b"k1", 0, 0, mold(b"S1", 3, [b"c"]), 0, 11),
        (17, b"k1", 0, 0, mold(b"S1", 4, []), 0, 12),  # a heartbeat: passes as it is
        (17, b"k1", 0, 0, mold(b"S1", 4, [b"d"]), 0, 13),
        (17, b"k2", 0, 0, mold(b"S1", 5, [b"e"]), 0, 14),  # another flow
        (17, b"k2", 0, 0, mold(b"S2", 6, [b"f"]), 0, 15),  # another session
        (17, b"k2", 0, 0, mold(b"S2", 6, [b"g"]), 0, 16),  # not numbered on
    ]
    s1, s2 = b"S1".ljust(10), b"S2".ljust(10)
    # The messages as Sequenced Data frames (length + 1, "S", message), written out by hand.
    assert pure_mold_runs(rows) == [
        (MOLD_RUN, b"k1", 1, 2, b"\0\x02Sa\0\x02Sb\0\x02Sc", array("q", [10, 10, 11]), s1),
        rows[2],
        (MOLD_RUN, b"k1", 4, 1, b"\0\x02Sd", array("q", [13]), s1),
        (MOLD_RUN, b"k2", 5, 1, b"\0\x02Se", array("q", [14]), s1),
        (MOLD_RUN, b"k2", 6, 1, b"\0\x02Sf", array("q", [15]), s2),
        (MOLD_RUN, b"k2", 6, 1, b"\0\x02Sg", array("q", [16]), s2),
    ]


def hostile_capture() -> bytes:
    """A conversation in segments out of order and repeated, MoldUDP64 on two lines, noise."""
    stream = wire(b"A", b"S1".rjust(10) + b"1".rjust(20))
    stream += b"".join(wire(b"S", b"m%03d" % n) for n in range(1, 60))
    cuts = [*range(0, len(stream), 37), len(stream)]
    segs = [tcp_frame(SERVER, CLIENT, 1001 + a, stream[a:b]) for a, b in itertools.pairwise(cuts)]
    segs = segs[:3] + segs[5:7] + segs[3:5] + segs[6:]  # reordered, one repeated
    packets = [
        tcp_frame(CLIENT, SERVER, 10, flags=0x02),
        tcp_frame(SERVER, CLIENT, 1000, flags=0x12),
        *segs,
        b"\0" * 12 + b"\x08\x06" + bytes(28),
    ]
    for n in range(1, 30, 3):
        datagram = mold(b"M1", n, [b"x%d" % k for k in range(n, n + 3)])
        packets.append(udp_frame(("10.0.0.9", 9), ("239.1.1.1", 5000), datagram))
        packets.append(udp_frame(("10.0.0.9", 9), ("239.1.1.2", 5000), datagram))
    return pcap_file([(T0 + i * 1000, p) for i, p in enumerate(packets)], snaplen=90)


def summary(capture: Capture) -> list[object]:
    return [
        capture.records,
        capture.fault,
        capture.truncated,
        capture.other_packets,
        capture.first_time,
        capture.last_time,
        capture.unread,
        [(s.kind, s.session, s.address,
          [(p.first, p.payloads, list(p.times)) for p in s.merged.pieces],
          s.notes) for s in capture.streams],
    ]  # fmt: skip


@pytest.mark.parametrize("cut", [None, 1, 17, 200])
def test_any_chunk_size_reads_as_the_whole_file_does(
    monkeypatch: pytest.MonkeyPatch, cut: int | None
) -> None:
    data = hostile_capture()
    if cut is not None:
        data = data[:-cut]  # the file ends inside a record, or inside its header
    capture = Capture(data)
    assert capture.records > 20
    assert len(capture.streams) == 2
    whole = summary(capture)
    # Every part in the spool file, or only some: the same messages, times and pieces.
    assert summary(Capture(data, budget=0)) == summary(Capture(data, budget=300)) == whole
    for chunk in (1, 7, 100, 4096):
        monkeypatch.setattr(files, "CHUNK", chunk)
        assert summary(Capture(io.BytesIO(data))) == whole, chunk


def test_a_path_reads_as_the_bytes_do_and_a_record_claiming_gigabytes_is_a_fault(
    tmp_path: Path,
) -> None:
    data = hostile_capture()
    path = tmp_path / "feed.pcap"
    path.write_bytes(data)
    assert summary(Capture(path)) == summary(Capture(data)) == summary(Capture(str(path)))
    # A record header claiming 3 GB in a small file: a fault at once, not a 3 GB read.
    bad = data[:24] + struct.pack("<IIII", 1, 2, 3 << 30, 3 << 30) + b"x" * 100
    capture = Capture(bad)
    assert capture.records == 0
    assert capture.fault == "record 1 claims 3,221,225,472 bytes: not a packet record"


def test_segments_counts_pcapng_records_as_pcap_ones() -> None:
    data = hostile_capture()
    tally = Tally()
    rows = [row for batch in segments(CaptureFile(data), tally) for row in batch]
    # The compiled walk hands out MoldUDP64 runs already made (a row of `r[3]` packets).
    assert tally.records == sum(r[3] if r[0] == MOLD_RUN else 1 for r in rows) + 1  # ARP
    assert (tally.other, tally.first_time) == (1, T0)
    assert tally.truncated == sum(1 for r in rows if r[0] != MOLD_RUN and r[5])


# A capture far larger than the memory bound, imported in a child process that reports its
# own peak resident memory before and after. The bulk is what real captures hold beside the
# feed: another TCP connection's full segments (read, not kept); the feed's messages are kept.
CHILD = """
import json, sys
from pathlib import Path
from soupbintcp.capture import Capture, import_stream
from soupbintcp.store import FileStore

def memory(field):  # bytes resident now (VmRSS) or at the peak so far (VmHWM)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

before = memory("VmRSS")  # now, not the peak: the imports may have peaked higher
capture = Capture(Path(sys.argv[1]))
with FileStore(Path(sys.argv[2]), session_id="S1") as store:
    report = import_stream(capture.select(session="S1"), store, Path(sys.argv[2]))
print(json.dumps([before, memory("VmHWM"), report.count, capture.records]))
"""


def big_capture(path: Path, megabytes: int) -> tuple[int, int]:
    """(messages, records) of a capture of about `megabytes` written to `path`."""
    feed = wire(b"A", b"S1".rjust(10) + b"1".rjust(20))
    feed += b"".join(wire(b"S", b"message %06d" % n) for n in range(1, 2001))
    other = (("10.0.0.7", 50000), ("10.0.0.8", 443))
    bulk = bytes(range(256)) * 5 + bytes(168)  # 1,448 bytes: full segments
    records = 0
    with path.open("wb") as out:
        out.write(pcap_file([]))
        head = [
            tcp_frame(CLIENT, SERVER, 10, flags=0x02),
            tcp_frame(SERVER, CLIENT, 1000, flags=0x12),
            tcp_frame(SERVER, CLIENT, 1001, feed),
            tcp_frame(other[0], other[1], 5, flags=0x02),
        ]
        out.write(pcap_file([(T0 + i, f) for i, f in enumerate(head)])[24:])
        records += len(head)
        seq = 6
        while out.tell() < megabytes << 20:
            frames = []
            for _ in range(1000):
                frames.append((T0 + records, tcp_frame(other[0], other[1], seq, bulk)))
                seq += len(bulk)
                records += 1
            out.write(pcap_file(frames)[24:])
    return 2000, records


@pytest.mark.timeout(120)
def test_a_capture_far_larger_than_the_memory_bound_imports_within_it(tmp_path: Path) -> None:
    capture = tmp_path / "big.pcap"
    messages, records = big_capture(capture, 96)
    size = capture.stat().st_size
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(capture), str(tmp_path / "out.soup")],
        capture_output=True, text=True, timeout=100, check=True,
    )  # fmt: skip
    before, after, count, read = json.loads(child.stdout)
    assert (count, read) == (messages, records)
    grown = after - before
    # Reading whole would hold the 96 MB file at least; a chunk at a time holds ~1 MiB.
    assert grown < size // 4, (grown, size)


def test_a_new_connection_on_the_same_ports_is_read_afresh_in_both_directions() -> None:
    def connection(c_isn: int, s_isn: int, first: int, last: int) -> list[bytes]:
        login = wire(b"L", b"user".ljust(6) + b"secret".ljust(10) + b"S1".rjust(10)
                     + str(first).encode().rjust(20))  # fmt: skip
        stream = wire(b"A", b"S1".rjust(10) + str(first).encode().rjust(20))
        stream += b"".join(wire(b"S", b"msg %d" % n) for n in range(first, last + 1))
        return [
            tcp_frame(CLIENT, SERVER, c_isn, flags=0x02),
            tcp_frame(SERVER, CLIENT, s_isn, flags=0x12),
            tcp_frame(CLIENT, SERVER, c_isn + 1, login),
            tcp_frame(SERVER, CLIENT, s_isn + 1, stream[:50]),
            tcp_frame(CLIENT, SERVER, c_isn + 1 + len(login), flags=0x10),
            tcp_frame(SERVER, CLIENT, s_isn + 51, stream[50:]),
            tcp_frame(SERVER, CLIENT, s_isn + 1 + len(stream), flags=0x11),
        ]

    frames = connection(100, 7_000, 1, 10) + connection(90_000, 3_000_000, 11, 20)
    capture = Capture(pcap_file([(T0 + i, f) for i, f in enumerate(frames)]))
    (stream,) = capture.streams
    assert (stream.connections, stream.first, stream.last, stream.notes) == (2, 1, 20, [])
    assert stream.merged.pieces[0].payloads == [b"msg %d" % n for n in range(1, 21)]
    # Without the second SYN-ACK, the server's bytes of the second connection are not read
    # into the first one's stream: the second is not numbered, the first stays whole.
    del frames[7 + 1]
    capture = Capture(pcap_file([(T0 + i, f) for i, f in enumerate(frames)]))
    (stream,) = capture.streams
    assert (stream.connections, stream.first, stream.last, stream.notes) == (1, 1, 10, [])
    assert capture.unread == ["10.0.0.2:40001: SoupBinTCP login not accepted in the capture"]
