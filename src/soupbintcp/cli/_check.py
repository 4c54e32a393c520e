"""`soupbintcp check server|client|mold-transmitter`: the conformance suite on the command line.

The cases, their running and the report files are `soupbintcp.check`'s; this module reads the
options, shows progress and the summary table, and sets the exit status (1: a MUST failed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from soupbintcp import check

from ._common import ADDRESS, client_credentials, credential_options
from ._connect import tls_context, tls_options
from ._run import run_async

__all__ = ["command"]

stdout = Console(highlight=False, soft_wrap=True, markup=False)
progress_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def report_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--cases/--exclude/--list and the report files, shared by every target."""
    for option in reversed(
        [
            click.option("--cases", "cases", multiple=True, metavar="PATTERN",
                         help="Run only the cases whose id matches (shell pattern or part of "
                              "the id; repeatable), e.g. '4.10/*' or heartbeat."),
            click.option("--exclude", multiple=True, metavar="PATTERN",
                         help="Leave out the cases whose id matches (repeatable)."),
            click.option("--list", "list_only", is_flag=True,
                         help="List the selected cases (id, level, what each expects); run none."),
            click.option("--jobs", type=click.IntRange(1, 64), default=4, show_default=True,
                         help="Cases run at once (each on connections of its own)."),
            click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False),
                         help="Write the results as JSON (a file like Autobahn's index)."),
            click.option("--junit", "junit_path", type=click.Path(path_type=Path, dir_okay=False),
                         help="Write JUnit XML for CI (a failed MUST or SHOULD is a failure)."),
            click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False),
                         help="Write one self-contained HTML page."),
        ]
    ):  # fmt: skip
        func = option(func)
    return func


def summary_table(results: Sequence[check.Result]) -> Table:
    table = Table(title=f"soupbintcp check: {check.score(results)}")
    table.add_column("level")
    for outcome in check.Outcome:
        table.add_column(outcome.value, justify="right")
    for level, row in check.tally(results).items():
        table.add_row(level, *(str(n) for n in row.values()))
    return table


def run_suite(
    ctx: click.Context,
    cases: list[check.Case],
    implementation: Any,
    about: dict[str, object],
    reports: dict[str, Path | None],
    jobs: int = 1,
    prepare: Callable[[], Awaitable[Any]] | None = None,
) -> int:
    """Run `cases` with a progress bar, print each failure and the table, write reports."""
    if not cases:
        raise click.UsageError("no case matches --cases/--exclude")

    async def go() -> list[check.Result]:
        target = implementation if prepare is None else await prepare()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=progress_console,
            transient=True,
        ) as bar:
            task = bar.add_task("checking", total=len(cases))

            def on_result(result: check.Result) -> None:
                bar.update(task, advance=1, description=result.case.id)
                if result.outcome is check.Outcome.FAIL:
                    bar.console.print(
                        f"FAIL {result.case.level.value:6} {result.case.id}: {result.reason}"
                    )

            return await check.run_cases(cases, target, on_result, jobs=jobs)

    results: list[check.Result] = []

    async def main() -> int:
        results.extend(await go())
        return 0

    run_async(main(), ctx.obj.get("loop", "auto") if ctx.obj else "auto")
    stdout.print(summary_table(results))
    for name, path in reports.items():
        if path is not None:
            text = {
                "json": lambda: check.to_json(results, about),
                "junit": lambda: check.to_junit(results, f"soupbintcp check {about['target']}"),
                "html": lambda: check.to_html(results, about),
            }[name]()
            path.write_text(text, encoding="utf-8")
    return check.exit_status(results)


def list_cases(cases: Sequence[check.Case]) -> int:
    for case in cases:
        stdout.print(f"{case.id}  [{case.level.value}]  {case.expects}")
    stdout.print(f"{len(cases)} cases")
    return 0


