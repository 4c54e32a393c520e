"""Helpers of `pcap info` and `journal import --pcap` / `journal dump --timestamps`: a
capture described, one of its streams made a journal, a journal's capture times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import click

from soupbintcp.capture import (
    Capture,
    CaptureError,
    CaptureTimes,
    Stream,
    choose,
    import_stream,
    times_path,
)
from soupbintcp.store import FileStore

from ._common import UserError, plural, stderr

__all__ = ["CAPTURE", "capture_times", "describe", "import_pcap", "read_capture", "when"]

CAPTURE = click.Path(path_type=Path, dir_okay=False, exists=True)


def when(ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{ns % 1_000_000_000:09d}"


def describe(stream: Stream) -> list[str]:
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
        lines.append(f"  captured   {when(first)} .. {when(last)} UTC")
    else:
        lines.append("  messages   none numbered")
    gaps = merged.gaps
    if gaps:
        shown = ", ".join(f"{a:,}..{b - 1:,}" for a, b in gaps[:10])
        more = f" and {len(gaps) - 10:,} more" if len(gaps) > 10 else ""
        lines.append(f"  gaps       {shown}{more}")
        # What `journal import --pcap --piece K` writes: one unbroken piece per journal.
        for k, piece in enumerate(merged.pieces[:20], 1):
            lines.append(
                f"  piece {k:<4} {piece.first:,}..{piece.end - 1:,} "
                f"({plural(piece.count, 'message')}), captured "
                f"{when(piece.first_time)} .. {when(piece.last_time)} UTC"
            )
        if len(merged.pieces) > 20:
            lines.append(f"  pieces     and {len(merged.pieces) - 20:,} more")
    else:
        lines.append("  gaps       none")
    lines.extend(f"  note       {note}" for note in stream.notes[:20])
    return lines


def read_capture(path: Path, spool: Path | None = None) -> Capture:
    """CAPTURE read; the messages beyond the memory budget wait in a temporary file in
    `spool` (the journal's directory for an import; by default the system's)."""
    return Capture(path, spool=spool)


def capture_times(journal: Path) -> Sequence[int]:
    """The capture times of `journal`'s messages, in its order (its first message at 0)."""
    where = times_path(journal)
    if not where.exists():
        raise UserError(f"{journal} has no capture times ({where.name}: made by import --pcap)")
    return CaptureTimes.read(where).times


def import_pcap(
    capture: Path,
    file: Path,
    stream: str | None,
    session: str | None,
    piece: int | None = None,
    from_sequence: int | None = None,
) -> int:
    """`journal import --pcap`: one unbroken piece of one stream of CAPTURE into the new
    journal FILE, numbered from the piece's first wire number."""
    found = read_capture(capture, file.parent)
    chosen = found.select(stream, session)
    try:
        first = choose(chosen, piece, from_sequence).first
    except CaptureError as exc:
        raise UserError(str(exc)) from None
    if file.exists():
        raise UserError(f"{file} exists already: import into a new journal")
    with FileStore(file, session_id=chosen.session, first_sequence=first) as store:
        report = import_stream(chosen, store, file, piece=piece, from_sequence=from_sequence)
    stderr.print(
        f"imported {plural(report.count, 'message')} ({report.first:,}.."
        f"{report.first + report.count - 1:,}) of {chosen.kind} session {chosen.session!r} "
        f"from {capture} into {file}, numbered as on the wire (capture times in "
        f"{file.name}.times)"
    )
    if report.first != 1:
        stderr.print(
            f"note: the journal starts at message {report.first:,}: "
            + (
                "the capture proves nothing before it"
                if report.first == chosen.first
                else "the capture's messages before it are not in this journal"
            )
        )
    if report.gaps:
        shown = ", ".join(f"{a:,}..{b - 1:,}" for a, b in report.gaps[:5])
        more = f" and {len(report.gaps) - 5:,} more" if len(report.gaps) > 5 else ""
        stderr.print(
            f"note: piece {report.piece} of {report.pieces}; messages {shown}{more} are not "
            f"in the capture: {plural(report.left_out, 'message')} outside this piece left "
            "out (`pcap info` lists the pieces; `--piece K` imports another)"
        )
    if found.fault:
        stderr.print(f"note: the capture file ends early: {found.fault}")
    return 0
