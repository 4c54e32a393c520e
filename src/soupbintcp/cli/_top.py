"""`soupbintcp top URL`: who is connected to a feed and how far behind, refreshed every second.

Reads a server's metrics endpoint (`serve --metrics HOST:PORT`), so it works from anywhere
that endpoint is reachable, over SSH too: plain terminal output, no mouse, keys read from
the terminal in cbreak mode. Quits on `q` or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ._common import UserError


@click.command("top")
@click.argument("url")
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between refreshes.")  # fmt: skip
@click.option("--rows", type=click.IntRange(min=1), help="Show at most this many clients.")
def command(url: str, interval: float, rows: int | None) -> int:
    """A live table of the clients of the feed whose metrics are at URL.

    URL is a server's metrics endpoint: HOST:PORT (as given to `serve --metrics`) or a full
    http:// URL. Each connected client with its user, address, next sequence number, lag,
    send rate and send buffer, sorted by lag (furthest behind first), under the feed's
    totals. Press q or Ctrl-C to quit.

    It needs a terminal (there is no non-interactive mode), and exits 1 saying what it
    found at URL if that is not a server's metrics (a client's, or a SoupBinTCP port). On a
    narrow terminal text columns shorten and whole columns go: numbers keep every digit.
    """
    try:
        from soupbintcp.metrics import Watch, metrics_url
    except ImportError as exc:
        raise UserError(str(exc)) from None
    try:
        watch = Watch(metrics_url(url))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    first = watch.refresh(timeout=max(interval, 1.0))
    if first.wrong_kind:
        raise UserError(str(first.error))
    if not sys.stdout.isatty():
        # A live screen piped into a file is escape codes and nothing else, forever.
        raise UserError(
            "top draws a live screen and needs a terminal, but stdout is not one (top has no"
            f" non-interactive mode; for the figures once, read {watch.url} itself, e.g. with"
            " curl)"
        )
    console = Console()
    view = first
    with _keys() as pressed, Live(console=console, auto_refresh=False, screen=True) as live:
        while True:
            live.update(render(view, rows, console.height, console.width), refresh=True)
            deadline = time.monotonic() + interval
            while (left := deadline - time.monotonic()) > 0:
                if pressed(left) in ("q", "Q"):
                    return 0
            view = watch.refresh(timeout=max(interval, 1.0))


def render(view: object, rows: int | None = None, height: int = 50, width: int = 120) -> Group:
    """The screen for one `FeedView`: a line of totals, then the clients by lag."""
    from soupbintcp.metrics import FeedView

    assert isinstance(view, FeedView)
    t = view.totals
    head = Text.assemble(
        ("soupbintcp top ", "bold"), view.url, "   ", time.strftime("%H:%M:%S"), "\n",
        (f"{t.get('clients', 0):,.0f} clients", "bold"),
        f" ({t.get('pending', 0):,.0f} awaiting login)   ",
        (f"{t.get('rate', 0):,.0f} msg/s", "bold"),
        f" ({t.get('bytes_rate', 0) / 1e6:,.2f} MB/s) sent   ",
        f"journal {t.get('journal_last', 0):,.0f} (durable {t.get('journal_durable', 0):,.0f},"
        f" +{t.get('published_rate', 0):,.0f}/s)\n",
        f"worst lag {t.get('worst_lag', 0):,.0f}   logins {t.get('logins', 0):,.0f}, "
        f"rejected {t.get('rejected', 0):,.0f}, refused {t.get('refused', 0):,.0f}, "
        f"disconnects {t.get('disconnects', 0):,.0f}   (q to quit)",
    )  # fmt: skip
    stalled = t.get("gateway_stalled", 0)
    if stalled:
        letting_go = " (letting its clients go)" if t.get("gateway_letting_go") else ""
        errors = t.get("gateway_cache_errors", 0)
        head.append(
            f"\ngateway not following its log for {stalled:,.1f} s{letting_go}"
            + (f"; {errors:,.0f} cache write errors" if errors else ""),
            style="bold red",
        )
    if view.error is not None:
        head.append(f"\n{view.error}", style="bold red")
    limit = rows if rows is not None else max(1, height - 7)
    cells = [
        (client.user, client.peer, client.session, f"{client.next_sequence:,}",
         f"{client.lag:,}", f"{client.rate:,.0f}", f"{client.send_buffer:,}")
        for client in view.clients[:limit]
    ]  # fmt: skip
    # A number is never cut: its column keeps the width of its widest number (the heading
    # folds instead); the text columns give way first, ending in "…", down to 4 characters;
    # then whole columns go, least useful first, rather than a number losing digits.
    heads = ("user", "address", "session", "next seq", "lag", "msg/s", "send buffer")
    widths = [max((len(row[i]) for row in cells), default=4) for i in range(7)]
    shown = list(range(7))
    for gone in (6, 5, 3, 2, 1):
        texts = [widths[i] for i in shown if i < 3]
        room = width - 3 * (len(shown) - 1) - sum(widths[i] for i in shown if i >= 3)
        if room >= 4 * len(texts):
            break
        shown.remove(gone)
    text = {i: widths[i] for i in shown if i < 3}
    while sum(text.values()) > room and max(text.values()) > 4:
        widest = max(text, key=lambda i: text[i])
        text[widest] -= 1
    table = Table(show_edge=False, pad_edge=False)
    for i in shown:
        if i < 3:
            table.add_column(heads[i], no_wrap=True, overflow="ellipsis", max_width=text[i])
        else:
            table.add_column(heads[i], justify="right", min_width=widths[i])
    for client, row in zip(view.clients, cells, strict=False):
        table.add_row(*(row[i] for i in shown), style="bold red" if client.lag else None)
    hidden = len(view.clients) - limit
    footer = Text(f"... and {hidden} more" if hidden > 0 else "")
    return Group(head, Text(""), table, footer)


@contextlib.contextmanager
def _keys() -> Iterator[Callable[[float], str]]:
    """`pressed(timeout)`: the key pressed within `timeout` seconds ("" if none). The
    terminal is in cbreak mode meanwhile (keys come at once, unechoed; Ctrl-C still
    interrupts). Without a terminal on stdin, it just waits."""
    stdin = sys.stdin
    if not stdin.isatty():

        def wait(timeout: float) -> str:
            time.sleep(timeout)
            return ""

        yield wait
        return
    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def pressed(timeout: float) -> str:
        ready, _, _ = select.select([fd], [], [], timeout)
        return os.read(fd, 1).decode(errors="replace") if ready else ""

    try:
        yield pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
