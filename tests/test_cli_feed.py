"""The command line as people who run feeds use it (issue 13): decoding, journal tools,
paced replay, and the rough edges, each run as a subprocess over loopback."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import trustme

from soupbintcp import FileStore
from soupbintcp.cli._synthetic import synthetic_messages
from soupbintcp.store import iter_binaryfile

from .pipes import finish
from .test_cli import CLI, ENV, Serve, run

TIME = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ", re.M)  # a log line's time, to the millisecond


@pytest.fixture
def itch_journal(tmp_path: Path) -> Path:
    path = tmp_path / "itch.soup"
    with FileStore(path, session_id="ITCHDAY") as store:
        store.append_many(synthetic_messages(1, 3000))
        store.append(b"not ITCH")  # message 3001: undecodable on purpose
    return path


@pytest.fixture
def itch_server(itch_journal: Path) -> Iterator[Serve]:
    serve = Serve("--store", str(itch_journal), "--user", "user")
    try:
        yield serve
    finally:
        serve.stop()


def run_with(*args: str) -> subprocess.CompletedProcess[str]:
    """The command line with options of its own before the command's."""
    return subprocess.run(
        [*CLI[:3], *args], capture_output=True, text=True, env=ENV, timeout=60, check=False
    )


def _jsonl(text: str) -> list[dict[str, object]]:
    return [json.loads(line, parse_float=Decimal) for line in text.splitlines()]


# --- reading the messages ----------------------------------------------------------------------
def test_tail_decodes_itch_with_undecodable_bytes_as_hex_and_counted(itch_server: Serve) -> None:
    args = ["tail", itch_server.address, "--user", "user", "--decode", "itch50"]
    text = run(*args, "--sequence", "19", "--count", "2")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == (
        "19\tS System Event at 09:30:00.000000000: stock_locate=0 tracking_number=0 event_code=Q"
    )
    assert text.stdout.splitlines()[1].startswith("20\tF Add Order with MPID Attribution at ")
    jsonl = run(*args, "--format", "jsonl", "--sequence", "2999", "--count", "3")
    assert jsonl.returncode == 0, jsonl.stderr
    lines = _jsonl(jsonl.stdout)
    assert [line["sequence"] for line in lines] == [2999, 3000, 3001]
    assert all(isinstance(line["timestamp"], str) for line in lines[:2])
    prices = [line["price"] for line in lines[:2] if "price" in line]
    assert all(isinstance(p, Decimal) and p.as_tuple().exponent == -4 for p in prices)
    assert lines[2]["name"] == "undecodable"
    assert lines[2]["hex"] == b"not ITCH".hex()
    assert "1 undecodable message (shown as hex)" in jsonl.stderr


def test_record_print_decodes_what_it_records(itch_server: Serve, tmp_path: Path) -> None:
    copy = tmp_path / "copy.soup"
    args = ["--user", "user", "--count", "25", "--print", "--decode", "itch50"]
    result = run("record", itch_server.address, str(copy), *args, "--print-format", "jsonl")
    assert result.returncode == 0, result.stderr
    lines = _jsonl(result.stdout)
    assert [line["sequence"] for line in lines] == list(range(1, 26))
    assert [line["type"] for line in lines[:3]] == ["S", "R", "R"]
    assert lines[1]["stock"] == "AAPL"
    assert "recorded 25 messages" in result.stderr
    with FileStore(copy) as store:
        assert store.read(1, 25) == synthetic_messages(1, 25)


def test_decode_without_the_extra_says_how_to_install_it(itch_journal: Path) -> None:
    code = (
        "import sys; sys.modules['itch'] = None; sys.modules['itch.messages'] = None\n"
        "from soupbintcp.cli import main\n"
        f"main(['journal', 'dump', {str(itch_journal)!r}, '--decode', 'itch50'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "soupbintcp: error: ITCH decoding needs the 'itch' extra: pip install 'soupbintcp[itch]'"
    )


