"""The packaging step of `make test` (`make package-check`): build, install, smoke-test.

Builds the sdist from the checkout and the wheel from that sdist (as `python -m build` does),
then installs each into a fresh venv twice, once with the C compiler and once with
``CC=false``, and runs tests/package_smoke.py there, which reports the path in use:

    wheel, compiler       compiled  (the wheel carries the built extension)
    wheel, CC=false       compiled  (a binary wheel needs no compiler)
    sdist, compiler       compiled  (built from the C the sdist carries, without Cython)
    sdist, CC=false       pure      (no compiler: the pure-Python package, not a failed install)

It also checks that git tracks no C, that the sdist carries the generated C and does not ask
for Cython, and that the wheel ships neither .c nor .pyx. The venvs are made without pip and
filled by this interpreter's pip (``pip --python``), reusing its cache: the only network is
PyPI, for the isolated build of the sdist (hatchling, setuptools).

Run with the development venv's Python from the project root:
``.venv/bin/python tests/package_check.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMOKE = Path(__file__).resolve().parent / "package_smoke.py"
GENERATED_C = "src/soupbintcp/_speedups/_core.c"


def run(command: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stdout}\n{done.stderr}")
    return done.stdout


def check_sources() -> None:
    tracked = run(["git", "ls-files", "*.c"]).split()
    if tracked:
        sys.exit(f"generated C is tracked by git: {tracked}")


def build(out: Path) -> tuple[Path, Path]:
    # --no-isolation: this venv has the build group (hatchling, setuptools, Cython) already.
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def check_artifacts(sdist: Path, wheel: Path, work: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        if f"{top}/{GENERATED_C}" not in names:
            sys.exit(f"the sdist does not carry {GENERATED_C}")
        tar.extractall(work, filter="data")
    # In the unpacked sdist the build hook must not ask for Cython: the C is there and fresh.
    asks = run(
        [sys.executable, "-c", "import hatch_build; print(hatch_build.c_needs_generating())"],
        cwd=work / top,
    ).strip()
    if asks != "False":
        sys.exit("a build from the sdist would need Cython")
    with zipfile.ZipFile(wheel) as whl:
        shipped = [n for n in whl.namelist() if n.endswith((".c", ".pyx", ".pxi"))]
        compiled = [n for n in whl.namelist() if "/_core." in n]
    if shipped:
        sys.exit(f"the wheel ships sources it does not need: {shipped}")
    if not compiled:
        sys.exit(f"{wheel.name} has no compiled extension, though a compiler was there")


def install_and_smoke(artifact: Path, where: Path, with_compiler: bool, expect: str) -> str:
    venv.create(where, with_pip=False)
    python = where / "bin" / "python"
    env = dict(os.environ)
    env.pop("SOUPBINTCP_PURE_PYTHON", None)
    if not with_compiler:
        env["CC"] = "false"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    run([*pip, "install", "--quiet", str(artifact)], env=env)
    return run([str(python), str(SMOKE), expect], env=env, cwd=where).strip()


def main() -> int:
    started = time.monotonic()
    check_sources()
    with tempfile.TemporaryDirectory(prefix="soupbintcp-package-") as temp:
        work = Path(temp)
        sdist, wheel = build(work / "dist")
        check_artifacts(sdist, wheel, work / "unpacked")
        print(f"built {sdist.name} (carries the C) and {wheel.name}")
        cases = [
            (wheel, True, "compiled"),
            (wheel, False, "compiled"),
            (sdist, True, "compiled"),
            (sdist, False, "pure"),
        ]
        for i, (artifact, with_compiler, expect) in enumerate(cases):
            kind = "wheel" if artifact is wheel else "sdist"
            cc = "compiler" if with_compiler else "CC=false"
            line = install_and_smoke(artifact, work / f"venv{i}", with_compiler, expect)
            print(f"  {kind}, {cc:<8}  -> {line.rsplit(': ', 1)[-1]}")
    print(f"packaging check passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
