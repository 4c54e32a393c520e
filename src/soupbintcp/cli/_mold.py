"""`soupbintcp mold serve|tail|record|gateway`: MoldUDP64 on the command line."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import click

from soupbintcp.moldudp64 import (
    Transmitter,
    serve_requests,
    transmit,
)
from soupbintcp.store import Durability, FileStore
from soupbintcp.store import import_binaryfile as import_binary_file

from ._common import (
    ADDRESS,
    DEFAULT_SESSION,
    DEFAULT_STORE,
    UserError,
    describe_error,
    library_default,
    plural,
    stderr,
)
from ._generate import generate as generate_feed
from ._generate import into_store
from ._mold_lines import binding, group_option, interface_option, named, session_option
from ._mold_lines import listen_lines as _listen
from ._mold_lines import summary as _summary
from ._output import MessagePrinter, decode_option, format_option
from ._run import run_async
from ._signals import Stop
from ._sinks import BinaryFileSink, JournalSink, Sink

Address = tuple[str, int]


@click.group("mold")
def command() -> None:
    """MoldUDP64: multicast transmitter, listener, recorder and gateway.

    \b
    soupbintcp mold serve --group 239.1.1.1:5000 --request-listen :5001 --generate 10000
    soupbintcp mold tail --group 239.1.1.1:5000 --request 127.0.0.1:5001
    soupbintcp mold record --group 239.1.1.1:5000 --request 127.0.0.1:5001 feed.soup
    soupbintcp mold gateway --group 239.1.1.1:5000 --request 127.0.0.1:5001 --listen :7000
    """


# `mold gateway` is its own module (`_mold_gateway`); `_app` adds it to this group.


def _stop_event() -> Stop:
    return Stop()  # the first Ctrl-C or SIGTERM stops, the second at once


class _StoreFeed:
    """What `into_store` publishes into: the journal itself (the transmitter reads it)."""

    def __init__(self, store: FileStore) -> None:
        self.store = store

    def publish_many(self, messages: list[bytes]) -> int:
        return self.store.append_many(messages)


@command.command("serve")
@group_option
@click.option("--request-listen", type=ADDRESS, required=True, help="Re-request server HOST:PORT.")
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_STORE,
    show_default=True,
    help="Journal to transmit and answer from; created if missing.",
)
@click.option("--session", "session_id", help="Session id (default: the journal's, or SESSION1).")
@click.option("--generate", type=click.FloatRange(min=0, min_open=True), metavar="RATE",
              help="Append a synthetic feed at RATE messages per second.")  # fmt: skip
@click.option(
    "--import-binaryfile",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Transmit a Nasdaq BinaryFILE: imported into the journal, resumably (an interrupted "
    "import goes on after what the journal holds, once checked to be the file's first).",
)
@interface_option
@click.option("--ttl", type=click.IntRange(0, 255), show_default=True,
              default=library_default(Transmitter, "ttl"))  # fmt: skip
@click.option("--end-linger", type=float, show_default=True,
              default=library_default(Transmitter.end_session, "linger"),
              help="Seconds of End of Session (re-requests answered) after Ctrl-C.")  # fmt: skip
@click.pass_context
def serve_command(
    ctx: click.Context,
    group: tuple[Address, ...],
    request_listen: Address,
    store_path: Path,
    session_id: str | None,
    generate: float | None,
    import_binaryfile: Path | None,
    interface: str | None,
    ttl: int,
    end_linger: float,
) -> int:
    """Transmit the journal at --store on MoldUDP64 until Ctrl-C, answering re-requests.

    Heartbeats flow while idle; Ctrl-C sends End of Session at the next sequence number for
    --end-linger seconds, still answering re-requests, then exits.
    """

    if generate is not None and import_binaryfile is not None:
        raise UserError("give --generate or --import-binaryfile, not both")
    store_path.parent.mkdir(parents=True, exist_ok=True)
    store = FileStore(store_path, session_id=session_id or None)
    try:
        session = session_id or store.session_id or DEFAULT_SESSION
        first = store.count + 1
        if import_binaryfile is not None:
            imported = import_binary_file(import_binaryfile, store, resume=True)
            stderr.print(f"imported {imported:,} messages from {import_binaryfile}")

        async def main() -> int:
            stop = _stop_event()
            with binding("the re-request server", request_listen):
                requests = await serve_requests(store, request_listen, session_id=session)
            with binding(f"the transmitter of {named(group)}"):
                lines = [
                    await transmit(
                        store, line, session_id=session, interface=interface, ttl=ttl, first=first
                    )
                    for line in group
                ]
            tx = lines[0]
            stderr.print(
                f"transmitting session {session!r} from {store.path} ({store.count:,} "
                f"messages) on {named(group)}; re-requests on "
                f"{requests.address[0]}:{requests.address[1]}"
            )
            feed = _StoreFeed(store)
            loop = asyncio.get_running_loop()
            generator = (
                loop.create_task(generate_feed(into_store(feed), generate, stop.event))
                if generate
                else None
            )
            try:
                await stop.wait()
            finally:
                if generator is not None:
                    await generator
                stderr.print(f"ending session {session!r}")
                stop.waiting(f"End of Session on the group for {end_linger:g} s (--end-linger)")
                await asyncio.gather(*(line.end_session(linger=end_linger) for line in lines))
                for line in lines:
                    await line.close()
                await requests.close()
                failed = sum(line.send_failures for line in lines)
                failures = f"; {failed:,} sends failed" if failed else ""
                stderr.print(
                    f"stopped: {tx.messages_sent:,} messages in {tx.packets_sent:,} packets"
                    f"{failures}; {requests.answers:,} answers, {requests.rate_limited:,} "
                    f"rate-limited, {requests.malformed + requests.other_session:,} ignored"
                )
            if not any(line.sends_ok for line in lines) and tx.last_error is not None:
                raise UserError(
                    f"nothing could be sent to {named(group)}: "
                    f"{describe_error(tx.last_error)} (is there a route for multicast? give "
                    "the address of the interface to send from: --interface ADDR)"
                )
            return 0

        return run_async(main(), ctx.obj["loop"])
    finally:
        store.close()


@command.command("tail")
@group_option
@click.option("--request", type=ADDRESS, required=True, help="Re-request server HOST:PORT.")
@click.option(
    "--sequence",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="First sequence number: 1 = the whole session (back-filled), 0 = the next packet.",
)
@click.option("--count", "-n", type=click.IntRange(min=1), help="Stop after N messages.")
@format_option
@decode_option
@interface_option
@session_option
@click.pass_context
def tail_command(
    ctx: click.Context,
    group: tuple[Address, ...],
    request: Address,
    sequence: int,
    count: int | None,
    fmt: str,
    decode: str,
    interface: str | None,
    session_id: str | None,
) -> int:
    """Print each message of the MoldUDP64 session on --group, in order, exactly once.

    Stops at End of Session (or after --count messages) with a summary on stderr.
    """

    printer = MessagePrinter(sys.stdout.buffer, fmt, decode)

    async def main() -> int:
        started = time.monotonic()
        listener = await _listen(group, request, sequence, session_id, interface)
        stderr.print(
            f"listening to {named(group)} from sequence {sequence or 'the next packet'}"
            f", re-requests to {request[0]}:{request[1]}"
        )
        received = 0
        end = "end of session"
        try:
            async for msg in listener:
                printer.write(msg.sequence, msg.data)
                received += 1
                if count is not None and received >= count:
                    end = f"after {plural(count, 'message')} (--count)"
                    break
        finally:
            sys.stdout.buffer.flush()
            await listener.close()
            stderr.print(_summary(listener, received, started, end) + printer.summary())
        return 0

    return run_async(main(), ctx.obj["loop"])


@command.command("record")
@group_option
@click.option("--request", type=ADDRESS, required=True, help="Re-request server HOST:PORT.")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "journal", "binaryfile"]),
    default="auto",
    show_default=True,
    help="auto: a journal for *.soup, else a BinaryFILE.",
)
@click.option("--count", "-n", type=click.IntRange(min=1), help="Stop after N new messages.")
@interface_option
@session_option
@click.pass_context
def record_command(
    ctx: click.Context,
    group: tuple[Address, ...],
    request: Address,
    file: Path,
    fmt: str,
    count: int | None,
    interface: str | None,
    session_id: str | None,
) -> int:
    """Record the MoldUDP64 session on --group into FILE, resuming without gap or duplicate.

    A journal (*.soup) can then be served with `soupbintcp serve` or `mold serve`.
    """

    journal = fmt == "journal" or (fmt == "auto" and file.suffix == ".soup")

    def open_sink(session: str | None) -> Sink:
        if journal:
            return JournalSink(file, session, Durability.PUBLISH, False)
        return BinaryFileSink(file, session)

    existing = open_sink(session_id) if file.exists() else None

    async def main() -> int:
        sink = existing
        first = sink.count + 1 if sink is not None else 1
        session = session_id or (sink.session_id if sink is not None else None)
        started = time.monotonic()
        listener = await _listen(group, request, first, session, interface)
        recorded = 0
        end = "end of session"
        try:
            async for batch in listener.batches():
                if sink is None:
                    sink = open_sink(listener.session_id)
                for run in batch:
                    messages = run.messages
                    if count is not None and recorded + len(messages) > count:
                        messages = messages[: count - recorded]
                    sink.write(messages)
                    recorded += len(messages)
                if count is not None and recorded >= count:
                    end = f"after {plural(count, 'message')} (--count)"
                    break
        finally:
            await listener.close()
            if sink is not None:
                sink.close()
            stderr.print(_summary(listener, recorded, started, end))
            if sink is not None:
                stderr.print(f"{file} now holds sequence 1..{sink.count:,}")
        return 0

    return run_async(main(), ctx.obj["loop"])