# --- journal tools -----------------------------------------------------------------------------
def test_journal_info_dump_verify_export_import(itch_journal: Path, tmp_path: Path) -> None:
    info = run("journal", "info", str(itch_journal))
    assert info.returncode == 0, info.stderr
    assert "session      'ITCHDAY'" in info.stdout
    assert "messages     3,001 (sequence 1..3,001)" in info.stdout
    assert f"size         {itch_journal.stat().st_size:,} bytes" in info.stdout
    assert "index        ok" in info.stdout
    assert "durability   every whole record in the file is durable" in info.stdout
    assert "ITCH time    first 04:00:00.000000000, last not ITCH 5.0" in info.stdout

    dump = run("journal", "dump", str(itch_journal), "--from", "3000", "--format", "hex")
    assert dump.returncode == 0, dump.stderr
    assert dump.stdout.splitlines() == [
        f"3000 {synthetic_messages(3000, 1)[0].hex()}",
        f"3001 {b'not ITCH'.hex()}",
    ]
    assert dump.stderr.strip() == "2 messages"
    one = run("journal", "dump", str(itch_journal), "--count", "1", "--decode", "itch50")
    assert one.stdout.startswith("1\tS System Event at 04:00:00.000000000")
    assert one.stderr.strip() == "1 message"
    beyond = run("journal", "dump", str(itch_journal), "--from", "5000")
    assert "holds 3,001 messages: none from 5,000" in beyond.stderr

    verify = run("journal", "verify", str(itch_journal))
    assert verify.returncode == 0, verify.stdout
    assert verify.stdout.strip().endswith(
        "3,001 whole records, " + f"{itch_journal.stat().st_size:,} bytes: OK"
    )

    binary = tmp_path / "day.itch"
    exported = run("journal", "export", str(itch_journal), "--binaryfile", str(binary))
    assert exported.returncode == 0, exported.stderr
    assert list(iter_binaryfile(binary)) == [*synthetic_messages(1, 3000), b"not ITCH"]
    again = tmp_path / "again.soup"
    imported = run("journal", "import", str(binary), str(again), "--session", "COPY")
    assert imported.returncode == 0, imported.stderr
    assert "imported 3,001 messages" in imported.stderr
    with FileStore(again) as store:
        assert store.session_id == "COPY"
        assert store.read(1, 3001) == [*synthetic_messages(1, 3000), b"not ITCH"]
    # Run again, the import resumes after what the journal holds: all of it, so nothing.
    resumed = run("journal", "import", str(binary), str(again))
    assert resumed.returncode == 0, resumed.stderr
    assert "holds 3,001 messages already" in resumed.stderr
    assert "imported 0 messages" in resumed.stderr
    with FileStore(again) as store:
        assert store.count == 3001


def test_journal_verify_exit_code_says_what_is_wrong(itch_journal: Path) -> None:
    with itch_journal.open("ab") as f:
        f.write(b"\x00\x30S")  # a record cut short
    verify = run("journal", "verify", str(itch_journal))
    assert verify.returncode == 1
    assert "3 bytes after the last whole record" in verify.stdout


def test_journal_tools_work_while_a_server_writes_the_journal(tmp_path: Path) -> None:
    journal = tmp_path / "live.soup"
    serve = Serve("--store", str(journal), "--user", "user", "--generate", "2000")
    try:
        deadline = time.monotonic() + 30
        seen = 0
        while seen < 100 and time.monotonic() < deadline:
            info = run("journal", "info", str(journal))
            assert info.returncode == 0, info.stderr
            seen = int(re.search(r"messages\s+([\d,]+)", info.stdout)[1].replace(",", ""))  # type: ignore[index]
        assert seen >= 100
        dump = run("journal", "dump", str(journal), "--count", "100", "--decode", "itch50")
        assert dump.returncode == 0, dump.stderr
        assert len(dump.stdout.splitlines()) == 100
        assert dump.stderr.strip() == "100 messages"  # no undecodable one
        assert run("journal", "verify", str(journal)).returncode in (
            0,
            1,
        )  # a write may be in flight
    finally:
        log = serve.stop()
    assert "stopped: session 'SESSION1' ended" in log


