"""`soupbintcp tail`: log in and print each message as it arrives."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import click

import soupbintcp

from ._common import ADDRESSES, client_credentials, credential_options, plural, seconds, stderr
from ._connect import connect, tls_options
from ._filters import filter_options, make_filter
from ._ops import client_figures, metrics_option, start_operations
from ._output import MessagePrinter, decode_option, format_option
from ._run import run_async


def start_note(asked: int, accepted: int | None) -> str | None:
    """What to say when the server starts elsewhere than asked (None: where asked)."""
    if accepted is None or asked in (0, accepted):
        return None
    if asked > accepted:
        return (
            f"sequence {asked:,} is beyond the end of the session (the server has "
            f"1..{accepted - 1:,}): starting at {accepted:,}, the next message published"
        )
    return f"the server starts at sequence {accepted:,}, not {asked:,} as asked"


@click.command("tail")
@click.argument("address", type=ADDRESSES)
@credential_options
@click.option("--session", "session_id", default="", help="Session to log into (default: current).")
@click.option(
    "--sequence",
    "--from",
    "sequence",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="First sequence number: 1 = from the start, 0 = only new messages.",
)
@click.option("--to", "to", type=click.IntRange(min=1), help="Stop after sequence number N.")
@filter_options
@click.option("--timestamps", is_flag=True, help="Lead each line with its receive time (UTC, ns).")
@format_option
@decode_option
@click.option("--count", "-n", type=click.IntRange(min=1), help="Stop after N messages.")
@click.option(
    "--reconnect/--no-reconnect",
    default=True,
    show_default=True,
    help="Follow the feed across lost connections, resuming at the next sequence number.",
)
@click.option("--heartbeat-timeout", type=float, default=15.0, show_default=True,
              help=seconds("The link is dead after this long without a packet"))  # fmt: skip
@tls_options
@metrics_option
@click.pass_context
def command(
    ctx: click.Context,
    /,
    address: list[tuple[str, int]],
    user: str | None,
    password: str | None,
    credentials_file: Path | None,
    session_id: str,
    sequence: int,
    to: int | None,
    types: str | None,
    symbols: str | None,
    since: str | None,
    until: str | None,
    protocol: str | None,
    timestamps: bool,
    fmt: str,
    decode: str,
    count: int | None,
    reconnect: bool,
    heartbeat_timeout: float,
    metrics: tuple[str, int] | None,
    **tls: Any,
) -> int:
    """Print the messages of the feed at ADDRESS (HOST:PORT; several, comma-separated, are
    gateways of one feed to fail over between) as they arrive.

    Stops at End of Session (or after --count messages) with a summary on stderr, so that
    stdout stays machine-readable.
    """
    username, secret = client_credentials(user, password, credentials_file)
    printer = MessagePrinter(sys.stdout.buffer, fmt, decode)
    keep = make_filter(types, symbols, since, until, protocol, decode)

    async def main() -> int:
        started = time.monotonic()
        client, accepted = await connect(
            address, username, secret, tls,
            session_id=session_id, sequence=sequence, reconnect=reconnect,
            heartbeat_timeout=heartbeat_timeout,
        )  # fmt: skip
        if note := start_note(sequence, accepted[0] if accepted else None):
            stderr.print(f"note: {note}")
        received = 0
        first = last = None
        end = "interrupted"  # unless the loop below says otherwise
        ops = await start_operations(metrics, client)
        try:
            async for msg in client:
                if msg.sequence is not None:
                    first = msg.sequence if first is None else first
                    last = msg.sequence
                    if to is not None and msg.sequence > to:
                        end = f"after sequence {to:,} (--to)"
                        break
                if keep is None or keep(msg.data):
                    printer.write(msg.sequence, msg.data, time.time_ns() if timestamps else None)
                    received += 1
                if count is not None and received >= count:
                    end = f"after {plural(count, 'message')} (--count)"
                    break
                if to is not None and msg.sequence == to:
                    end = f"after sequence {to:,} (--to)"
                    break
            else:
                end = "end of session"
        except soupbintcp.SoupBinTCPError as exc:
            end = f"{client.close_reason.value if client.close_reason else 'error'}: {exc}"
            raise
        except BrokenPipeError:
            end = ""  # stdout was closed (`| head`): stop quietly
            raise
        finally:
            await ops.aclose()
            if end:
                sys.stdout.buffer.flush()
            if not client.is_closed:
                try:
                    await client.logout()
                except asyncio.CancelledError:  # a second Ctrl-C: do not wait for the logout
                    await client.close()
                    raise
            elapsed = max(time.monotonic() - started, 1e-9)
            span = f", sequence {first:,}..{last:,}" if first is not None and last else ""
            if end:
                stderr.print(
                    f"{plural(received, 'message')} in {elapsed:.2f} s "
                    f"({received / elapsed:,.0f} msg/s){span}{printer.summary()}, "
                    f"{client_figures(client)}; stopped: {end}"
                )
        return 0

    return run_async(main(), ctx.obj["loop"])
