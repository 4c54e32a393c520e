"""docs/order-entry.md runs as written: the first-fill script against a venue with bots, and
the pytest example (the ``venue`` fixture, installed as a plugin) in a pytest of its own."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from soupbintcp.testing import start_venue

DOC = Path(__file__).resolve().parent.parent / "docs" / "order-entry.md"


def _python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_the_first_fill_script_fills_against_the_bots() -> None:
    script = _python_blocks()[0]
    with start_venue(["AAPL", "MSFT"], bots=4, seed=1) as venue:
        deadline = time.monotonic() + 10
        while not venue.depth("AAPL")[1] and time.monotonic() < deadline:
            time.sleep(0.02)  # the market makers' first offers
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(script.replace("7001", str(venue.address[1])), {})  # noqa: S102
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("S SystemEvent")
    assert lines[1].startswith("A OrderAccepted")
    assert any(line.startswith("E OrderExecuted") and "liquidity_flag=R" in line for line in lines)


def test_the_pytest_example_passes_with_the_installed_fixture(tmp_path: Path) -> None:
    example = _python_blocks()[1]
    (tmp_path / "test_example.py").write_text(example, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert "3 passed" in done.stdout, done.stdout + done.stderr