@click.group("check")
def command() -> None:
    """Conformance suite: test any SoupBinTCP or MoldUDP64 implementation against the specs.

    \b
    soupbintcp check server 127.0.0.1:7000 -u user --password secret
    soupbintcp check client --listen 127.0.0.1:7001 --run "my-client 127.0.0.1:7001"
    soupbintcp check mold-transmitter --group 239.1.1.1:5000 --request 127.0.0.1:5001
    soupbintcp check mold-listener --run "my-listener {group} {request}"

    Each case is named after the spec section it tests and has the spec's own word for how
    binding it is (MUST, SHOULD, MAY). The exit status is 1 when a MUST case fails.
    """


@command.command("server")
@click.argument("address", type=ADDRESS)
@credential_options
@click.option("--session", "session_id", default="",
              help="Session the cases log into (default: blank, the current one).")  # fmt: skip
@click.option("--dialect", type=click.Choice(["soupbintcp", "omega"]), default="soupbintcp",
              show_default=True,
              help="soupbintcp: the 4.00 and 4.10 cases; omega: Omega/Lynx 1.03.")  # fmt: skip
@tls_options
@report_options
@click.pass_context
def server_command(
    ctx: click.Context,
    /,
    address: tuple[str, int],
    user: str | None,
    password: str | None,
    credentials_file: Path | None,
    session_id: str,
    dialect: str,
    cases: tuple[str, ...],
    exclude: tuple[str, ...],
    list_only: bool,
    jobs: int,
    json_path: Path | None,
    junit_path: Path | None,
    html_path: Path | None,
    **tls: Any,
) -> int:
    """Run the server cases against the server at ADDRESS (it needs some messages to replay:
    the cases that need more than it holds answer "n/a").

    The suite connects and logs in as often as it needs (about 100 times), sends a few wrong
    passwords, and expects the server to close connections it finds malformed.
    """
    username, secret = client_credentials(user, password, credentials_file)
    selected = check.select(check.CATALOGUE, check.Target.SERVER, dialect, cases, exclude)
    if list_only:
        return list_cases(selected)
    target = check.ServerTarget(
        address[0], address[1], username, secret, session_id, dialect, tls_context(**tls)
    )
    about: dict[str, object] = {
        "target": "server",
        "address": f"{address[0]}:{address[1]}",
        "dialect": dialect,
        "cases": len(selected),
    }
    reports = {"json": json_path, "junit": junit_path, "html": html_path}
    return run_suite(ctx, selected, target, about, reports, jobs)


@command.command("client")
@click.option("--listen", type=ADDRESS, default="127.0.0.1:0", show_default=True,
              help="Where the scripted server listens; port 0 (with {port} in --run): a free "
                   "port per case, cases run --jobs at once.")  # fmt: skip
@click.option("--run", "run_command", metavar="COMMAND",
              help="Start the client under test afresh for each case (shell; {host} and {port} "
                   "are replaced by where the case listens). Without it, the client must "
                   "connect (and reconnect) to --listen by itself.")  # fmt: skip
@click.option("--dialect", type=click.Choice(["soupbintcp", "omega"]), default="soupbintcp",
              show_default=True,
              help="soupbintcp: the 4.00/4.10 cases; omega: Omega 1.03.")  # fmt: skip
@report_options
@click.pass_context
def client_command(
    ctx: click.Context,
    /,
    listen: tuple[str, int],
    run_command: str | None,
    dialect: str,
    cases: tuple[str, ...],
    exclude: tuple[str, ...],
    list_only: bool,
    jobs: int,
    json_path: Path | None,
    junit_path: Path | None,
    html_path: Path | None,
) -> int:
    """Act as a scripted server and run the client cases against the client that connects.

    Each case takes one or more connections: a login answered late, heartbeats, Debug,
    server Unsequenced Data, packets split into bytes, a 65,534-byte message, End of Session,
    a rejected login, and cuts after which the client's next Login Request must resume at
    the right session and sequence number (a client that does not reconnect by itself makes
    those cases "n/a").
    """
    selected = check.select(check.CATALOGUE, check.Target.CLIENT, dialect, cases, exclude)
    if list_only:
        return list_cases(selected)
    host, port = listen
    if port == 0 and not (run_command and "{port}" in run_command):
        raise click.UsageError("--listen needs a port unless --run names {port}")
    launch = check.command_launcher(run_command) if run_command else None
    target = check.ClientTarget(host, port, dialect, launch)
    about: dict[str, object] = {
        "target": "client",
        "listen": f"{host}:{port}",
        "run": run_command or "",
        "dialect": dialect,
        "cases": len(selected),
    }
    reports = {"json": json_path, "junit": junit_path, "html": html_path}
    return run_suite(ctx, selected, target, about, reports, jobs if target.parallel else 1)


