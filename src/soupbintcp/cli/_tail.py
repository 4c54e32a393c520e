"""`soupbintcp tail`: log in and print each message as it arrives."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import BinaryIO

import click

import soupbintcp

from ._common import ADDRESS, client_credentials, credential_options, stderr
from ._run import run_async


def _text(data: bytes) -> str:
    # Printable ASCII as is, everything else escaped: one line per message, always.
    return data.decode("latin-1").encode("unicode_escape").decode("ascii")


class _Printer:
    def __init__(self, out: BinaryIO, fmt: str) -> None:
        self.out = out
        self.fmt = fmt

    def write(self, sequence: int | None, data: bytes) -> None:
        seq = "-" if sequence is None else str(sequence)
        if self.fmt == "jsonl":
            line = json.dumps(
                {"sequence": sequence, "length": len(data), "payload": data.hex()},
                separators=(",", ":"),
            )
        elif self.fmt == "hex":
            line = f"{seq} {data.hex()}"
        else:
            line = f"{seq}\t{_text(data)}"
        self.out.write(line.encode("ascii") + b"\n")


@click.command("tail")
@click.argument("address", type=ADDRESS)
@credential_options
@click.option("--session", "session_id", default="", help="Session to log into (default: current).")
@click.option(
    "--sequence",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="First sequence number: 1 = from the start, 0 = only new messages.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "hex", "jsonl"]),
    default="text",
    show_default=True,
    help="jsonl: one JSON object per message with sequence and hex payload.",
)
@click.option("--count", "-n", type=click.IntRange(min=1), help="Stop after N messages.")
@click.option(
    "--reconnect/--no-reconnect",
    default=True,
    show_default=True,
    help="Follow the feed across lost connections, resuming at the next sequence number.",
)
@click.option("--heartbeat-timeout", type=float, default=15.0, show_default=True)
@click.option("--tls", is_flag=True, help="Connect with TLS (system trust store).")
@click.pass_context
def command(
    ctx: click.Context,
    address: tuple[str, int],
    user: str | None,
    password: str | None,
    credentials_file: Path | None,
    session_id: str,
    sequence: int,
    fmt: str,
    count: int | None,
    reconnect: bool,
    heartbeat_timeout: float,
    tls: bool,
) -> int:
    """Print the messages of the feed at ADDRESS (HOST:PORT) as they arrive.

    Stops at End of Session (or after --count messages) with a summary on stderr, so that
    stdout stays machine-readable.
    """
    username, secret = client_credentials(user, password, credentials_file)
    printer = _Printer(sys.stdout.buffer, fmt)

    async def main() -> int:
        started = time.monotonic()
        client = await soupbintcp.connect_async(
            address,
            username,
            secret,
            session_id=session_id,
            sequence=sequence,
            reconnect=reconnect,
            heartbeat_timeout=heartbeat_timeout,
            ssl=True if tls else None,
        )
        stderr.print(
            f"logged in to {address[0]}:{address[1]}, session {client.session_id!r}, "
            f"next sequence {client.next_sequence}"
        )
        received = 0
        first = last = None
        end = "end of session"
        try:
            async for msg in client:
                printer.write(msg.sequence, msg.data)
                received += 1
                if msg.sequence is not None:
                    first = msg.sequence if first is None else first
                    last = msg.sequence
                if count is not None and received >= count:
                    end = f"{count} messages"
                    break
        except soupbintcp.SoupBinTCPError as exc:
            end = f"{client.close_reason.value if client.close_reason else 'error'}: {exc}"
            raise
        finally:
            sys.stdout.buffer.flush()
            if not client.is_closed:
                await client.logout()
            elapsed = max(time.monotonic() - started, 1e-9)
            span = f", sequence {first}..{last}" if first is not None else ""
            stderr.print(
                f"{received:,} messages in {elapsed:.2f} s ({received / elapsed:,.0f} msg/s)"
                f"{span}, {client.reconnects} reconnects; stopped: {end}"
            )
        return 0

    return run_async(main(), ctx.obj["loop"])
