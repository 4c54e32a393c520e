"""Build hook: generate and compile the optional extension `soupbintcp._speedups._core`.

The C is generated from `_core.pyx` (and the `.pxi` files it includes) at build time and
never kept in git (an 18,000-line artefact of one Cython version). The sdist carries the
generated C, as msgpack's and aiohttp's do, so a build from the sdist needs a C compiler but
not Cython; a build from a git checkout (no C yet, or C older than its sources) asks the
frontend for Cython through `dependencies()`, and generates it first. Where no compiler works
(`CC=false`, none installed, another interpreter) the wheel is the pure-Python one and the
package runs its pure-Python code: a warning in the build log, never a failed install.

`python hatch_build.py` generates the C if needed and compiles the extension in place, next
to its source, for a development (editable) install; the Makefile does that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = ROOT / "src" / "soupbintcp" / "_speedups"
PYX = PACKAGE_DIR / "_core.pyx"
SOURCE = PACKAGE_DIR / "_core.c"
MODULE = "soupbintcp._speedups._core"
#: What generates the C; asked for only when the C must be generated (a git checkout).
CYTHON_REQUIREMENT = "cython>=3.1,<4"
#: Set to 1 to build the pure-Python wheel even where a compiler exists.
NO_EXTENSION_VARIABLE = "SOUPBINTCP_NO_EXTENSION"


def _extension_name() -> str:
    return "_core" + str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def cython_sources() -> list[Path]:
    """`_core.pyx` and the `.pxi` files it includes: the C is stale if any is newer."""
    return [PYX, *sorted(PACKAGE_DIR.glob("*.pxi"))]


def c_needs_generating() -> bool:
    """True in a checkout whose C is missing or older than its Cython sources (not an sdist)."""
    if not PYX.is_file():
        return False
    if not SOURCE.is_file():
        return True
    newest = max(path.stat().st_mtime for path in cython_sources())
    return SOURCE.stat().st_mtime < newest


def generate_c() -> bool:
    """Write `_core.c` from `_core.pyx` with Cython if it is missing or stale; False if not.

    Run in the package folder: the C names its sources relative to it, so the file is the same
    wherever the checkout is.
    """
    if not c_needs_generating():
        return SOURCE.is_file()
    done = subprocess.run(  # noqa: S603 (our interpreter, our file names)
        [sys.executable, "-m", "cython", "-3", PYX.name, "-o", SOURCE.name],
        cwd=PACKAGE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(
            f"soupbintcp: cannot generate {SOURCE.name} with Cython "
            f"({(done.stderr or done.stdout).strip()[-300:]})",
            file=sys.stderr,
        )
        SOURCE.unlink(missing_ok=True)  # never leave half a file to be compiled or shipped
        return False
    return True


def compile_extension(out_dir: Path) -> Path | None:
    """The compiled module, built in `out_dir`; None (and a warning) if it cannot be."""
    if os.environ.get(NO_EXTENSION_VARIABLE, "") not in ("", "0"):
        return None
    if sys.implementation.name != "cpython":
        return None  # the C API it is written against
    if not generate_c():
        return None
    try:
        # setuptools finds the platform's compiler and flags (gcc, clang, MSVC) for us.
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext

        dist = Distribution(
            {
                "name": "soupbintcp-speedups",
                "ext_modules": [Extension(MODULE, [str(SOURCE)], optional=False)],
            }
        )
        command = build_ext(dist)
        with tempfile.TemporaryDirectory() as temp:
            command.build_lib = str(out_dir)
            command.build_temp = temp
            command.ensure_finalized()
            command.run()
        built = out_dir / "soupbintcp" / "_speedups" / _extension_name()
        if not built.is_file():
            raise FileNotFoundError(built)
    except Exception as exc:  # any failure means: the pure-Python package
        print(
            f"soupbintcp: not building the compiled fast path ({type(exc).__name__}: {exc}); "
            "the pure-Python code will be used",
            file=sys.stderr,
        )
        return None
    return built


def compile_in_place() -> Path | None:
    """Build the extension next to its source (a development install); None if it cannot."""
    for stale in PACKAGE_DIR.glob("_core.*.so"):
        stale.unlink()
    for stale in PACKAGE_DIR.glob("_core.*.pyd"):
        stale.unlink()
    with tempfile.TemporaryDirectory() as temp:
        built = compile_extension(Path(temp))
        if built is None:
            return None
        target = PACKAGE_DIR / built.name
        shutil.copy2(built, target)
    return target


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script (the Makefile) without hatchling: only compile_in_place
    pass
else:

    class SpeedupsBuildHook(BuildHookInterface):  # type: ignore[type-arg]
        """Puts the generated C in the sdist; compiles it into the wheel and tags the wheel."""

        PLUGIN_NAME = "custom"

        def dependencies(self) -> list[str]:
            # Cython only where there is no (fresh) C to build from: a checkout, not an sdist.
            return [CYTHON_REQUIREMENT] if c_needs_generating() else []

        def initialize(self, version: str, build_data: dict[str, Any]) -> None:
            if self.target_name == "sdist":
                if not generate_c():
                    raise RuntimeError("the sdist must carry _core.c: install Cython")
                # Ignored by git, so named here for the sdist.
                build_data["force_include"][str(SOURCE)] = str(SOURCE.relative_to(ROOT))
                return
            if self.target_name != "wheel":
                return
            if version == "editable":
                compile_in_place()  # imported from src/ by the editable install
                return
            self._temp = tempfile.mkdtemp(prefix="soupbintcp-speedups-")
            built = compile_extension(Path(self._temp))
            if built is None:
                return
            build_data["force_include"][str(built)] = f"soupbintcp/_speedups/{built.name}"
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

        def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
            temp = getattr(self, "_temp", None)
            if temp is not None:
                shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    path = compile_in_place()
    print(f"built {path.relative_to(ROOT)}" if path else "no extension built: pure Python")
