"""Captures written by hand in the pcap and pcapng formats, hostile ones included: the
import keeps exactly the messages the capture proves, numbered as on the wire, and reports
the rest (retransmissions, overlaps, reordering, a lost segment, a snapshot length that cuts
packets, a file cut short, a capture that starts inside a connection)."""

from __future__ import annotations

import itertools
import struct
from array import array
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soupbintcp.capture import (
    Capture,
    CaptureError,
    CaptureTimes,
    choose,
    import_stream,
    times_path,
)
from soupbintcp.store import FileStore, JournalReader

from .capture_support import pcap_file, tcp_frame, udp_frame
from .helpers import wire
from .server_support import login_packet

CLIENT = ("10.0.0.2", 40001)
SERVER = ("10.0.0.1", 7000)
T0 = 1_765_000_000_123_456_789  # ns; odd digits so that nanoseconds show


def messages(first: int, last: int) -> list[bytes]:
    # ITCH-like sizes, 11 to 50 bytes, and each says its own number.
    return [b"%d:" % n + b"x" * (8 + n % 40) for n in range(first, last + 1)]


def accepted(session: str, sequence: int) -> bytes:
    """Login Accepted from the spec's table: Session 10 left-padded, Sequence 20 left-padded."""
    return wire(b"A", session.encode().rjust(10) + str(sequence).encode().rjust(20))


def server_bytes(session: str, first: int, msgs: list[bytes], end: bool = False) -> bytes:
    out = accepted(session, first) + b"".join(wire(b"S", m) for m in msgs)
    return out + (wire(b"Z") if end else b"")


def conversation(
    server_stream: bytes,
    *,
    cuts: list[int] | None = None,
    client: tuple[str, int] = CLIENT,
    isn: tuple[int, int] = (1000, 5_000_000),
    time: int = T0,
) -> list[tuple[int, bytes]]:
    """Frames of one connection: handshake, Login Request, the server's bytes in segments
    cut at `cuts` (offsets into `server_stream`), FIN. Times 1 µs apart."""
    c_isn, s_isn = isn
    login = login_packet("user", "secret", "", 1)
    frames = [
        tcp_frame(client, SERVER, c_isn, flags=0x02),
        tcp_frame(SERVER, client, s_isn, flags=0x12),
        tcp_frame(client, SERVER, c_isn + 1, login),
    ]
    bounds = [0, *sorted(cuts or []), len(server_stream)]
    frames += [
        tcp_frame(SERVER, client, s_isn + 1 + a, server_stream[a:b])
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]
    frames.append(tcp_frame(SERVER, client, s_isn + 1 + len(server_stream), flags=0x11))
    return [(time + i * 1000, f) for i, f in enumerate(frames)]


def imported(tmp_path: Path, data: bytes, **select: str) -> tuple[list[bytes], CaptureTimes]:
    capture = Capture(data)
    journal = tmp_path / "out.soup"
    stream = capture.select(**select)
    first = choose(stream).first  # the journal is numbered as on the wire
    with FileStore(journal, session_id="S1", first_sequence=first) as store:
        import_stream(stream, store, journal)
    with JournalReader(journal) as reader:
        assert reader.first_sequence == first
        got = reader.read(first, reader.count - first + 1)
    return got, CaptureTimes.read(times_path(journal))


def test_a_clean_conversation_imports_every_message_with_its_capture_time(
    tmp_path: Path,
) -> None:
    msgs = messages(1, 200)
    stream = server_bytes("S1", 1, msgs, end=True)
    frames = conversation(stream, cuts=list(range(0, len(stream), 700)))
    got, times = imported(tmp_path, pcap_file(frames))
    assert got == msgs
    assert times.first_sequence == 1
    assert len(times.times) == 200
    # Message 1 is completed by the first server segment: the 4th frame (index 3).
    assert times.times[0] == T0 + 3 * 1000