# --- replay like the market did ----------------------------------------------------------------
def test_paced_replay_ends_the_session_by_itself(tmp_path: Path) -> None:
    binary = tmp_path / "day.itch"
    binary.write_bytes(b"".join(len(m).to_bytes(2, "big") + m for m in synthetic_messages(1, 4000)))
    serve = Serve(
        "--store", str(tmp_path / "replay.soup"), "--user", "user",
        "--import-binaryfile", str(binary), "--pace", "max", "--end-session-after-replay",
    )  # fmt: skip
    try:
        tail = run("tail", serve.address, "--user", "user", "--format", "hex")
    finally:
        log = serve.stop()
    assert tail.returncode == 0, tail.stderr
    assert [line.split()[1] for line in tail.stdout.splitlines()] == [
        m.hex() for m in synthetic_messages(1, 4000)
    ]
    assert "stopped: end of session" in tail.stderr
    assert "replay done: 4,000 messages published" in log, log
    assert "End of Session sent after the replay" in log


def test_pace_needs_a_file_and_says_what_a_pace_is(tmp_path: Path) -> None:
    alone = run("serve", "--listen", "127.0.0.1:0", "--store", str(tmp_path / "a.soup"),
                "--no-auth", "--pace", "10x")  # fmt: skip
    assert alone.returncode == 1
    assert "go with --import-binaryfile" in alone.stderr
    binary = tmp_path / "x.itch"
    binary.write_bytes(b"\x00\x01S")
    bad = run("serve", "--listen", "127.0.0.1:0", "--store", str(tmp_path / "b.soup"),
              "--no-auth", "--import-binaryfile", str(binary), "--pace", "fast")  # fmt: skip
    assert bad.returncode != 0
    assert "give 1x, 10x" in bad.stderr
    assert not (tmp_path / "a.soup").exists()
    assert not (tmp_path / "b.soup").exists()


# --- the rough edges ---------------------------------------------------------------------------
def test_error_text_is_printed_literally_brackets_and_all(tmp_path: Path) -> None:
    missing = tmp_path / "creds[red].txt"
    result = run("tail", "127.0.0.1:9", "--credentials-file", str(missing))
    assert result.returncode == 1
    assert f"cannot read credentials file '{missing}'" in result.stderr
    code = (
        "import sys; sys.modules['uvloop'] = None\n"
        "from soupbintcp.cli import main\n"
        "main(['--loop', 'uvloop', 'demo', '-n', '10'])"
    )
    hint = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60,
        check=False,
    )  # fmt: skip
    assert "pip install 'soupbintcp[fast]'" in hint.stderr


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_pem = tmp_path / "server.pem"
    ca_pem = tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    return server_pem, ca_pem


def test_tls_options_and_the_hint_for_a_plain_connection(
    tls_files: tuple[Path, Path], tmp_path: Path
) -> None:
    server_pem, ca_pem = tls_files
    serve = Serve("--store", str(tmp_path / "tls.soup"), "--user", "user",
                  "--tls-cert", str(server_pem), "--generate", "500")  # fmt: skip
    tail = ["tail", serve.address, "--user", "user", "--count", "1", "--no-reconnect"]
    try:
        plain = run(*tail)
        untrusted = run(*tail, "--tls")
        trusted = run(*tail, "--ca-file", str(ca_pem))
        named = run(*tail, "--ca-file", str(ca_pem), "--server-name", "localhost")
        wrong_name = run(*tail, "--ca-file", str(ca_pem), "--server-name", "elsewhere.test")
        insecure = run(*tail, "--insecure")
    finally:
        serve.stop()
    assert plain.returncode == 1
    assert "if the server uses TLS, add --tls" in plain.stderr
    assert untrusted.returncode == 1
    assert "[SSL: CERTIFICATE_VERIFY_FAILED]" in untrusted.stderr
    for ok in (trusted, named, insecure):
        assert ok.returncode == 0, ok.stderr
        assert "1 message in" in ok.stderr
    assert "warning: --insecure" in insecure.stderr
    assert wrong_name.returncode == 1
    assert "[SSL: CERTIFICATE_VERIFY_FAILED]" in wrong_name.stderr


