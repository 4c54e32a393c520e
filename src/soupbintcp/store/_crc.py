"""The CRC-32 the journal's checksums use: zlib-ng's when it is installed, else zlib's.

Both compute the same CRC-32 (the polynomial of zlib, gzip and PNG), so a journal's side file
reads the same whichever wrote it. zlib-ng (``pip install soupbintcp[fast]``) computes it
about three to four times as fast on this machine (6.6 to 8.8 GB/s against 1.8 to 3.1 GB/s
for zlib's, in 4 KiB calls, 2026-12): with zlib's, checksumming what a bulk append writes
cost 10 to 15 % of the append (`bench/bench_store.py`). The core keeps no dependency beyond
the standard library: zlib-ng is only an optional extra.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from types import ModuleType

__all__ = ["CRC_LIBRARY", "crc32"]


def _fastest() -> ModuleType:
    try:
        from zlib_ng import zlib_ng
    except ImportError:  # the optional extra is not installed
        return zlib
    return zlib_ng


_impl = _fastest()
#: Which library computes the checksums: "zlib-ng" or "zlib".
CRC_LIBRARY: str = "zlib-ng" if _impl is not zlib else "zlib"
#: CRC-32 of a buffer, continuing from a previous value (zlib's signature).
crc32: Callable[..., int] = _impl.crc32