def test_retransmitted_overlapping_and_reordered_segments_import_once_in_order(
    tmp_path: Path,
) -> None:
    msgs = messages(1, 300)
    stream = server_bytes("S1", 1, msgs)
    frames = conversation(stream, cuts=list(range(0, len(stream), 500)))
    head, server, tail = frames[:3], frames[3:-1], frames[-1:]
    s_base = 5_000_001
    hostile = [
        server[1],
        server[0],  # reordered
        server[0],  # retransmitted
        (T0, tcp_frame(SERVER, CLIENT, s_base + 250, stream[250:1250])),  # overlaps 3
        *server[2:5],
        server[4],
        *server[5:],
    ]
    got, _ = imported(tmp_path, pcap_file(head + hostile + tail))
    assert got == msgs


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_segmentation_duplication_and_order_gives_the_same_journal(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    msgs = messages(1, 60)
    stream = server_bytes("S1", 1, msgs)
    cuts = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=40, unique=True))
    isn = data.draw(st.sampled_from([5_000_000, 2**32 - 700]))  # across the 32-bit wrap
    frames = conversation(stream, cuts=cuts, isn=(77, isn))
    head, server, tail = frames[:3], frames[3:-1], frames[-1:]
    extra = data.draw(st.lists(st.sampled_from(server), max_size=10))
    shuffled = data.draw(st.permutations(server + extra))
    got, _ = imported(tmp_path_factory.mktemp("c"), pcap_file(head + shuffled + tail))
    assert got == msgs


def test_a_lost_segment_ends_the_numbering_of_its_connection_and_is_reported(
    tmp_path: Path,
) -> None:
    msgs = messages(1, 100)
    stream = server_bytes("S1", 1, msgs)
    cut = len(accepted("S1", 1)) + sum(len(wire(b"S", m)) for m in msgs[:40]) + 5
    frames = conversation(stream, cuts=[cut, cut + 30])
    del frames[4]  # bytes cut..cut+29: never in the capture
    # A second login later proves messages 70..100 again.
    second = conversation(
        server_bytes("S1", 70, msgs[69:]), client=("10.0.0.3", 40002), time=T0 + 10**9
    )
    capture = Capture(pcap_file(frames + second))
    (stream_found,) = capture.streams
    assert [(p.first, p.end - 1) for p in stream_found.merged.pieces] == [(1, 40), (70, 100)]
    assert stream_found.merged.gaps == [(41, 70)]
    assert any("not in the capture after message 40" in n for n in stream_found.notes)
    got, _ = imported(tmp_path, pcap_file(frames + second))
    assert got == msgs[:40]  # the first unbroken piece; the rest is reported, not guessed


def test_a_capture_that_starts_inside_a_connection_numbers_from_the_next_login(
    tmp_path: Path,
) -> None:
    msgs = messages(1, 50)
    late = conversation(server_bytes("S1", 1, msgs), cuts=[100, 400])
    late = late[4:]  # no handshake, no login, no Login Accepted
    again = conversation(
        server_bytes("S1", 30, msgs[29:]), client=("10.0.0.3", 40002), time=T0 + 10**9
    )
    got, times = imported(tmp_path, pcap_file(late + again))
    assert got == msgs[29:]
    assert times.first_sequence == 30  # numbered as on the wire
    assert Capture(pcap_file(late)).streams == []


def test_a_snapshot_length_that_cuts_packets_imports_what_is_whole(tmp_path: Path) -> None:
    msgs = messages(1, 100)
    stream = server_bytes("S1", 1, msgs)
    frames = conversation(stream, cuts=[200, 800, 1400])
    capture = Capture(pcap_file(frames, snaplen=54 + 200))  # 200 payload bytes of each
    assert capture.truncated == 3
    (found,) = capture.streams
    # The first segment is whole and the second's first 200 bytes follow it: stream bytes
    # 0..399 are proved, the rest is not; so are the messages that end by byte 399.
    whole = 400 - len(accepted("S1", 1))
    expected = []
    used = 0
    for m in msgs:
        used += len(wire(b"S", m))
        if used > whole:
            break
        expected.append(m)
    assert found.merged.pieces[0].payloads == expected
    assert any("not in the capture" in n for n in found.notes)


