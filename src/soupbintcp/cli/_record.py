"""`soupbintcp record`: record a feed's sequenced stream into a journal or a BinaryFILE.

Restarted on the same file, it resumes at the next sequence number, so the recording has no
gap and no duplicate however often it is stopped.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress, TextColumn, TimeElapsedColumn

import soupbintcp
import soupbintcp.lowlevel
from soupbintcp.store import Durability

from ._common import (
    ADDRESSES,
    UserError,
    client_credentials,
    credential_options,
    durability_options,
    plural,
    stderr,
)
from ._connect import connect, tls_options
from ._ops import client_figures, metrics_option, start_operations
from ._output import MessagePrinter, decode_option, format_option
from ._run import run_async
from ._sinks import BinaryFileSink, JournalSink, Sink


@click.command("record")
@click.argument("address", type=ADDRESSES)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@credential_options
@click.option("--session", "session_id", default="", help="Session to record (default: current).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "journal", "binaryfile"]),
    default="auto",
    show_default=True,
    help="auto: a journal for *.soup, else a BinaryFILE.",
)
@click.option("--count", "-n", type=click.IntRange(min=1), help="Stop after N new messages.")
@click.option(
    "--reconnect/--no-reconnect",
    default=True,
    show_default=True,
    help="Follow the feed across lost connections, resuming at the next number.",
)
@durability_options
@click.option(
    "--print",
    "print_",
    is_flag=True,
    help="Also print each message on stdout as it is recorded (see --print-format).",
)
@lambda f: format_option(f, "--print-format", "print_fmt")
@decode_option
@tls_options
@metrics_option
@click.pass_context
def command(
    ctx: click.Context,
    /,
    address: list[tuple[str, int]],
    file: Path,
    user: str | None,
    password: str | None,
    credentials_file: Path | None,
    session_id: str,
    fmt: str,
    count: int | None,
    reconnect: bool,
    durability: str,
    fsync: bool,
    print_: bool,
    print_fmt: str,
    decode: str,
    metrics: tuple[str, int] | None,
    **tls: Any,
) -> int:
    """Record the sequenced stream of the feed at ADDRESS into FILE (HOST:PORT; several,
    comma-separated, are gateways of one feed to fail over between).

    A journal (*.soup) can be served again with `soupbintcp serve --store FILE`; a BinaryFILE
    is Nasdaq's ITCH file format. Restarted on the same FILE, recording resumes at the next
    sequence number: no gap, no duplicate.
    """
    username, secret = client_credentials(user, password, credentials_file)
    journal = fmt == "journal" or (fmt == "auto" and file.suffix == ".soup")
    printer = MessagePrinter(sys.stdout.buffer, print_fmt, decode) if print_ else None
    policy = Durability(durability)

    def open_sink(session: str | None) -> Sink:
        if journal:
            return JournalSink(file, session, policy, fsync)
        return BinaryFileSink(file, session)

    # An existing recording says where to resume and in which session; a new journal is
    # created once the login has named the session, so that its header records it.
    existing = open_sink(session_id or None) if file.exists() else None
    if existing is None and not os.access(file.parent, os.W_OK):
        why = "no such directory" if not file.parent.is_dir() else "not writable"
        raise UserError(f"cannot create {file}: {why}: {file.parent}")

    async def main() -> int:
        first = existing.count + 1 if existing else 1
        client, accepted = await connect(
            address,
            username,
            secret,
            tls,
            session_id=session_id or (existing.session_id if existing else None) or "",
            sequence=first,
            reconnect=reconnect,
            wait_for_server=reconnect,  # a recorder may be started before its server
        )
        if accepted and accepted[0] < first:
            # The server's session ends before the recording does: a different session or a
            # lost journal. Appending its messages would record numbers twice.
            await client.close()
            if existing is not None:
                existing.close()
            raise UserError(
                f"the server's next sequence number is {accepted[0]}, but {file} already "
                f"holds 1..{first - 1}: not the same session, refusing to append"
            )
        sink = existing or open_sink(client.session_id)
        stderr.print(
            f"recording session {client.session_id!r} from sequence {first} into {file}"
            + (f" ({sink.count:,} messages already there)" if sink.count else "")
        )
        started = time.monotonic()
        recorded = 0
        nbytes = 0
        progress = Progress(
            TextColumn("[bold]{task.fields[recorded]:>12,}[/] messages"),
            TextColumn("{task.fields[mb]:>9.1f} MB"),
            TextColumn("{task.fields[rate]:>10,.0f} msg/s"),
            TextColumn("sequence {task.fields[seq]:,}"),
            TimeElapsedColumn(),
            console=stderr,
            disable=not stderr.is_terminal,
        )
        task = progress.add_task("record", recorded=0, mb=0.0, rate=0.0, seq=first - 1)
        ops = await start_operations(metrics, client)
        try:
            with progress:
                async for batch in client.batches():
                    for item in batch:
                        if type(item) is not soupbintcp.lowlevel.SequencedMessages:
                            continue
                        messages = item.messages
                        if count is not None and recorded + len(messages) > count:
                            messages = messages[: count - recorded]
                        sink.write(messages)
                        if printer is not None:
                            for offset, data in enumerate(messages):
                                printer.write(item.first_sequence + offset, data)
                        recorded += len(messages)
                        nbytes += sum(map(len, messages))
                    elapsed = max(time.monotonic() - started, 1e-9)
                    progress.update(
                        task,
                        recorded=recorded,
                        mb=nbytes / 1e6,
                        rate=recorded / elapsed,
                        seq=sink.count,
                    )
                    if count is not None and recorded >= count:
                        break
        finally:
            await ops.aclose()
            if printer is not None:
                sys.stdout.buffer.flush()
            if not client.is_closed:
                await client.logout()
            sink.close()
            elapsed = max(time.monotonic() - started, 1e-9)
            warned = printer.summary() if printer is not None else ""
            stderr.print(
                f"recorded {plural(recorded, 'message')} ({nbytes / 1e6:.1f} MB) in "
                f"{elapsed:.2f} s, {recorded / elapsed:,.0f} msg/s{warned}; {file} now holds "
                f"sequence 1..{sink.count:,}; {client_figures(client)}"
            )
        return 0

    return run_async(main(), ctx.obj["loop"])
