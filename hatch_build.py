"""Build hook: compile the optional extension `soupbintcp._speedups._core` from its C source.

The C file is generated from `_core.pyx` by Cython and committed, so a build from source
needs a C compiler but not Cython (`make cython` regenerates it). Where no compiler works
(`CC=false`, none installed, another interpreter) the wheel is the pure-Python one and the
package runs its pure-Python code: a warning in the build log, never a failed install.

`python hatch_build.py` compiles the extension in place, next to its source, for a
development (editable) install; the Makefile does that.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = ROOT / "src" / "soupbintcp" / "_speedups"
SOURCE = PACKAGE_DIR / "_core.c"
MODULE = "soupbintcp._speedups._core"
#: Set to 1 to build the pure-Python wheel even where a compiler exists.
NO_EXTENSION_VARIABLE = "SOUPBINTCP_NO_EXTENSION"


def _extension_name() -> str:
    return "_core" + str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def compile_extension(out_dir: Path) -> Path | None:
    """The compiled module, built in `out_dir`; None (and a warning) if it cannot be."""
    if os.environ.get(NO_EXTENSION_VARIABLE, "") not in ("", "0"):
        return None
    if sys.implementation.name != "cpython":
        return None  # the C API it is written against
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
        """Adds the compiled module to the wheel and tags it for this platform."""

        PLUGIN_NAME = "custom"

        def initialize(self, version: str, build_data: dict[str, Any]) -> None:
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
