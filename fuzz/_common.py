"""What the fuzz targets share: a reader that turns fuzz bytes into choices, and the runner."""

from __future__ import annotations

import gc
import shlex
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

__all__ = ["CORPUS", "MAX_OPS", "Reader", "run"]

T = TypeVar("T")

#: fuzz/corpus/<target>/: the seed and found inputs of each target.
CORPUS: Final = Path(__file__).resolve().parent / "corpus"
#: Operations interpreted per input: bounds the work of one execution whatever its length.
MAX_OPS: Final = 400
_INSTRUMENTED: Final = ("soupbintcp.", "fuzz.", "__main__")


class Reader:
    """Consumes fuzz bytes as choices. Past the end every read returns zeros / empty."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def done(self) -> bool:
        return self._pos >= len(self._data)

    def byte(self) -> int:
        if self._pos >= len(self._data):
            return 0
        b = self._data[self._pos]
        self._pos += 1
        return b

    def u16(self) -> int:
        return (self.byte() << 8) | self.byte()

    def take(self, n: int) -> bytes:
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def number(self, options: tuple[int, ...]) -> int:
        """One of `options`, or (one choice in len(options) + 1) a 16-bit number read next."""
        i = self.byte() % (len(options) + 1)
        return options[i] if i < len(options) else self.u16()

    def choice(self, options: tuple[T, ...]) -> T:
        return options[self.byte() % len(options)]


def _instrument(atheris: Any) -> None:
    """Coverage for the library and the targets only: `atheris.instrument_all()` would take
    some 20 s instrumenting every module loaded (asyncio, logging, ...)."""
    count = 0
    for obj in gc.get_objects():
        if (
            isinstance(obj, types.FunctionType)
            and isinstance(getattr(obj, "__module__", None), str)
            and obj.__module__.startswith(_INSTRUMENTED)
        ):
            atheris.instrument_func(obj)
            count += 1
    print(f"INFO: instrumented {count} functions of {', '.join(_INSTRUMENTED)}", file=sys.stderr)


def run(check: Callable[[bytes], None]) -> None:
    """Run `check` under atheris with the command line as libFuzzer options."""
    import atheris  # only the fuzzing entry point needs it

    _instrument(atheris)
    argv = list(sys.argv)
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is not None:
        # Run as `python -m fuzz.<target>`: libFuzzer's -merge and -fork start argv[0]
        # through the shell, so make it the command that runs this module again.
        argv[0] = f"{shlex.quote(sys.executable)} -m {spec.name}"
    atheris.Setup(argv, check)
    atheris.Fuzz()
