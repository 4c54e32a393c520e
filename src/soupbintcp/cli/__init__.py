"""The `soupbintcp` command line: serve, tail, record and demo.

Layer 5: built only on the public API of `soupbintcp`. Needs the `cli` extra (click, rich);
without it, `main()` says how to install it.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    try:
        from ._app import run
    except ImportError as exc:  # pragma: no cover - depends on the environment
        print(
            f"soupbintcp: the command line needs its extra ({exc.name} is missing): "
            "pip install 'soupbintcp[cli]'",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    raise SystemExit(run(argv))
