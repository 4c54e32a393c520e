"""`soupbintcp demo`: the project's main job in one command.

A server on a fresh journal publishes a synthetic feed; a client logs in from sequence 1,
receives it with a live progress display, loses its connection half way and resumes; then
the demo checks every message (exactly once, in order, every byte) and prints a verdict.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

import soupbintcp
import soupbintcp.lowlevel
from soupbintcp.store import FileStore

from ._common import plural, stderr
from ._run import run_async
from ._synthetic import CYCLE, PREAMBLE, synthetic_message, synthetic_messages

BATCH = 2000


@click.command("demo")
@click.option("--messages", "-n", type=click.IntRange(min=1), default=1_000_000, show_default=True)
@click.option("--keep", type=click.Path(path_type=Path, file_okay=False),
              help="Keep the journal in this directory instead of a temporary one.")  # fmt: skip
@click.pass_context
def command(ctx: click.Context, messages: int, keep: Path | None) -> int:
    """A server on a fresh journal, a synthetic feed and a client receiving it, with a verdict."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return run_async(_demo(keep / "demo.soup", messages), ctx.obj["loop"])
    with tempfile.TemporaryDirectory(prefix="soupbintcp-demo-") as tmp:
        return run_async(_demo(Path(tmp) / "demo.soup", messages), ctx.obj["loop"])


async def _demo(path: Path, total: int) -> int:
    store = FileStore(path, session_id="DEMO")
    server = await soupbintcp.serve(
        ("127.0.0.1", 0), store=store, session_id="DEMO", credentials={"demo": "demo"}
    )
    host, port = server.address[:2]
    stderr.print(
        f"[bold]server[/] listening on {host}:{port}, session 'DEMO', journal {escape(str(path))}",
        markup=True,
    )

    async def publish() -> None:
        first = 1
        while first <= total:
            n = min(BATCH, total - first + 1)
            server.publish_many(synthetic_messages(first, n))
            first += n
            await asyncio.sleep(0)  # let the client run between batches
        await server.end_session()

    started = time.monotonic()
    publisher = asyncio.create_task(publish())
    client = await soupbintcp.connect_async(
        server.address, "demo", "demo", sequence=1, reconnect=True
    )
    stderr.print(
        f"[bold]client[/] logged in and asked for sequence 1: it receives all {total:,} "
        "messages, checking each against the feed's formula",
        markup=True,
    )
    progress = Progress(
        TextColumn("[bold]received"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>10,.0f} msg/s"),
        TextColumn("reconnects {task.fields[reconnects]}"),
        TimeElapsedColumn(),
        console=stderr,
        disable=not stderr.is_terminal,
    )
    task = progress.add_task("receive", total=total, rate=0.0, reconnects=0)
    expected = 1
    bad = 0
    cut_done = False
    with progress:
        async for batch in client.batches():
            for item in batch:
                if type(item) is not soupbintcp.lowlevel.SequencedMessages:
                    continue
                if item.first_sequence != expected:
                    bad += 1
                for offset, data in enumerate(item.messages):
                    if data != synthetic_message(item.first_sequence + offset):
                        bad += 1
                expected = item.next_sequence
            if not cut_done and expected > total // 2:
                cut_done = True
                # A link failure half way, on purpose: the client reconnects and resumes.
                progress.console.print(
                    f"[bold]demo[/] cutting the client's connection on purpose at sequence "
                    f"{expected - 1:,}, to show that it reconnects and resumes where it was "
                    "(the log lines that follow are expected)",
                    markup=True,
                )
                for connection in server.connections:
                    connection.close()
            elapsed = max(time.monotonic() - started, 1e-9)
            progress.update(
                task,
                completed=expected - 1,
                rate=(expected - 1) / elapsed,
                reconnects=client.reconnects,
            )
    elapsed = max(time.monotonic() - started, 1e-9)
    await publisher
    await client.close()
    await server.close()
    journal_bytes = path.stat().st_size
    store.close()
    received = expected - 1
    ok = (
        bad == 0
        and received == total
        and client.close_reason is soupbintcp.CloseReason.END_OF_SESSION
    )
    stderr.print(
        f"{received:,} messages in {elapsed:.2f} s: {received / elapsed:,.0f} msg/s end to end "
        f"(publish, journal, send, receive, check), {plural(client.reconnects, 'reconnect')}, "
        f"journal {journal_bytes / 1e6:.1f} MB"
    )
    _show_decoded(total)
    if ok:
        stderr.print(
            f"[bold green]verdict: OK[/] every message 1..{total:,} received exactly once, "
            "in order, byte for byte, across a lost connection",
            markup=True,
        )
        return 0
    stderr.print(
        f"[bold red]verdict: FAILED[/] received {received:,} of {total:,}, {bad} mismatches, "
        f"ended by {escape(str(client.close_reason))}",
        markup=True,
    )
    return 1


def _show_decoded(total: int) -> None:
    """What the feed says: a few of its messages decoded as ITCH 5.0 (with the itch extra)."""
    try:
        from soupbintcp import itch

        itch.ensure_installed()
    except ImportError:
        stderr.print("(pip install 'soupbintcp[itch]' to see the messages decoded as ITCH 5.0)")
        return
    sample = [1, 2, PREAMBLE, PREAMBLE + 1, PREAMBLE + 7, PREAMBLE + 17, PREAMBLE + CYCLE - 3]
    stderr.print("the feed is ITCH 5.0; some of its messages, decoded:")
    for sequence in (s for s in sample if s <= total):
        stderr.print(f"  {sequence:>4}  {itch.to_text(itch.decode(synthetic_message(sequence)))}")
