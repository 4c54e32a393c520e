"""`soupbintcp venue`: the test exchange on the command line (OUCH in, ITCH out)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from soupbintcp.venue import Venue

from ._common import (
    ADDRESS,
    UserError,
    credential_options,
    server_credentials,
    stderr,
)
from ._run import run_async

Address = tuple[str, int]


def read_symbols(value: str) -> list[str]:
    """``AAPL,MSFT,...`` or a file of symbols (commas, spaces or one a line; ``#`` comments)."""
    path = Path(value)
    if path.is_file():
        text = "\n".join(line.split("#", 1)[0] for line in path.read_text("ascii").splitlines())
    else:
        text = value
    symbols = [s.strip().upper() for s in text.replace(",", " ").split()]
    for symbol in symbols:
        if len(symbol) > 8 or not symbol.isascii():
            raise UserError(f"symbol {symbol!r}: OUCH symbols are at most 8 ASCII characters")
    if not symbols:
        raise UserError("--symbols names no symbol")
    return list(dict.fromkeys(symbols))


@click.command("venue")
@click.option("--listen", "listen", type=ADDRESS, multiple=True, required=True,
              help="OUCH HOST:PORT; give it more than once for mirrored ports (same accounts, "
                   "same streams, same book).")  # fmt: skip
@click.option("--itch-listen", type=ADDRESS, required=True,
              help="HOST:PORT serving the ITCH 5.0 market data over SoupBinTCP.")  # fmt: skip
@click.option(
    "--mold-group", type=ADDRESS, help="Also transmit the ITCH feed on MoldUDP64 GROUP:PORT."
)
@click.option("--mold-request-listen", type=ADDRESS, help="MoldUDP64 re-request server HOST:PORT.")
@click.option("--mold-interface", metavar="ADDR", default="127.0.0.1", show_default=True,
              help="Interface address to transmit multicast from.")  # fmt: skip
@click.option("--mold-ttl", type=click.IntRange(0, 255), default=0, show_default=True,
              help="Multicast TTL (0: this host only).")  # fmt: skip
@click.option("--symbols", required=True, metavar="LIST|FILE",
              help="AAPL,MSFT,... or a file of symbols.")  # fmt: skip
@credential_options
@click.option("--no-auth", is_flag=True, help="Accept any login (each username is an account).")
@click.option("--bots", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="Seeded market makers and takers (trading with accounts too).")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bots.")
@click.option("--cancel-on-disconnect", is_flag=True,
              help="Cancel an account's orders when its last connection closes.")  # fmt: skip
@click.option("--data", "data", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory of the journals; a restart resumes the day kept there.")  # fmt: skip
@click.option("--new-day", is_flag=True,
              help="Archive the day in --data to days/SESSION/ and start a new one.")  # fmt: skip
@click.pass_context
def command(
    ctx: click.Context,
    listen: tuple[Address, ...],
    itch_listen: Address,
    mold_group: Address | None,
    mold_request_listen: Address | None,
    mold_interface: str,
    mold_ttl: int,
    symbols: str,
    user: str | None,
    password: str | None,
    credentials_file: Path | None,
    no_auth: bool,
    bots: int,
    seed: int,
    cancel_on_disconnect: bool,
    data: Path,
    new_day: bool,
) -> int:
    """A test exchange: OUCH 5.0 order entry, price-time matching, ITCH 5.0 market data.

    Each username is an OUCH account with its own sequenced stream; every --listen port
    serves all of them from one book. Orders, answers and the ITCH feed are journaled in
    --data: a restart resumes the day (clients reconnect and replay), --new-day starts
    another. -v logs every inbound and outbound message decoded. Runs until Ctrl-C.

    \b
    soupbintcp venue --listen :7001 --itch-listen :7002 --symbols AAPL,MSFT \\
        --no-auth --bots 4 --data venue-data
    """
    credentials = server_credentials(user, password, credentials_file, no_auth)
    names = read_symbols(symbols)
    if mold_request_listen is not None and mold_group is None:
        raise UserError("--mold-request-listen needs --mold-group")

    async def main() -> int:
        venue = Venue(
            names, listen=listen, itch_listen=itch_listen, data=data, new_day=new_day,
            credentials=credentials, cancel_on_disconnect=cancel_on_disconnect, bots=bots,
            seed=seed, mold_group=mold_group, mold_request_listen=mold_request_listen,
            mold_interface=mold_interface, mold_ttl=mold_ttl,
        )  # fmt: skip
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with venue:
            ports = ", ".join(f"{h}:{p}" for h, p in venue.addresses)
            itch = "{}:{}".format(*venue.itch_address)
            stderr.print(
                f"venue {venue.session_id}: OUCH on {ports}, ITCH on {itch}, "
                f"{len(names)} symbols{f', {bots} bots' if bots else ''} (Ctrl-C to stop)"
            )
            await stop.wait()
            stderr.print("stopping: the day is kept in " + str(data))
        return 0

    return run_async(main(), ctx.obj["loop"] if ctx.obj else "auto")
