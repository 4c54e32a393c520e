"""`journal dump`, `journal export` and `tail` find messages by type, symbol, sequence range
and time of day, in a journal whose every message the test wrote by hand (ITCH 5.0 layouts
from the specification's tables) and in an OUCH 5.0 order stream."""

from __future__ import annotations

import asyncio
import struct
import sys
from pathlib import Path

import pytest

import soupbintcp
from soupbintcp import ouch
from soupbintcp.cli._app import run
from soupbintcp.store import FileStore, iter_binaryfile

MINUTE = 60 * 10**9
OPEN = (9 * 60 + 30) * MINUTE  # 09:30


def _head(kind: bytes, locate: int, ns: int) -> bytes:
    # Message Type 1, Stock Locate 2, Tracking Number 2, Timestamp 6 (ns since midnight).
    return kind + locate.to_bytes(2, "big") + b"\0\0" + ns.to_bytes(6, "big")


def directory(locate: int, stock: str, ns: int) -> bytes:
    """R, Stock Directory, 39 bytes: the Stock field at offset 11."""
    return (
        _head(b"R", locate, ns)
        + stock.encode().ljust(8)
        + b"QN"
        + bytes(4)
        + b"NC  PNN1N"
        + bytes(4)
        + b"N"
    )


def add(locate: int, stock: str, ns: int, order: int) -> bytes:
    """A, Add Order, 36 bytes: Order Reference 8, Side 1, Shares 4, Stock 8, Price 4."""
    return _head(b"A", locate, ns) + struct.pack(
        ">QcI8sI", order, b"B", 100, stock.encode().ljust(8), 1_000_000
    )


def executed(locate: int, ns: int, order: int) -> bytes:
    """E, Order Executed, 31 bytes: no Stock field, only the Stock Locate."""
    return _head(b"E", locate, ns) + struct.pack(">QIQ", order, 100, 7)


def system(ns: int) -> bytes:
    return _head(b"S", 0, ns) + b"O"


# (sequence, message): what the journal holds, numbered from 1.
ITCH = [
    system(OPEN - 30 * MINUTE),  # 1
    directory(1, "AAPL", OPEN - 20 * MINUTE),  # 2
    directory(2, "MSFT", OPEN - 20 * MINUTE),  # 3
    add(1, "AAPL", OPEN - MINUTE, 1),  # 4: 09:29
    add(2, "MSFT", OPEN, 2),  # 5: 09:30:00
    executed(1, OPEN + MINUTE // 2, 1),  # 6: 09:30:30, AAPL by locate only
    executed(2, OPEN + MINUTE // 2, 2),  # 7
    add(1, "AAPL", OPEN + MINUTE // 2 + 1, 3),  # 8
    executed(1, OPEN + MINUTE, 3),  # 9: 09:31:00, not before 09:31
    add(2, "MSFT", OPEN + 2 * MINUTE, 4),  # 10
]


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "itch.soup"
    with FileStore(path, session_id="FIND") as store:
        store.append_many(ITCH)
    return path


def shown(capfd: pytest.CaptureFixture[str], *args: str) -> list[int]:
    """The sequence numbers `journal dump ...` prints."""
    assert run(["journal", "dump", *args]) == 0
    out = capfd.readouterr().out
    return [int(line.split("\t")[0]) for line in out.splitlines()]


def test_type_symbol_range_and_time_of_day(
    journal: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    j = str(journal)
    assert shown(capfd, j, "--type", "A,E") == [4, 5, 6, 7, 8, 9, 10]
    assert shown(capfd, j, "--type", "S") == [1]
    assert shown(capfd, j, "--symbol", "AAPL") == [2, 4, 6, 8, 9]
    assert shown(capfd, j, "--symbol", "AAPL,MSFT", "--type", "E") == [6, 7, 9]
    assert shown(capfd, j, "--since", "09:30", "--until", "09:31") == [5, 6, 7, 8]
    assert shown(capfd, j, "--since", "09:30:30", "--symbol", "AAPL") == [6, 8, 9]
    assert shown(capfd, j, "--from", "5", "--to", "8") == [5, 6, 7, 8]
    # From past the Stock Directory: the symbol's locate is still known.
    assert shown(capfd, j, "--from", "6", "--symbol", "MSFT") == [7, 10]
    assert shown(capfd, j, "--symbol", "AAPL", "--count", "2") == [2, 4]
    assert shown(capfd, j, "--symbol", "IBM") == []


def test_bad_filters_are_one_clear_error(journal: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert run(["journal", "dump", str(journal), "--since", "9h30"]) == 1
    assert "time of day '9h30'" in capfd.readouterr().err
    assert run(["journal", "dump", str(journal), "--type", "AE"]) == 1
    assert "--type 'AE'" in capfd.readouterr().err


def test_export_takes_the_same_range(journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "part.itch"
    assert run(["journal", "export", str(journal), "--binaryfile", str(out), "--from", "3",
                "--to", "9", "--since", "09:30"]) == 0  # fmt: skip
    assert list(iter_binaryfile(out)) == ITCH[4:9]


def test_ouch_symbol_follows_the_order_from_its_acceptance(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    def accepted(ref: int, symbol: str) -> bytes:
        return ouch.OrderAccepted(
            1, ref, ouch.Side.BUY, 100, symbol, 1_000_000, ouch.TimeInForce.DAY,
            ouch.Display.VISIBLE, ref, ouch.Capacity.AGENCY,
            ouch.IntermarketSweepEligibility.NOT_ELIGIBLE, ouch.CrossType.CONTINUOUS,
            ouch.OrderState.LIVE, f"c{ref}",
        ).encode()  # fmt: skip

    def fill(ref: int) -> bytes:
        return ouch.OrderExecuted(2, ref, 100, 1_000_000, ouch.LiquidityFlag.ADDED, ref).encode()

    path = tmp_path / "ouch.soup"
    with FileStore(path, session_id="OUCH") as store:
        store.append_many([accepted(1, "AAPL"), accepted(2, "MSFT"), fill(2), fill(1)])
    j = str(path)
    assert shown(capfd, j, "--protocol", "ouch50", "--symbol", "AAPL") == [1, 4]
    assert shown(capfd, j, "--protocol", "ouch50", "--symbol", "MSFT", "--type", "E") == [3]
    assert shown(capfd, j, "--type", "E") == [3, 4]
    # --decode ouch50 says what the payloads are: --symbol follows it.
    assert run(["journal", "dump", j, "--decode", "ouch50", "--symbol", "MSFT"]) == 0
    lines = capfd.readouterr().out.splitlines()
    assert [int(line.split("\t")[0]) for line in lines] == [2, 3]


async def test_tail_filters_stops_at_to_and_stamps_receive_times(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "served.soup", session_id="FIND")
    store.append_many(ITCH)
    server = await soupbintcp.serve(("127.0.0.1", 0), store=store, credentials={"u": "p"})
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "soupbintcp", "--loop", "asyncio", "tail",
            f"127.0.0.1:{server.address[1]}", "-u", "u", "--password", "p",
            "--symbol", "AAPL", "--to", "8", "--timestamps",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await server.close()
        store.close()
    assert proc.returncode == 0, err
    lines = out.decode().splitlines()
    assert [int(line.split("\t")[0].split(" ")[1]) for line in lines] == [2, 4, 6, 8]
    assert all(line.split(" ")[0].endswith("Z") and len(line.split(" ")[0]) == 30 for line in lines)
    assert "after sequence 8 (--to)" in err.decode()
