"""The journal checksums' compiled CRC (`_speedups/_crc.pxi`, issue 19) against its pure twins
in `store._crc` and against zlib: the same CRC-32 at every fold the CPU offers (a byte at a
time, PCLMULQDQ, AVX-512 VPCLMULQDQ), the same block CRCs and tail after any run of appends,
so a `.crc` side file is the same bytes whichever code wrote it."""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soupbintcp._speedups import ACCELERATED
from soupbintcp.store import _crc

# fast_path: `make test` runs these again on the pure-Python code.
pytestmark = pytest.mark.fast_path

try:
    from soupbintcp._speedups import _core
except ImportError:  # not built: the agreement tests below say so
    _core = None  # type: ignore[assignment]

needs_compiled = pytest.mark.skipif(_core is None, reason="the compiled fast path is not built")
BLOCK = _crc.BLOCK

# Lengths around the folds' edges (16-byte steps, 64 and 256 bytes, a 4 KiB block), and
# buffers starting anywhere (the folds load unaligned).
lengths = st.one_of(
    st.integers(0, 70),
    st.integers(240, 300),
    st.integers(BLOCK - 20, BLOCK + 20),
    st.integers(0, 3 * BLOCK),
)
starts = st.integers(0, 0xFFFFFFFF)


def levels() -> list[int]:
    """The folds this CPU has (0 always: a byte at a time)."""
    assert _core is not None
    best = _core.crc_level()
    return list(range(best + 1))


@contextmanager
def level(n: int) -> Iterator[None]:
    assert _core is not None
    best = _core.crc_level()
    try:
        assert _core.crc_level(n) == n
        yield
    finally:
        _core.crc_level(best)


def test_golden_check_value() -> None:
    # The CRC catalogue's check value of CRC-32 (ISO-HDLC, zlib's): CRC of b"123456789".
    assert _crc.crc32(b"123456789") == 0xCBF43926
    assert _crc.pure_crc32(b"123456789") == 0xCBF43926
    # Continuing from a previous value: the CRC of the whole is that of its parts in turn.
    assert _crc.crc32(b"56789", _crc.crc32(b"1234")) == 0xCBF43926


@needs_compiled
def test_every_fold_gives_the_check_value() -> None:
    data = b"123456789" * 1000  # long enough for every fold, with a byte-wise end
    for n in levels():
        with level(n):
            assert _core.crc32(b"123456789") == 0xCBF43926
            assert _core.crc32(data) == zlib.crc32(data)


@needs_compiled
@given(st.data(), lengths, starts)
def test_compiled_crc32_is_zlibs(data: st.DataObject, length: int, crc: int) -> None:
    offset = data.draw(st.integers(0, 15))
    buf = memoryview(data.draw(st.binary(min_size=offset + length, max_size=offset + length)))
    for n in levels():
        with level(n):
            assert _core.crc32(buf[offset:], crc) == zlib.crc32(buf[offset:], crc), n


@needs_compiled
@given(st.binary(max_size=6 * BLOCK), st.data())
def test_compiled_block_crcs_match_the_pure_twin(buf: bytes, data: st.DataObject) -> None:
    count = data.draw(st.integers(0, len(buf) // BLOCK))
    want = _crc.pure_block_crcs(buf, count)
    assert want == array("I", (zlib.crc32(buf[k * BLOCK : (k + 1) * BLOCK]) for k in range(count)))
    for n in levels():
        with level(n):
            assert _core.block_crcs(buf, count) == want


@needs_compiled
@given(st.lists(lengths, max_size=8), st.randoms(use_true_random=False))
def test_compiled_add_blocks_matches_the_pure_twin(sizes: list[int], rng: object) -> None:
    chunks = [rng.randbytes(n) for n in sizes]  # type: ignore[attr-defined]
    pure_sums: array[int] = array("I")
    pure_tail = (0, 0)
    for chunk in chunks:
        pure_tail = _crc.pure_add_blocks(chunk, *pure_tail, pure_sums)
    # By zlib over the whole: every whole block, then the partial one.
    whole = b"".join(chunks)
    count = len(whole) // BLOCK
    by_zlib = (zlib.crc32(whole[k * BLOCK : (k + 1) * BLOCK]) for k in range(count))
    assert pure_sums == array("I", by_zlib)
    rest = whole[count * BLOCK :]
    assert pure_tail == (len(rest), zlib.crc32(rest) if rest else 0)
    for n in levels():
        with level(n):
            sums: array[int] = array("I", [7])  # appended to, never overwritten
            tail = (0, 0)
            for chunk in chunks:
                tail = _core.add_blocks(chunk, *tail, sums)
            assert sums[0] == 7
            assert sums[1:] == pure_sums
            assert tail == pure_tail


@needs_compiled
def test_compiled_twins_refuse_what_the_pure_ones_refuse() -> None:
    for add in (_core.add_blocks, _crc.pure_add_blocks):
        with pytest.raises(ValueError, match="not part of a 4096-byte block"):
            add(b"x", BLOCK, 0, array("I"))
        with pytest.raises(ValueError, match="not part of a 4096-byte block"):
            add(b"x", -1, 0, array("I"))
    for blocks in (_core.block_crcs, _crc.pure_block_crcs):
        with pytest.raises(ValueError, match="2 blocks of 4096 bytes"):
            blocks(bytes(BLOCK), 2)
    with pytest.raises(TypeError, match="array"):
        _core.add_blocks(bytes(BLOCK), 0, 0, array("H"))  # not 4-byte entries


def test_the_store_uses_the_fastest() -> None:
    if ACCELERATED and _core.crc_accelerated():
        assert _crc.add_blocks is _core.add_blocks
        assert _crc.CRC_LIBRARY == "compiled (PCLMULQDQ)"
    else:
        assert _crc.add_blocks is _crc.pure_add_blocks
        assert _crc.CRC_LIBRARY in ("zlib-ng", "zlib")
