"""`soupbintcp order`: send survives kill -9 and a rerun with the same --state (each line's
order entered exactly once, each response printed at most once), status rebuilds the state
from the venue's stream alone, cancel-all empties the book. Against the project's venue,
in this process; the command line runs as a child."""

from __future__ import annotations

import asyncio
import json
import random
import signal
from collections import Counter
from pathlib import Path

import pytest

from soupbintcp import ouch
from soupbintcp.venue import Venue

from .test_cli import CLI, ENV, run


async def _cli(*args: str, kill_after: float | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=ENV
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), kill_after or 60.0)
    except TimeoutError:
        if kill_after is None:
            raise
        proc.send_signal(signal.SIGKILL)
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _orders_file(path: Path, count: int, rng: random.Random) -> list[str]:
    lines = []
    for k in range(1, count + 1):
        price = f"{100 + rng.randint(-2, 2) / 100:.2f}"
        side = rng.choice("BS")
        tif = rng.choice(["day", "day", "ioc"])
        line = {
            "id": f"C{k:05d}",
            "symbol": "AAPL",
            "side": side,
            "qty": 100,
            "price": price,
            "tif": tif,
        }
        lines.append(json.dumps(line))
    path.write_text("\n".join(lines) + "\n")
    return [f"C{k:05d}" for k in range(1, count + 1)]


async def test_order_send_survives_kill_9_and_a_rerun(tmp_path: Path) -> None:
    rng = random.Random(21)
    ids = _orders_file(tmp_path / "orders.jsonl", 60, rng)
    state = tmp_path / "state"
    async with Venue(["AAPL", "MSFT"]) as venue:
        where = "{}:{}".format(*venue.address)
        args = ["order", "send", str(tmp_path / "orders.jsonl"), "--venue", where,
                "--user", "alice", "--state", str(state), "--rate", "60"]  # fmt: skip
        printed: list[int] = []
        kills = 0
        for attempt in range(10):
            # ~0.5 s to start, ~1 s to send at 60/s: the kills land before, during, after
            kill_after = rng.uniform(0.4, 1.6) if attempt < 3 else None
            code, out, err = await _cli(*args, kill_after=kill_after)
            printed += [json.loads(line)["sequence"] for line in out.splitlines()]
            if code == -signal.SIGKILL:
                kills += 1
                continue
            assert code == 0, err
            break
        assert kills >= 1
        assert "entered now" in err
        stream = venue.server.stream("alice").store  # type: ignore[union-attr]
        messages = [ouch.decode_outbound(p) for p in stream.read(1, stream.count)]
        entered = [m for m in messages if isinstance(m, ouch.OrderAccepted | ouch.Rejected)]
        assert Counter(m.cl_ord_id for m in entered) == Counter(ids)  # each exactly once
        numbers = [m.user_ref_num for m in entered]
        assert numbers == sorted(set(numbers))  # none reused
        assert len(printed) == len(set(printed))  # each response printed at most once
        assert printed  # and the responses are printed

        # status: rebuilt from the venue's stream alone (no --state)
        code, out, err = await _cli("order", "status", "--venue", where, "--user", "alice")
        assert code == 0, err
        rows = [json.loads(line) for line in out.splitlines()]
        orders = {r["id"]: r for r in rows if "id" in r}
        assert set(orders) == set(ids)
        live = venue.engine.accounts["alice"].orders
        assert {o["user_ref_num"] for o in orders.values() if o["open"]} == set(live)
        assert rows[-1]["positions"] == {
            k: v for k, v in {"AAPL": sum(
                (o["executed"] if o["side"] == "B" else -o["executed"]) for o in orders.values()
            )}.items() if v
        }  # fmt: skip

        # cancel-all: the kill switch from the command line
        assert live, "the file leaves some orders resting"
        code, out, err = await _cli("order", "cancel-all", "--venue", where, "--user", "alice")
        assert code == 0, err
        assert len(out.splitlines()) == len(live) or not venue.engine.accounts["alice"].orders
        await asyncio.sleep(0.05)
        assert not venue.engine.accounts["alice"].orders


async def test_order_send_stops_cleanly_on_sigterm_and_goes_on_when_rerun(tmp_path: Path) -> None:
    ids = _orders_file(tmp_path / "orders.jsonl", 40, random.Random(5))
    async with Venue(["AAPL"]) as venue:
        args = [*CLI, "order", "send", str(tmp_path / "orders.jsonl"), "--venue",
                "{}:{}".format(*venue.address), "--user", "bob", "--state",
                str(tmp_path / "state"), "--rate", "40"]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=ENV
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        await asyncio.wait_for(proc.stdout.readline(), 30)  # running: a response printed
        proc.send_signal(signal.SIGTERM)
        err = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
        assert await proc.wait() == 130
        assert "rerun with the same --state" in err
        assert "Traceback" not in err
        code, _, err = await _cli(*args[len(CLI) :])
        assert code == 0, err
        stream = venue.server.stream("bob").store  # type: ignore[union-attr]
        entered = [
            m.cl_ord_id
            for m in map(ouch.decode_outbound, stream.read(1, stream.count))
            if isinstance(m, ouch.OrderAccepted | ouch.Rejected)
        ]
        assert Counter(entered) == Counter(ids)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('{"id": "A", "symbol": "AAPL", "side": "X", "qty": 1, "price": "1"}', "side is one of"),
        ('{"id": "A", "symbol": "AAPL", "side": "B", "qty": 1, "price": "1.00001"}', "4 decimals"),
        ('{"id": "A", "symbol": "AAPL", "side": "B", "qty": 1}', "missing 'price'"),
        ('{"id": "A", "symbol": "AAPL", "side": "B", "qty": 1, "price": 1, "tif": "x"}', "tif is"),
        ("not json", "not JSON"),
    ],
)
def test_order_send_says_which_line_is_wrong(tmp_path: Path, line: str, error: str) -> None:
    (tmp_path / "o.jsonl").write_text(line + "\n")
    result = run("order", "send", str(tmp_path / "o.jsonl"), "--venue", "127.0.0.1:9", "-u", "a")
    assert result.returncode == 1
    assert error in result.stderr
    assert "o.jsonl:1" in result.stderr


def test_order_help_says_what_the_commands_do() -> None:
    text = run("order", "--help").stdout
    for command in ("send", "cancel-all", "status"):
        assert command in text
    send = run("order", "send", "--help").stdout
    for option in ("--venue", "--state", "--rate", "--password", "exactly once", "kill -9"):
        assert option in send