@command.command("mold-transmitter")
@click.option("--group", type=ADDRESS, required=True, help="Multicast group GROUP:PORT.")
@click.option("--request", type=ADDRESS, required=True, help="Re-request server HOST:PORT.")
@click.option("--interface", metavar="ADDRESS",
              help="Local address to join the group on (default: the system's).")  # fmt: skip
@report_options
@click.pass_context
def mold_command(
    ctx: click.Context,
    /,
    group: tuple[str, int],
    request: tuple[str, int],
    interface: str | None,
    cases: tuple[str, ...],
    exclude: tuple[str, ...],
    list_only: bool,
    jobs: int,
    json_path: Path | None,
    junit_path: Path | None,
    html_path: Path | None,
) -> int:
    """Run the MoldUDP64 cases: watch the group, ask the re-request server.

    The stream must hold at least 3 messages; the End of Session case needs a session that
    ends while it watches (otherwise "n/a").
    """
    selected = check.select(check.CATALOGUE, check.Target.MOLD_TRANSMITTER, None, cases, exclude)
    if list_only:
        return list_cases(selected)
    target = check.MoldTarget(group, request, interface)
    about: dict[str, object] = {
        "target": "mold-transmitter",
        "group": f"{group[0]}:{group[1]}",
        "request": f"{request[0]}:{request[1]}",
        "cases": len(selected),
    }
    reports = {"json": json_path, "junit": junit_path, "html": html_path}
    return run_suite(ctx, selected, target, about, reports, jobs)


@command.command("mold-listener")
@click.option("--run", "run_command", metavar="COMMAND", required=True,
              help="Start the listener under test for each case (shell; {group} and {request} "
                   "are replaced by the case's GROUP:PORT and HOST:PORT). It must print each "
                   "message it delivers on a line of its own.")  # fmt: skip
@click.option("--interface", metavar="ADDRESS", default="127.0.0.1", show_default=True,
              help="Local address the suite transmits and answers on.")  # fmt: skip
@report_options
@click.pass_context
def listener_command(
    ctx: click.Context,
    /,
    run_command: str,
    interface: str,
    cases: tuple[str, ...],
    exclude: tuple[str, ...],
    list_only: bool,
    jobs: int,
    json_path: Path | None,
    junit_path: Path | None,
    html_path: Path | None,
) -> int:
    """Run the MoldUDP64 listener cases: the suite transmits on a group of its own per case,
    dropping, duplicating and reordering on purpose, and serves (or withholds) re-requests.

    It judges the listener's requests (the gap and no more, the lost tail, retries, the rest
    of a short answer) and what it prints (each message once, in order; nothing of another
    session or of a malformed packet), e.g.
    --run "soupbintcp mold tail --group {group} --request {request} --interface 127.0.0.1".
    """
    selected = check.select(check.CATALOGUE, check.Target.MOLD_LISTENER, None, cases, exclude)
    if list_only:
        return list_cases(selected)
    target = check.ListenerTarget(check.listener_command(run_command), interface)
    about: dict[str, object] = {
        "target": "mold-listener",
        "run": run_command,
        "cases": len(selected),
    }
    reports = {"json": json_path, "junit": junit_path, "html": html_path}
    return run_suite(ctx, selected, target, about, reports, jobs)
