"""The fuzz targets of fuzz/ in CI: bounded, and each stops by itself.

(a) every corpus file replayed through its target's `check`;
(b) each target run by atheris (libFuzzer) as a subprocess for a bounded number of runs and
    seconds, the three at once; skipped only when atheris is not importable;
(c) each `check` driven by Hypothesis: random bytes and mutations of the corpus. It always
    runs, so without atheris the targets are still fuzzed.

The rule each `check` enforces: an input is handled or raises the project's own error for
that call (see fuzz/README.md); anything else, or a broken invariant, is a bug. The `long`
variants run the same with a much bigger budget (`make test-long`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pytest
from fuzz._common import CORPUS
from fuzz.seeds import TARGETS, seeds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT: Final = Path(__file__).resolve().parent.parent
HAVE_ATHERIS: Final = importlib.util.find_spec("atheris") is not None

Check = Callable[[bytes], None]


def _check(target: str) -> Check:
    module = importlib.import_module(f"fuzz.{target}")
    check: Check = module.check
    return check


def _corpus(target: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((CORPUS / target).iterdir()) if p.is_file()]


# --- (a) the corpus -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_corpus_replays_cleanly(target: str) -> None:
    inputs = _corpus(target)
    assert len(inputs) >= len(seeds()[target]), "the corpus lost its seeds"
    check = _check(target)
    for data in inputs:
        check(data)


def test_corpus_stays_small() -> None:
    files = [p for p in CORPUS.rglob("*") if p.is_file()]
    assert len(files) < 200
    assert sum(p.stat().st_size for p in files) < 1_000_000


def test_seed_files_match_the_seed_generator() -> None:
    """fuzz/seeds.py is the source of the seed-* files: regenerate them after changing it."""
    for target, named in seeds().items():
        for name, data in named.items():
            assert (CORPUS / target / f"seed-{name}").read_bytes() == data, (target, name)


# --- (b) atheris --------------------------------------------------------------------------------


def _launch(target: str, workdir: Path, *, runs: int, seconds: int) -> subprocess.Popen[bytes]:
    """Start libFuzzer on `target`: new inputs go to a scratch folder (the first corpus
    folder is the one libFuzzer writes), crashes to `workdir`; the checked-in corpus is read."""
    found = workdir / "found"
    found.mkdir(parents=True)
    log = (workdir / "log").open("wb")
    command = [
        sys.executable,
        "-m",
        f"fuzz.{target}",
        str(found),
        str(CORPUS / target),
        f"-runs={runs}",
        f"-max_total_time={seconds}",
        "-max_len=1024",
        "-timeout=10",
        "-rss_limit_mb=1024",
        f"-artifact_prefix={workdir}/",
        "-print_final_stats=1",
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)


def _finish(process: subprocess.Popen[bytes], workdir: Path, limit: float) -> int:
    """Wait for a launched fuzzer; fail on a crash, a hang or a bad exit. Returns the runs."""
    try:
        code = process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"the fuzzer did not stop by itself within {limit} s")
    output = (workdir / "log").read_text(errors="replace")
    crashes = sorted(p.name for p in workdir.iterdir() if p.name.startswith(("crash-", "timeout-")))
    assert not crashes, f"exit {code}, artifacts {crashes}:\n{output[-4000:]}"
    assert code == 0, f"exit {code}:\n{output[-4000:]}"
    done = re.search(r"^Done (\d+) runs", output, re.MULTILINE)
    assert done is not None, output[-2000:]
    return int(done.group(1))


Launched = dict[str, tuple[subprocess.Popen[bytes], Path]]


@pytest.fixture(scope="module")
def atheris_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launched]:
    """All three targets fuzzing at once, so that the wall time is that of one."""
    if not HAVE_ATHERIS:
        pytest.skip("atheris is not installed: the Hypothesis runs below fuzz the targets")
    base = tmp_path_factory.mktemp("atheris")
    launched = {t: (_launch(t, base / t, runs=50_000, seconds=6), base / t) for t in TARGETS}
    yield launched
    for process, _ in launched.values():
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("target", TARGETS)
def test_atheris_bounded_run(target: str, atheris_runs: Launched) -> None:
    process, workdir = atheris_runs[target]
    assert _finish(process, workdir, limit=60) > 0


@pytest.mark.long
@pytest.mark.timeout(900)
@pytest.mark.skipif(not HAVE_ATHERIS, reason="atheris is not installed")
def test_atheris_long_run(tmp_path: Path) -> None:
    processes = {t: _launch(t, tmp_path / t, runs=5_000_000, seconds=180) for t in TARGETS}
    total = sum(_finish(p, tmp_path / t, limit=400) for t, p in processes.items())
    assert total > 0


# --- (c) Hypothesis -----------------------------------------------------------------------------


@st.composite
def _mutated(draw: st.DrawFn, corpus: tuple[bytes, ...]) -> bytes:
    """A corpus input with a few byte-level edits: flips, inserts, deletes, splices."""
    data = bytearray(draw(st.sampled_from(corpus)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "splice", "repeat"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and at < len(data):
            data[at] = draw(st.sampled_from([0, 1, 0xFF, 0x7F, 0x53, 0x41, 0x4C, 0x20, 0x30]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "splice":
            other = draw(st.sampled_from(corpus))
            start = draw(st.integers(0, len(other)))
            data[at:] = other[start:]
        else:
            data[at:at] = bytes(data[at : at + draw(st.integers(1, 8))]) * 2
    return bytes(data)


def _inputs(target: str) -> st.SearchStrategy[bytes]:
    corpus = tuple(_corpus(target))
    return st.one_of(st.binary(max_size=600), _mutated(corpus))


def _hypothesis_run(target: str, examples: int) -> None:
    check = _check(target)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=_inputs(target))
    def run(data: bytes) -> None:
        check(data)

    run()


@pytest.mark.parametrize("target", TARGETS)
def test_hypothesis_fuzz(target: str) -> None:
    _hypothesis_run(target, 2_000)


@pytest.mark.long
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("target", TARGETS)
def test_hypothesis_fuzz_long(target: str) -> None:
    _hypothesis_run(target, 100_000)
