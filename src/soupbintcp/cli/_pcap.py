"""`soupbintcp pcap info` and `journal import --pcap`: what a capture holds, and a journal
made of one of its streams."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import click

from soupbintcp.capture import Capture, CaptureTimes, Stream, import_stream, times_path
from soupbintcp.store import FileStore

from ._common import UserError, plural, stderr

__all__ = ["capture_times", "group", "import_pcap"]

_CAPTURE = click.Path(path_type=Path, dir_okay=False, exists=True)


def _when(ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{ns % 1_000_000_000:09d}"


def _describe(stream: Stream) -> list[str]:
    merged = stream.merged
    head = f"{stream.kind} {stream.address} session {stream.session!r}"
    if stream.kind == "SoupBinTCP":
        head += f", {plural(stream.connections, 'login')}"
    else:
        head += f", {plural(stream.packets, 'packet')}"
    lines = [head]
    if merged.pieces:
        lines.append(
            f"  messages   {merged.count:,} numbered {stream.first:,}..{stream.last:,}"
            + (f", {merged.duplicates:,} duplicates" if merged.duplicates else "")
            + (f", {merged.conflicts:,} CONFLICTING copies" if merged.conflicts else "")
        )
        first, last = stream.times or (0, 0)
        lines.append(f"  captured   {_when(first)} .. {_when(last)} UTC")
    else:
        lines.append("  messages   none numbered")
    gaps = merged.gaps
    if gaps:
        shown = ", ".join(f"{a:,}..{b - 1:,}" for a, b in gaps[:10])
        more = f" and {len(gaps) - 10:,} more" if len(gaps) > 10 else ""
        lines.append(f"  gaps       {shown}{more}")
    else:
        lines.append("  gaps       none")
    lines.extend(f"  note       {note}" for note in stream.notes[:20])
    return lines


def _read(path: Path) -> Capture:
    return Capture(path.read_bytes())


@click.group("pcap")
def group() -> None:
    """Read SoupBinTCP and MoldUDP64 out of pcap / pcapng captures (tcpdump, Wireshark)."""


@group.command("info")
@click.argument("capture", type=_CAPTURE)
def info(capture: Path) -> int:
    """The SoupBinTCP conversations (every TCP connection reassembled, both directions) and
    MoldUDP64 sessions in CAPTURE: sessions, sequence numbers, counts, gaps, capture times."""
    found = _read(capture)
    lines = [
        f"capture      {capture} ({found.format}), {plural(found.records, 'packet')}"
        + (f", {found.truncated:,} cut by the snapshot length" if found.truncated else ""),
        f"packets      {found.tcp_segments:,} TCP, {found.udp_datagrams:,} UDP, "
        f"{found.other_packets:,} other",
    ]
    if found.records:
        lines.append(f"captured     {_when(found.first_time)} .. {_when(found.last_time)} UTC")
    if found.fault:
        lines.append(f"file         ends early: {found.fault}")
    for stream in found.streams:
        lines.extend(_describe(stream))
    lines.extend(f"not read     {why}" for why in found.unread[:20])
    if not found.streams:
        lines.append("streams      no SoupBinTCP or MoldUDP64 found")
    click.echo("\n".join(lines))
    return 0


def capture_times(journal: Path) -> Sequence[int]:
    """The capture times of `journal`'s messages (message n at index n - 1)."""
    where = times_path(journal)
    if not where.exists():
        raise UserError(f"{journal} has no capture times ({where.name}: made by import --pcap)")
    return CaptureTimes.read(where).times


def import_pcap(capture: Path, file: Path, stream: str | None, session: str | None) -> int:
    """`journal import --pcap`: one stream of CAPTURE into the new journal FILE."""
    found = _read(capture)
    chosen = found.select(stream, session)
    if not chosen.merged.pieces:
        raise UserError(f"{chosen.kind} session {chosen.session!r}: no message can be numbered")
    with FileStore(file, session_id=chosen.session) as store:
        if store.count:
            raise UserError(
                f"{file} already holds {plural(store.count, 'message')}: import into a new journal"
            )
        report = import_stream(chosen, store, file)
    stderr.print(
        f"imported {plural(report.count, 'message')} ({report.first:,}.."
        f"{report.first + report.count - 1:,}) of {chosen.kind} session {chosen.session!r} "
        f"from {capture} into {file} (capture times in {file.name}.times)"
    )
    if report.first != 1:
        stderr.print(f"note: the capture proves nothing before message {report.first:,}")
    if report.gaps:
        a, b = report.gaps[0]
        stderr.print(
            f"note: messages {a:,}..{b - 1:,} are not in the capture: "
            f"{plural(report.left_out, 'message')} after them left out"
        )
    if found.fault:
        stderr.print(f"note: the capture file ends early: {found.fault}")
    return 0
