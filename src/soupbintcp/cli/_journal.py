"""`soupbintcp journal info|dump|verify|export|import`: a journal looked at offline.

Everything but `import` reads through `JournalReader`: read-only, no lock, so it works while
a server holds the journal open for writing, and sees what the file holds in whole records
(what is durable) at the moment it opens.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from soupbintcp.store import (
    BinaryFileWriter,
    FileStore,
    JournalCorruptError,
    JournalReader,
    JournalReport,
    import_binaryfile,
)

from ._captures import capture_times, import_pcap
from ._common import UserError, plural, stderr
from ._filters import filter_options, make_filter
from ._output import MessagePrinter, decode_option, format_option

__all__ = ["group"]

_CHUNK = 10_000  # messages read at a time
_JOURNAL = click.Path(path_type=Path, dir_okay=False, exists=True)


def _open(path: Path) -> JournalReader:
    return JournalReader(path)  # a missing or foreign file: StoreError, one line


@click.group("journal")
def group() -> None:
    """Look at a journal (*.soup) without serving it; safe beside a running server."""


def _itch_times(reader: JournalReader) -> str | None:
    """The ITCH timestamps of the first and last messages, where they decode as ITCH 5.0."""
    try:
        from soupbintcp import itch

        itch.ensure_installed()
    except ImportError:
        return None
    if reader.count < reader.first_sequence:
        return None
    ends = []
    for sequence in dict.fromkeys((reader.first_sequence, reader.count)):
        try:
            data = reader.read(sequence, 1)[0]
        except JournalCorruptError:
            return None  # the checksums line says where
        message = itch.Decoder().decode(data)
        ends.append(str(message.fields["timestamp"]) if message.ok else "not ITCH 5.0")
    if all(end == "not ITCH 5.0" for end in ends):
        return None
    return f"first {ends[0]}, last {ends[-1]}"


@group.command("info")
@click.argument("file", type=_JOURNAL)
def info(file: Path) -> int:
    """Session, messages, size, sequence range, durability, index state, ITCH times."""
    with _open(file) as reader:
        report = reader.verify()
        session = repr(reader.session_id) if reader.session_id else "none recorded"
        lines = [
            f"journal      {file} (format {report.version})",
            f"session      {session}, "
            + ("ended (End of Session sent)" if report.ended else "not ended"),
            f"messages     {report.messages:,}"
            + (
                f" (sequence {report.first_sequence:,}..{report.last_sequence:,})"
                if report.messages
                else ""
            )
            + (
                f"; the journal starts at message {report.first_sequence:,}"
                if report.first_sequence != 1
                else ""
            ),
            f"size         {report.size:,} bytes",
            "durability   every whole record in the file is durable; "
            + (
                f"{report.tail_bytes:,} bytes after the last are not ({report.tail_problem})"
                if report.tail_bytes
                else "nothing after the last"
            ),
            f"index        {report.index}",
            f"checksums    {_checksums_line(report)}",
        ]
        if times := _itch_times(reader):
            lines.append(f"ITCH time    {times}")
    click.echo("\n".join(lines))
    return 0


def _checksums_line(report: JournalReport) -> str:
    if report.checksums == "bad":
        return (
            f"BAD: damage starts at message {report.damage_message:,}, offset "
            f"{report.damage_offset:,}; nothing from there on is served"
        )
    if report.checksums == "none":
        return "none (format 1: a server opening it adds them)"
    if report.checksums == "missing":
        return "missing (the .crc file is lost or not this journal's): records checked by structure"
    if report.unchecked_bytes:
        return f"ok; the last {report.unchecked_bytes:,} bytes are not covered yet"
    return "ok"


@group.command("dump")
@click.argument("file", type=_JOURNAL)
@click.option("--from", "first", type=click.IntRange(min=1),
              help="First sequence number (default: the journal's first).")  # fmt: skip
@click.option("--to", "to", type=click.IntRange(min=1), help="Last sequence number.")
@click.option("--count", "-n", type=click.IntRange(min=1), help="At most N messages shown.")
@filter_options
@format_option
@decode_option
@click.option(
    "--timestamps",
    is_flag=True,
    help="Lead each line with the message's capture time (UTC, ns), from FILE.times "
    "(written by `journal import --pcap`).",
)
def dump(
    file: Path, first: int | None, to: int | None, count: int | None, fmt: str, decode: str,
    timestamps: bool, **find: str | None,
) -> int:  # fmt: skip
    """Print the messages of FILE, one a line, as `tail` does, under their sequence numbers
    (as on the wire: a journal imported from a capture that joined the session late starts
    at its first captured number); --type, --symbol, --since/--until and --from/--to pick
    which."""
    printer = MessagePrinter(sys.stdout.buffer, fmt, decode)
    times = capture_times(file) if timestamps else None
    keep = make_filter(**find, decode=decode)
    shown = 0
    with _open(file) as reader:
        start = reader.first_sequence
        first = start if first is None else max(first, start)
        last = reader.count if to is None else min(reader.count, to)
        if first > reader.count:
            held = reader.count - start + 1
            stderr.print(
                f"note: {file} holds {plural(held, 'message')}"
                + (f" ({start:,}..{reader.count:,})" if held and start != 1 else "")
                + f": none from {first:,}"
            )
        if keep is not None and find.get("symbols") and first > start:
            # The symbols' Stock Locates (or orders) are named before --from: learn them.
            for batch in _batches(reader, start, min(first - 1, reader.count)):
                for data in batch:
                    keep(data)
        sequence = first
        for batch in _batches(reader, first, last):
            for offset, data in enumerate(batch):
                if keep is not None and not keep(data):
                    continue
                at = sequence + offset
                i = at - start  # the times are in the journal's order
                printer.write(at, data, times[i] if times and i < len(times) else None)
                shown += 1
                if count is not None and shown >= count:
                    break
            else:
                sequence += len(batch)
                continue
            break
    sys.stdout.buffer.flush()
    stderr.print(f"{plural(shown, 'message')}{printer.summary()}")
    return 0


def _batches(reader: JournalReader, first: int, last: int) -> Iterator[list[bytes]]:
    """Messages first..last in chunks."""
    sequence = first
    while sequence <= last:
        batch = reader.read(sequence, min(_CHUNK, last - sequence + 1))
        if not batch:
            return
        yield batch
        sequence += len(batch)


@group.command("verify")
@click.argument("file", type=_JOURNAL)
def verify(file: Path) -> int:
    """Check every record against its checksum and the index against the records; exit 0
    if all is well, 1 if not (saying where the damage starts)."""
    with _open(file) as reader:
        report = reader.verify()
    problems = []
    if report.checksums == "bad":
        problems.append(
            f"CORRUPT from message {report.damage_message:,} at offset "
            f"{report.damage_offset:,} (a checksum does not match)"
        )
    elif report.corrupt:
        problems.append(
            f"CORRUPT from message {report.damage_message:,} at offset {report.end:,}:"
            f" {report.tail_problem}"
        )
    elif report.tail_problem:
        problems.append(
            f"{report.tail_bytes:,} bytes after the last whole record ({report.tail_problem}): "
            "a write in progress if a server has it open, else a torn record the next open cuts"
        )
    if report.checksums == "missing":
        problems.append("checksums missing (the .crc file is lost or not this journal's)")
    if report.index != "ok":
        problems.append(f"index {report.index} (rebuilt when a server next opens the journal)")
    summary = f"{file}: {plural(report.messages, 'whole record')}"
    if report.first_sequence != 1:
        summary += f" (messages {report.first_sequence:,}..{report.last_sequence:,})"
    summary += f", {report.size:,} bytes"
    if not problems:
        click.echo(f"{summary}: OK")
        return 0
    click.echo(f"{summary}: " + "; ".join(problems))
    return 1


@group.command("export")
@click.argument("file", type=_JOURNAL)
@click.option(
    "--binaryfile",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The BinaryFILE to write (Nasdaq's ITCH file format).",
)
@click.option("--from", "first", type=click.IntRange(min=1),
              help="First sequence number (default: the journal's first).")  # fmt: skip
@click.option("--to", "to", type=click.IntRange(min=1), help="Last sequence number.")
@click.option("--since", metavar="HH:MM[:SS]", help="ITCH: only messages at or after this time.")
@click.option("--until", metavar="HH:MM[:SS]", help="ITCH: only messages before this time.")
def export(
    file: Path, out: Path, first: int | None, to: int | None, since: str | None,
    until: str | None,
) -> int:  # fmt: skip
    """Write the messages of FILE (or of a range of it) as a Nasdaq BinaryFILE."""
    if out.exists():
        raise UserError(f"{out} exists already: give a new --binaryfile")
    keep = make_filter(None, None, since, until, "itch50")
    with _open(file) as reader:
        writer = BinaryFileWriter(out)
        try:
            last = reader.count if to is None else min(reader.count, to)
            start = reader.first_sequence
            for batch in _batches(reader, start if first is None else max(first, start), last):
                writer.write(batch if keep is None else [m for m in batch if keep(m)])
        finally:
            writer.close()
    stderr.print(f"exported {plural(writer.count, 'message')} from {file} to {out}")
    return 0


@group.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--session",
    "session_id",
    help="Session id to record in a new journal (serve's default: SESSION1); with --pcap, "
    "the session to import.",
)
@click.option(
    "--pcap",
    "capture",
    type=_JOURNAL,
    help="Import from this pcap/pcapng capture instead (see `soupbintcp pcap info`).",
)
@click.option(
    "--stream",
    help="With --pcap: the server (SoupBinTCP) or group (MoldUDP64) HOST:PORT to import.",
)
@click.option(
    "--piece",
    type=click.IntRange(min=1),
    help="With --pcap: import piece K (counted from 1, as `pcap info` lists them) instead "
    "of the first.",
)
@click.option(
    "--from-sequence",
    type=click.IntRange(min=1),
    help="With --pcap: import the piece that holds message N, from N on.",
)
def import_(
    paths: tuple[Path, ...], session_id: str | None, capture: Path | None, stream: str | None,
    piece: int | None, from_sequence: int | None,
) -> int:  # fmt: skip
    """Append the messages of a Nasdaq BINARYFILE to a journal FILE: `import BINARYFILE
    FILE`; or those of one stream of a capture: `import --pcap CAPTURE FILE`, into a new
    journal numbered as on the wire, with the capture times kept in FILE.times.

    A journal holds no hole, so a capture import writes one unbroken piece of the stream:
    the first by default, another with --piece K or --from-sequence N (each into its own
    journal, starting at its own wire number). Gaps are reported, never filled. Memory
    stays within 32 MiB of messages whatever the capture's size: the rest waits in an
    unnamed temporary file in FILE's directory until the piece is known and written.

    A BINARYFILE import is resumable: killed half-way, run the same command again. The
    messages FILE holds already are checked, byte for byte, to be the first of BINARYFILE,
    and the import continues after them (FILE is refused if they differ)."""
    if capture is not None:
        if len(paths) != 1:
            raise click.UsageError("with --pcap, give only the journal FILE to write")
        if piece is not None and from_sequence is not None:
            raise click.UsageError("give --piece or --from-sequence, not both")
        return import_pcap(capture, paths[0], stream, session_id or None, piece, from_sequence)
    if piece is not None or from_sequence is not None:
        raise click.UsageError("--piece and --from-sequence go with --pcap")
    if len(paths) != 2 or stream is not None:
        raise click.UsageError("give BINARYFILE and FILE (or --pcap CAPTURE and FILE)")
    binaryfile, file = paths
    if not binaryfile.is_file():
        raise click.UsageError(f"BINARYFILE {str(binaryfile)!r} does not exist")
    with FileStore(file, session_id=session_id or None) as store:
        held = store.count
        if held:
            stderr.print(
                f"{file} holds {plural(held, 'message')} already: checking they are the "
                f"first of {binaryfile}, then importing the rest"
            )
        imported = import_binaryfile(binaryfile, store, resume=True)
    stderr.print(f"imported {plural(imported, 'message')} from {binaryfile} into {file}")
    return 0