def test_a_file_cut_short_keeps_the_whole_records_and_says_where_it_ends(
    tmp_path: Path,
) -> None:
    msgs = messages(1, 100)
    stream = server_bytes("S1", 1, msgs)
    frames = conversation(stream, cuts=[1000])
    data = pcap_file(frames)
    cut = data[: len(data) - len(frames[-1][1]) - 16 - 300]  # inside the 2nd server segment
    capture = Capture(cut)
    assert capture.fault is not None
    assert "cut short" in capture.fault
    (found,) = capture.streams
    assert found.merged.pieces[0].first == 1
    assert found.merged.count < 100
    assert found.merged.pieces[0].payloads == msgs[: found.merged.count]


def _pcapng(frames: list[tuple[int, bytes]]) -> bytes:
    """pcapng from the spec's block layouts: SHB, IDB (Ethernet, if_tsresol 9: ns), EPBs."""

    def block(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    options = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
    out += block(1, struct.pack("<HHI", 1, 0, 0) + options)
    for time_ns, frame in frames:
        head = struct.pack("<IIIII", 0, time_ns >> 32, time_ns & 0xFFFFFFFF, len(frame), len(frame))
        out += block(6, head + frame)
    return out


def test_pcapng_reads_as_pcap_does(tmp_path: Path) -> None:
    msgs = messages(1, 80)
    frames = conversation(server_bytes("S1", 1, msgs), cuts=[333, 999])
    got, times = imported(tmp_path, _pcapng(frames))
    assert got == msgs
    assert times.times[-1] == T0 + 5 * 1000  # the third server segment completes the last


def mold(session: bytes, sequence: int, msgs: list[bytes]) -> bytes:
    """A MoldUDP64 Downstream packet from the spec: Session 10, Sequence 8, Count 2, blocks."""
    blocks = b"".join(len(m).to_bytes(2, "big") + m for m in msgs)
    return session.ljust(10) + struct.pack(">QH", sequence, len(msgs)) + blocks


def test_moldudp64_duplicates_reorders_and_two_lines_make_one_session(tmp_path: Path) -> None:
    msgs = messages(1, 90)
    packets = [mold(b"MOLD1", 1 + i, msgs[i : i + 3]) for i in range(0, 90, 3)]
    line_a = [udp_frame(("10.0.0.9", 9000), ("239.1.1.1", 5000), p) for p in packets]
    line_b = [udp_frame(("10.0.0.9", 9001), ("239.1.1.2", 5000), p) for p in packets]
    del line_a[5]  # A lost 16..18, B has them
    del line_b[20]  # B lost 61..63, A has them
    order = line_a[:10][::-1] + line_b + line_a[10:] + line_a[:3]  # reordered, duplicated
    frames = [(T0 + i, f) for i, f in enumerate(order)]
    capture = Capture(pcap_file(frames))
    (found,) = capture.streams
    assert found.kind == "MoldUDP64"
    assert found.address == "239.1.1.1:5000, 239.1.1.2:5000"
    assert found.merged.gaps == []
    got, times = imported(tmp_path, pcap_file(frames), session="MOLD1")
    assert got == msgs
    assert times.first_sequence == 1


def test_moldudp64_starting_late_with_a_gap_is_numbered_from_its_header(tmp_path: Path) -> None:
    msgs = messages(1, 60)
    packets = [mold(b"MOLD1", 1 + i, msgs[i : i + 2]) for i in range(20, 60, 2)]
    del packets[4]  # 29..30
    heartbeat = mold(b"MOLD1", 70, [])  # the transmitter is at 70: 61..69 announced too
    frames = [
        (T0 + i, udp_frame(("10.0.0.9", 9000), ("239.1.1.1", 5000), p))
        for i, p in enumerate([*packets, heartbeat])
    ]
    capture = Capture(pcap_file(frames))
    (found,) = capture.streams
    assert found.merged.gaps == [(29, 31)]
    assert any("61..69 announced but not captured" in n for n in found.notes)
    got, times = imported(tmp_path, pcap_file(frames))
    assert got == msgs[20:28]
    assert times.first_sequence == 21


def test_what_is_not_a_capture_or_not_there_is_one_clear_error() -> None:
    with pytest.raises(CaptureError, match="not a pcap or pcapng"):
        Capture(b"SBTCPJNL" + b"\0" * 40)
    capture = Capture(pcap_file([]))
    with pytest.raises(CaptureError, match="no such stream"):
        capture.select(session="NOPE")


@pytest.mark.parametrize("budget", [0, 1 << 20])  # every part in the spool file; none
def test_merging_runs_keeps_the_first_copy_and_names_every_gap_even_of_one(budget: int) -> None:
    from soupbintcp.capture._merge import RunTuple, merge
    from soupbintcp.capture._spool import Spool

    spool = Spool(budget)

    def run(first: int, msgs: list[bytes], times: list[int]) -> RunTuple:
        frames = b"".join(wire(b"S", m) for m in msgs)
        return first, spool.part(frames, len(msgs), array("q", times))

    merged = merge(
        [
            run(5, [b"e", b"f"], [50, 60]),
            run(1, [b"a", b"b"], [10, 20]),
            run(2, [b"b", b"c"], [21, 30]),  # 2 again, then 3
            run(2, [b"X"], [99]),  # a different copy of 2: a conflict, not used
        ]
    )
    assert [(p.first, p.payloads, list(p.times)) for p in merged.pieces] == [
        (1, [b"a", b"b", b"c"], [10, 20, 30]),
        (5, [b"e", b"f"], [50, 60]),
    ]
    assert merged.gaps == [(4, 5)]
    assert (merged.duplicates, merged.conflicts) == (2, 1)
    assert [p.cut(p.first + 1).payloads for p in merged.pieces] == [[b"b", b"c"], [b"f"]]
    assert [list(p.cut(p.first + 1).times) for p in merged.pieces] == [[20, 30], [60]]
    assert (spool.spilled > 0) == (budget == 0)


def test_ipv6_and_linux_cooked_captures_read_as_ethernet_ipv4_does(tmp_path: Path) -> None:
    msgs = messages(1, 6)
    datagram = mold(b"MOLD6", 1, msgs)
    udp = struct.pack(">HHHH", 9000, 5000, 8 + len(datagram), 0) + datagram
    # IPv6 (RFC 8200): version 6, payload length, next header 17 (UDP), hop limit, addresses.
    ipv6 = (
        struct.pack(">IHBB", 6 << 28, len(udp), 17, 64)
        + bytes(15)
        + b"\1"
        + b"\xff\x02"
        + bytes(13)
        + b"\1"
    )
    ethernet = b"\0" * 12 + b"\x86\xdd" + ipv6 + udp
    # Linux cooked (SLL, tcpdump -i any): 16 bytes, the protocol in the last two.
    sll = b"\0\0\0\1\0\6" + bytes(8) + b"\x86\xdd" + ipv6 + udp
    for linktype, frame in ((1, ethernet), (113, sll)):
        data = bytearray(pcap_file([(T0, frame)]))
        data[20:24] = struct.pack("<I", linktype)
        (found,) = Capture(bytes(data)).streams
        assert (found.session, found.address) == ("MOLD6", "[ff02::1]:5000")
        assert found.merged.pieces[0].payloads == msgs


def test_a_rejected_login_is_reported_and_the_accepted_one_still_imports(tmp_path: Path) -> None:
    rejected = [
        (T0, tcp_frame(("10.0.0.5", 40005), SERVER, 10, flags=0x02)),
        (T0 + 1, tcp_frame(SERVER, ("10.0.0.5", 40005), 20, flags=0x12)),
        (T0 + 2, tcp_frame(("10.0.0.5", 40005), SERVER, 11, login_packet("bad", "x", "", 1))),
        (T0 + 3, tcp_frame(SERVER, ("10.0.0.5", 40005), 21, wire(b"J", b"A"))),
    ]
    msgs = messages(1, 20)
    accepted_conn = conversation(server_bytes("S1", 1, msgs), time=T0 + 10)
    capture = Capture(pcap_file(rejected + accepted_conn))
    (found,) = capture.streams
    assert found.connections == 1
    assert found.merged.pieces[0].payloads == msgs
    assert capture.unread == ["10.0.0.5:40005: SoupBinTCP login rejected"]
