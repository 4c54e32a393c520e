"""The optional compiled fast path: which path is in use, decided once at import.

Layer 0 (a leaf: it imports nothing of the package, so the wire layer can use it). The
compiled module `_core` is built from `_core.pyx` when a C compiler is there at install (the
C, generated at build time, ships in the sdist, so no Cython is needed); without it, or with
``SOUPBINTCP_PURE_PYTHON=1`` in the environment, everything runs the pure-Python code, which
stays the reference. Offers the layers above `ACCELERATED`; they import the compiled twins
from `_core` only when it is true.
"""

from __future__ import annotations

import os
from typing import Final

# What the layers above use; PURE_PYTHON_VARIABLE is for the tests and benchmarks.
__all__ = ["ACCELERATED"]

#: Set to 1 (or any value but "" and "0") to force the pure-Python path at import.
PURE_PYTHON_VARIABLE: Final = "SOUPBINTCP_PURE_PYTHON"


def pure_python_forced() -> bool:
    return os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0")


def _load() -> bool:
    if pure_python_forced():
        return False
    try:
        from . import _core  # noqa: F401
    except ImportError:  # not built (no compiler at install), or another interpreter
        return False
    return True


#: True when the compiled fast path is in use.
ACCELERATED: Final = _load()
