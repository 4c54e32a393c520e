"""The click group and the one place where errors become one line and an exit code.

This module imports the command modules; they never import it, nor each other: what two
commands share lives in a helper module (`_common`, `_connect`, `_ops`, `_output`, `_run`,
`_sinks`, `_generate`, ...), so the imports run one way (tests/test_layering.py checks it).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import click

import soupbintcp

from . import (
    _check,
    _demo,
    _journal,
    _mold,
    _mold_gateway,
    _order,
    _pcap,
    _record,
    _serve,
    _tail,
    _top,
    _venue,
)
from ._common import describe_error, stderr
from ._logging import setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(
    soupbintcp.__version__,
    prog_name="soupbintcp",
    message="%(prog)s %(version)s, "
    + ("compiled fast path" if soupbintcp.accelerated else "pure Python (no compiled fast path)"),
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More log output: -v the library's debug lines, -vv every library's.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per log line (time in UTC).",
)
@click.option(
    "--loop",
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    default="auto",
    show_default=True,
    help="Event loop: uvloop when installed, unless told otherwise.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, log_format: str, loop: str) -> None:
    """SoupBinTCP 4.00 / 4.10 server and client tools.

    \b
    soupbintcp demo                          a server and a client, live progress, a verdict
    soupbintcp serve --listen :7000          serve a journal to clients
    soupbintcp tail 127.0.0.1:7000 -u user   print a feed as it arrives
    soupbintcp record 127.0.0.1:7000 f.soup  record a feed, resumable
    soupbintcp mold ...                      MoldUDP64: serve, tail, record, gateway
    soupbintcp journal info f.soup           look at a journal offline (info, dump, verify...)
    soupbintcp pcap info feed.pcap           SoupBinTCP and MoldUDP64 in a capture
    soupbintcp top 127.0.0.1:9100            who is connected and how far behind (--metrics)
    soupbintcp venue --listen :7001 ...      a test exchange: OUCH in, ITCH out
    soupbintcp order send o.jsonl --venue H:P OUCH orders, each entered exactly once
    soupbintcp check server 127.0.0.1:7000   conformance suite (server, client, mold-transmitter)
    """
    setup_logging(verbose, quiet, log_format)
    ctx.obj = {"loop": loop, "verbose": verbose, "quiet": quiet}


for _module in (_check, _demo, _mold, _record, _serve, _tail, _top, _venue):
    cli.add_command(_module.command)
cli.add_command(_journal.group)
cli.add_command(_pcap.group)
cli.add_command(_order.group)
_mold.command.add_command(_mold_gateway.command)  # `mold gateway`: a module of its own


#: The group's options that may also come after the command (`soupbintcp tail ... -q`).
_ANYWHERE = frozenset({"-q", "--quiet", "-v", "-vv", "-vvv", "--verbose"})


def hoist_global_options(argv: list[str]) -> list[str]:
    """`-q` and `-v` given after the command moved before it, where click reads them."""
    if "--" in argv:
        cut = argv.index("--")
        return hoist_global_options(argv[:cut]) + argv[cut:]
    first = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    later = [arg for arg in argv[first:] if arg in _ANYWHERE]
    return [*later, *argv[:first], *(arg for arg in argv[first:] if arg not in _ANYWHERE)]


def run(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code. Errors are one line on stderr."""
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM is Ctrl-C, from the start: every command stops the same way on both.
        signal.signal(signal.SIGTERM, _as_sigint)
    try:
        result = cli.main(args=args, prog_name="soupbintcp", standalone_mode=False)
    except BrokenPipeError:
        return _stdout_gone()
    except SystemExit:
        # click's answer to a closed stdout: it wraps stdout, then exits 1.
        if type(sys.stdout).__name__.endswith("PacifyFlushWrapper"):
            return _stdout_gone()
        raise
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        stderr.print(f"soupbintcp: error: {exc.format_message()}{hint}", soft_wrap=True)
        return 2
    except click.ClickException as exc:
        stderr.print(f"soupbintcp: error: {exc.format_message()}", soft_wrap=True)
        return 1
    except click.Abort:
        stderr.print("soupbintcp: interrupted")
        return 130
    except KeyboardInterrupt:
        stderr.print("soupbintcp: interrupted")
        return 130
    except (soupbintcp.SoupBinTCPError, OSError) as exc:
        stderr.print(f"soupbintcp: error: {describe_error(exc)}", soft_wrap=True)
        return 1
    if isinstance(result, int):
        return result
    return 0


def _stdout_gone() -> int:
    """The reader went away (`| head`): done, quietly; later writes go nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
    os.close(devnull)
    return 0


def _as_sigint(*_: object) -> None:
    os.kill(os.getpid(), signal.SIGINT)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
