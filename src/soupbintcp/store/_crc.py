"""The CRC-32 the journal's checksums use, and the loops over a run's 4 KiB blocks.

Every implementation computes the same CRC-32 (the polynomial of zlib, gzip and PNG), so a
journal's side file reads the same whichever wrote it. In order of preference:

- the compiled fast path (`_speedups/_crc.pxi`) where the CPU has carry-less multiplies
  (x86-64 with PCLMULQDQ): the blocks of one append or one read in a C loop, with no Python
  per block. Measured (`bench/bench_store.py --only checksums`, 2026-12): per-block Python
  around the calls was what kept bulk appends below 0.95x of a journal without checksums.
- zlib-ng's ``crc32`` (``pip install soupbintcp[fast]``), block by block from Python.
- the standard library's ``zlib.crc32``, block by block from Python (2 to 4 GB/s here, where
  zlib-ng and the compiled loop run at 20 GB/s and more).

`pure_block_crcs` and `pure_add_blocks` are the references the compiled twins are held to
(tests/test_checksums_compiled.py). The core keeps no dependency beyond the standard library.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Callable
from itertools import islice
from types import ModuleType
from typing import Final

from .._speedups import ACCELERATED

__all__ = [
    "BLOCK",
    "CRC_LIBRARY",
    "add_blocks",
    "block_crcs",
    "crc32",
    "pure_add_blocks",
    "pure_block_crcs",
]

#: The checksums' block: 4 KiB of the journal's records.
BLOCK: Final = 4096

Buffer = bytes | bytearray | memoryview


def _fastest() -> ModuleType:
    try:
        from zlib_ng import zlib_ng
    except ImportError:  # the optional extra is not installed
        return zlib
    return zlib_ng


_impl = _fastest()
#: CRC-32 of a buffer, continuing from a previous value (zlib's signature), from Python.
pure_crc32: Callable[..., int] = _impl.crc32

# A slice per block of a 4 MiB run: `map` over them takes a run's CRCs about 8 % faster than
# a comprehension that slices (CPU time, 64 to 256 blocks, zlib-ng).
_SLICES: Final = tuple(slice(p, p + BLOCK) for p in range(0, 1 << 22, BLOCK))


def pure_block_crcs(data: Buffer, count: int) -> array[int]:
    """The CRC-32 of each of the first `count` whole blocks of `data`."""
    if count < 0 or count * BLOCK > len(data):
        raise ValueError(f"{count} blocks of {BLOCK} bytes in a buffer of {len(data)}")
    crc = pure_crc32
    with memoryview(data) as view:
        if count <= len(_SLICES):
            return array("I", map(crc, map(view.__getitem__, islice(_SLICES, count))))
        return array("I", [crc(view[p : p + BLOCK]) for p in range(0, count * BLOCK, BLOCK)])


def pure_add_blocks(
    data: Buffer, tail_len: int, tail_crc: int, sums: array[int]
) -> tuple[int, int]:
    """Take `data`, which follows `tail_len` bytes of a partial block whose CRC is
    `tail_crc`: append to `sums` the CRC of each block it completes; the new tail's
    `(length, crc)`."""
    if not 0 <= tail_len < BLOCK:
        raise ValueError(f"a tail of {tail_len} bytes is not part of a {BLOCK}-byte block")
    crc = pure_crc32
    n = len(data)
    room = BLOCK - tail_len
    if n < room:  # the common case: a block fills every few dozen messages
        return tail_len + n, crc(data, tail_crc)
    with memoryview(data) as view:
        # The block the tail was, then the whole blocks in one go (a bulk append: per
        # block, the Python around the call costs more than the CRC).
        sums.append(crc(view[:room], tail_crc))
        whole = (n - room) // BLOCK
        if whole:
            sums.extend(pure_block_crcs(view[room:], whole))
        end = room + whole * BLOCK
        return n - end, (crc(view[end:]) if end < n else 0)


crc32: Callable[..., int] = pure_crc32
block_crcs: Callable[[Buffer, int], array[int]] = pure_block_crcs
add_blocks: Callable[[Buffer, int, int, array[int]], tuple[int, int]] = pure_add_blocks
#: Which code computes the checksums: "compiled (PCLMULQDQ)", "zlib-ng" or "zlib".
CRC_LIBRARY: str = "zlib-ng" if _impl is not zlib else "zlib"

if ACCELERATED:
    # By name from the extension, as _wire does: the layering test keeps `_speedups`'s
    # surface to what the other layers use.
    from .._speedups._core import add_blocks as _add_blocks
    from .._speedups._core import block_crcs as _block_crcs
    from .._speedups._core import crc32 as _crc32
    from .._speedups._core import crc_accelerated

    if crc_accelerated():
        crc32, block_crcs, add_blocks = _crc32, _block_crcs, _add_blocks
        CRC_LIBRARY = "compiled (PCLMULQDQ)"