def test_every_duration_option_says_its_unit_and_the_library_options_are_there() -> None:
    import click

    from soupbintcp.cli._app import cli

    def commands(group: click.Group) -> Iterator[click.Command]:
        for command in group.commands.values():
            yield command
            if isinstance(command, click.Group):
                yield from commands(command)

    durations = [
        (command.name, param.name, param.help)
        for command in commands(cli)
        for param in command.params
        if isinstance(param, click.Option)
        and re.search(r"timeout|interval|linger", param.name or "")
    ]
    assert durations
    for name, option, help_text in durations:
        assert help_text, (name, option)
        assert re.search(r"\bseconds\b|\bms\b", help_text, re.I), (name, option)
    serve_help = run("serve", "--help").stdout
    for option in ("--fsync", "--durability", "--max-connections", "--stall-timeout"):
        assert option in serve_help
    record_help = run("record", "--help").stdout
    for option in ("--fsync", "--durability", "--ca-file", "--server-name", "--insecure"):
        assert option in record_help


def test_serve_options_reach_the_server(tmp_path: Path) -> None:
    serve = Serve("--store", str(tmp_path / "opt.soup"), "--user", "user", "--generate", "200",
                  "--durability", "timer", "--fsync", "--max-connections", "1",
                  "--stall-timeout", "5")  # fmt: skip
    follower = subprocess.Popen(
        [*CLI, "tail", serve.address, "--user", "user"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        follower.stdout.readline()  # it is logged in and receiving
        second = run("tail", serve.address, "--user", "user", "--count", "1", "--no-reconnect")
    finally:
        follower.send_signal(signal.SIGINT)
        finish(follower)
        log = serve.stop()
    assert second.returncode == 1
    assert re.search(r"refus|max_connections|too many", log, re.I), log


def test_log_levels_quiet_verbose_and_json(itch_server: Serve) -> None:
    args = ["tail", itch_server.address, "--user", "user", "--count", "1"]
    default = run(*args)
    quiet = run_with("-q", *args)
    verbose = run_with("-v", *args)
    jsonlog = run_with("--log-format", "json", *args)
    assert TIME.search(default.stderr), default.stderr  # HH:MM:SS.mmm
    assert "status:" not in default.stderr
    assert quiet.returncode == 0
    assert quiet.stderr.strip().splitlines() == [quiet.stderr.strip()]  # the summary alone
    assert quiet.stderr.startswith("1 message in")
    assert "status: LoginAccepted" in verbose.stderr  # -v shows more than the default
    logged = [json.loads(line) for line in jsonlog.stderr.splitlines() if line.startswith("{")]
    assert logged
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", x["time"]) for x in logged)
    assert {x["level"] for x in logged} <= {"info", "warning", "debug"}


def test_tail_says_what_it_receives_and_when_it_asked_beyond_the_end(itch_server: Serve) -> None:
    args = ["tail", itch_server.address, "--user", "user", "--count", "1"]
    start = run(*args, "--sequence", "1")
    assert "next sequence" not in start.stderr  # it read as if the rest had been skipped
    assert "the server sends from sequence 1" in start.stderr
    assert "1 message in" in start.stderr
    assert "stopped: after 1 message (--count)" in start.stderr
    follower = subprocess.Popen(
        [*CLI, *args[:-2], "--sequence", "9000"], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    assert follower.stderr is not None
    lines: list[str] = []
    while not any("note:" in line for line in lines):
        line = follower.stderr.readline()
        assert line, "".join(lines)
        lines.append(line)
    follower.send_signal(signal.SIGINT)
    rest = finish(follower)[1]  # not communicate(): it loses what readline() buffered
    assert (
        "note: sequence 9,000 is beyond the end of the session (the server has 1..3,001): "
        "starting at 3,002, the next message published"
    ) in "".join(lines)
    assert follower.returncode == 130
    assert "stopped: interrupted" in rest  # Ctrl-C, not "end of session"
    assert "soupbintcp: interrupted" in rest


def test_tail_needs_no_username_for_a_no_auth_server(tmp_path: Path) -> None:
    open_server = Serve("--store", str(tmp_path / "open.soup"), "--no-auth", "--generate", "500")
    closed_server = Serve("--store", str(tmp_path / "closed.soup"), "--user", "user")
    env = {k: v for k, v in ENV.items() if k != "SOUPBINTCP_USER"}
    try:
        anyone = run("tail", open_server.address, "--count", "1", env=env)
        nobody = run("tail", closed_server.address, "--count", "1", env=env)
    finally:
        open_server.stop()
        closed_server.stop()
    assert anyone.returncode == 0, anyone.stderr
    assert "1 message in" in anyone.stderr
    assert nobody.returncode == 1
    assert "login rejected by the server: not authorized: no username was given" in nobody.stderr


def test_serve_on_a_busy_port_leaves_no_journal_behind(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--listen", f"127.0.0.1:{port}",
                     "--store", str(tmp_path / "new" / "feed.soup"), "--no-auth")  # fmt: skip
    assert result.returncode == 1
    assert "address already in use" in result.stderr
    assert not (tmp_path / "new").exists()


def test_demo_says_its_disconnect_is_deliberate_and_counts_the_reconnect() -> None:
    result = run("demo", "--messages", "30000")
    assert result.returncode == 0, result.stderr
    assert "cutting the client's connection on purpose" in result.stderr
    assert ", 1 reconnect, " in result.stderr
    assert "receiving from sequence" not in result.stderr
    assert "the feed is ITCH 5.0; some of its messages, decoded:" in result.stderr
    assert "F Add Order with MPID Attribution at 09:30:00.000002750" in result.stderr
    assert "verdict: OK" in result.stderr


class _Recorder:
    """Stands in for the server: what `replay` publishes, call by call."""

    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []
        self.times: list[float] = []  # the loop's clock at each call

    def publish_many(self, messages: list[bytes]) -> int:
        self.calls.append(list(messages))
        self.times.append(asyncio.get_running_loop().time())
        return len(messages)


def _stamped(ns: int, tag: bytes) -> bytes:
    return b"S" + bytes(4) + ns.to_bytes(6, "big") + tag  # an ITCH System Event's header


async def test_replay_publishes_by_the_timestamps_or_all_at_once(tmp_path: Path) -> None:
    from soupbintcp.cli._replay import parse_pace, replay

    stamps = [0, 0, 10**9, 10**9 + 1, 3 * 10**9]  # seconds 0, 0, 1, 1, 3 of the capture
    messages = [_stamped(ns, b"%d" % i) for i, ns in enumerate(stamps)]
    binary = tmp_path / "t.itch"
    binary.write_bytes(b"".join(len(m).to_bytes(2, "big") + m for m in messages))
    paced, flat = _Recorder(), _Recorder()
    stop = asyncio.Event()
    start = asyncio.get_running_loop().time()  # no later than the replay's own start
    assert await replay(paced, binary, parse_pace("10x"), stop) == 5  # type: ignore[arg-type]
    assert await replay(flat, binary, parse_pace("max"), stop) == 5  # type: ignore[arg-type]
    # Paced: what is due at once goes in the first call; nothing goes before it is due
    # (capture time / 10 after the start). A loaded machine may let later ones fall due
    # together, never earlier ones, so the check is on the loop's clock at each call, not
    # on how the messages happened to be grouped.
    assert paced.calls[0][:2] == messages[0:2]
    assert [m for call in paced.calls for m in call] == messages
    for call, at in zip(paced.calls, paced.times, strict=True):
        for m in call:
            assert at >= start + int.from_bytes(m[5:11], "big") / 1e9 / 10, (m, at - start)
    assert flat.calls == [messages]
    assert parse_pace("2.5x") == 2.5
