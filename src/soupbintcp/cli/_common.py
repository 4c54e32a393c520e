"""What the commands share: addresses, credentials, errors, defaults, logging and progress.

The command modules (`_serve`, `_tail`, `_record`, `_mold`, `_journal`, `_demo`, `_top`) never
import each other: what two of them need lives in a helper module (this one, `_connect`,
`_ops`, `_output`, `_run`, `_sinks`, `_generate`, ...). `tests/test_cli.py` checks it.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

import soupbintcp

F = TypeVar("F", bound=Callable[..., Any])

PASSWORD_ENV = "SOUPBINTCP_PASSWORD"  # noqa: S105 - the variable's name, not a password
USER_ENV = "SOUPBINTCP_USER"


class _Stderr(Console):
    """The commands' stderr. With `--log-format json` (`json_lines`), every line printed on
    it (what a command says, its summary) is a JSON object as the log lines are."""

    json_lines = False

    def print(self, *objects: Any, **options: Any) -> None:
        if not self.json_lines:
            super().print(*objects, **options)
            return
        now = time.time()
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        line = {
            "time": f"{moment}.{int(now * 1000) % 1000:03d}Z",
            "level": "info",
            "logger": "soupbintcp.cli",
            "message": " ".join(str(o) for o in objects),
        }
        self.file.write(json.dumps(line) + "\n")
        self.file.flush()


# A line stays a line in logs (soft_wrap); text is printed literally (markup=False): paths,
# usernames and error messages hold square brackets ("soupbintcp[fast]", "[SSL: ...]") that
# console markup would eat. Styled lines ask for markup and escape what they interpolate.
stderr = _Stderr(stderr=True, highlight=False, soft_wrap=True, markup=False)


#: Where `serve` and `mold serve` keep their journal unless told.
DEFAULT_STORE = Path("soupbintcp-data") / "feed.soup"
#: The session id a new journal gets unless told (the journal's own wins once it has one).
DEFAULT_SESSION = "SESSION1"


def library_default(function: Callable[..., Any], parameter: str) -> Any:
    """The default of `function`'s `parameter`: an option shows the library's default, never
    a copy of it typed again."""
    return inspect.signature(function).parameters[parameter].default


def plural(n: int, word: str) -> str:
    """``1 message``, ``2 messages``, ``1,000 messages``."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def seconds(help_text: str) -> str:
    """Help of a duration option: every one says its unit."""
    return f"{help_text} (seconds)."


class UserError(click.ClickException):
    """A mistake a person made: one line, exit code 1."""


def parse_address(value: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = default_host, value
    host = host.strip("[]") or default_host
    try:
        number = int(port)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not HOST:PORT") from None
    if not 0 <= number <= 65535:
        raise click.BadParameter(f"port {number} is out of range")
    return host, number


if TYPE_CHECKING:
    _ParamType = click.ParamType[Any, Any]  # generic only in click's stubs of late versions
else:
    _ParamType = click.ParamType


class AddressType(_ParamType):
    name = "HOST:PORT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        try:
            return parse_address(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


ADDRESS = AddressType()


class AddressListType(_ParamType):
    """``HOST:PORT[,HOST:PORT...]``: gateways of one feed, tried in order (failover)."""

    name = "HOST:PORT[,HOST:PORT...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        try:
            return [parse_address(part.strip()) for part in str(value).split(",") if part.strip()]
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


ADDRESSES = AddressListType()


def read_credentials_file(path: Path) -> dict[str, str]:
    """`username:password` per line; blank lines and `#` comments are skipped."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read credentials file {str(path)!r}: {exc}") from None
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user:
            raise UserError(f"{path}:{number}: expected username:password")
        out[user.strip()] = password.strip()
    if not out:
        raise UserError(f"credentials file {str(path)!r} has no username:password line")
    return out


def credential_options(func: F) -> F:
    """--user / --password / --credentials-file; the password may come from the environment
    so that it never has to be typed on a command line."""
    func = click.option(
        "--credentials-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="File of username:password lines (the first is used by clients).",
    )(func)
    func = click.option(
        "--password",
        envvar=PASSWORD_ENV,
        show_envvar=True,
        help=f"Password; prefer the {PASSWORD_ENV} environment variable.",
    )(func)
    func = click.option("--user", "-u", envvar=USER_ENV, show_envvar=True, help="Username.")(func)
    return func


def client_credentials(
    user: str | None, password: str | None, credentials_file: Path | None
) -> tuple[str, str]:
    """The username and password to log in with. Without any, an empty username: a server
    run with ``--no-auth`` accepts it, any other answers Login Rejected (said with a hint)."""
    if credentials_file is not None:
        creds = read_credentials_file(credentials_file)
        if user is None:
            user, password = next(iter(creds.items()))
        elif user in creds:
            password = creds[user]
    return user or "", password or ""


def describe_error(exc: BaseException) -> str:
    """One line for a person, no traceback."""
    if isinstance(exc, soupbintcp.LoginRejected):
        return f"login rejected by the server: {exc.reason.description}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: is the server running at that address?"
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        text = exc.strerror  # "Address already in use" reads "address already in use", but
        if text[1:2].islower():  # "[SSL: CERTIFICATE_VERIFY_FAILED] ..." stays as it is
            text = text[0].lower() + text[1:]
        return f"{text}{where}"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no")


def durability_options(func: F) -> F:
    """--durability publish|timer and --fsync: the journal's `Durability` and `fsync`."""
    func = click.option(
        "--fsync",
        is_flag=True,
        help="fsync each journal write: survive a power cut too, at a disk flush per write.",
    )(func)
    func = click.option(
        "--durability",
        type=click.Choice(["publish", "timer"]),
        default="publish",
        show_default=True,
        help="publish: each message written to the OS before it counts (survives the process "
        "being killed); timer: written together every few ms (fewer system calls; a crash loses "
        "what was not written yet, which no client saw).",
    )(func)
    return func


def server_credentials(
    user: str | None, password: str | None, credentials_file: Path | None, no_auth: bool
) -> dict[str, str] | None:
    """The accepted username/password pairs, or None when any login is accepted.

    --no-auth accepts any login whatever the environment says (SOUPBINTCP_USER and
    SOUPBINTCP_PASSWORD are then ignored); with --user, --password or --credentials-file on
    the command line it is a contradiction, said as such."""
    if no_auth:
        ctx = click.get_current_context(silent=True)
        given = [
            "--" + name.replace("_", "-")
            for name in ("user", "password", "credentials_file")
            if ctx is not None
            and ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
        ]
        if given:
            raise UserError(
                f"--no-auth accepts any login, so {' and '.join(given)} would be ignored: "
                "give one or the other"
            )
        return None
    creds: dict[str, str] = {}
    if credentials_file is not None:
        creds.update(read_credentials_file(credentials_file))
    if user is not None:
        creds[user] = password or ""
    if creds:
        return creds
    raise UserError(
        "no credentials: give --user with SOUPBINTCP_PASSWORD (or --password), "
        "--credentials-file, or --no-auth to accept any login"
    )
