"""Helpers of `pcap info` and `journal import --pcap` / `journal dump --timestamps`: a
capture described, one of its streams made a journal, a journal's capture times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import click

from soupbintcp.capture import Capture, CaptureTimes, Stream, import_stream, times_path
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
    else:
        lines.append("  gaps       none")
    lines.extend(f"  note       {note}" for note in stream.notes[:20])
    return lines


def read_capture(path: Path) -> Capture:
    return Capture(path)


def capture_times(journal: Path) -> Sequence[int]:
    """The capture times of `journal`'s messages (message n at index n - 1)."""
    where = times_path(journal)
    if not where.exists():
        raise UserError(f"{journal} has no capture times ({where.name}: made by import --pcap)")
    return CaptureTimes.read(where).times


def import_pcap(capture: Path, file: Path, stream: str | None, session: str | None) -> int:
    """`journal import --pcap`: one stream of CAPTURE into the new journal FILE."""
    found = read_capture(capture)
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
