# Included by _core.pyx (one extension, one namespace): the journal's block checksums.
# The cimports and shared helpers are in _core.pyx.
#
# The same CRC-32 as zlib's `crc32` (polynomial 0xEDB88320, reflected, inverted in and out),
# so a `.crc` side file reads the same whoever wrote it. Why compiled, not zlib's: what a
# bulk append spent on its checksums was the Python around one `crc32` call per 4 KiB block
# (about 3 us per 1,000-message append with zlib-ng) and, with the standard library's zlib
# (no carry-less multiply in 1.2/1.3), the CRC itself at 2 to 3 GB/s. CPython's zlib is not
# a header this build can count on. Here the blocks of one append are a C loop, and on
# x86-64 with PCLMULQDQ each is folded 64 bytes at a time with carry-less multiplies (the
# method of Intel's "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ", with the
# constants of Linux's crc32-pclmul and Chromium's zlib). Elsewhere `crc_accelerated()` is
# false and the store keeps its pure path (zlib-ng or zlib per block).

from cpython.array cimport resize_smart


cdef extern from *:
    """
    #include <stddef.h>
    #include <stdint.h>

    static uint32_t sbt_crc_table[256];

    /* The reflected state `c` (zlib's ~crc) over n bytes, a byte at a time. */
    static uint32_t sbt_crc_bytes(uint32_t c, const unsigned char *p, size_t n) {
        while (n--) c = sbt_crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
        return c;
    }

    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <cpuid.h>
    #include <immintrin.h>

    /* Lanes x1..x4 (64 bytes, folded so far) on over len more bytes (a multiple of 16), and
       the reflected state they make. Inlined: in the AVX-512 caller it must be compiled with
       VEX encodings, as mixing legacy SSE with dirty upper registers stalls each instruction. */
    __attribute__((always_inline, target("sse2,pclmul")))
    static inline uint32_t sbt_crc_fold_on(__m128i x1, __m128i x2, __m128i x3, __m128i x4,
                                    const unsigned char *buf, size_t len) {
        __m128i x0, x5, x6, x7, x8, y5, y6, y7, y8;
        const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596LL, 0x0154442bd4LL);
        const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009eLL, 0x01751997d0LL);
        const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124LL);
        const __m128i poly = _mm_set_epi64x(0x01f7011641LL, 0x01db710641LL);
        const __m128i mask = _mm_setr_epi32(~0, 0, ~0, 0);

        x0 = k1k2;
        while (len >= 64) {  /* four lanes, each folded 64 bytes on */
            x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
            x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
            x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
            x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
            x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
            x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
            x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
            x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
            y5 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
            y6 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
            y7 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
            y8 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
            x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), y5);
            x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), y6);
            x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), y7);
            x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), y8);
            buf += 64;
            len -= 64;
        }
        /* The four lanes into one, then 16 bytes at a time. */
        x0 = k3k4;
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);
        while (len >= 16) {
            x2 = _mm_loadu_si128((const __m128i *)buf);
            x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
            x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
            x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
            buf += 16;
            len -= 16;
        }
        /* 128 bits to 64, then Barrett's reduction to 32. */
        x2 = _mm_clmulepi64_si128(x1, x0, 0x10);
        x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
        x0 = k5k0;
        x2 = _mm_srli_si128(x1, 4);
        x1 = _mm_and_si128(x1, mask);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_xor_si128(x1, x2);
        x0 = poly;
        x2 = _mm_and_si128(x1, mask);
        x2 = _mm_clmulepi64_si128(x2, x0, 0x10);
        x2 = _mm_and_si128(x2, mask);
        x2 = _mm_clmulepi64_si128(x2, x0, 0x00);
        x1 = _mm_xor_si128(x1, x2);
        return (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(x1, 4));
    }

    /* The reflected state `c` over len bytes: len >= 64 and a multiple of 16. */
    __attribute__((target("sse2,pclmul")))
    static uint32_t sbt_crc_fold(uint32_t c, const unsigned char *buf, size_t len) {
        __m128i x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
        x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)c));
        return sbt_crc_fold_on(
            x1,
            _mm_loadu_si128((const __m128i *)(buf + 0x10)),
            _mm_loadu_si128((const __m128i *)(buf + 0x20)),
            _mm_loadu_si128((const __m128i *)(buf + 0x30)),
            buf + 64, len - 64);
    }

    /* The same with AVX-512's VPCLMULQDQ, four 128-bit multiplies per instruction (what
       zlib-ng does): 256 bytes per step in four registers, each lane folded 256 bytes on;
       then 64 bytes on, register into register, and the last register's four lanes go on
       as above. len >= 256 and a multiple of 16. */
    __attribute__((target("avx512f,vpclmulqdq,pclmul,sse2")))
    static uint32_t sbt_crc_fold512(uint32_t c, const unsigned char *buf, size_t len) {
        const __m512i k256 = _mm512_broadcast_i32x4(
            _mm_set_epi64x(0x01322d1430LL, 0x011542778aLL));
        const __m512i k64 = _mm512_broadcast_i32x4(
            _mm_set_epi64x(0x01c6e41596LL, 0x0154442bd4LL));
        __m512i z0 = _mm512_loadu_si512((const void *)(buf + 0x00));
        __m512i z1 = _mm512_loadu_si512((const void *)(buf + 0x40));
        __m512i z2 = _mm512_loadu_si512((const void *)(buf + 0x80));
        __m512i z3 = _mm512_loadu_si512((const void *)(buf + 0xc0));
        z0 = _mm512_xor_si512(
            z0, _mm512_inserti32x4(_mm512_setzero_si512(), _mm_cvtsi32_si128((int)c), 0));
        buf += 256;
        len -= 256;
        while (len >= 256) {
            z0 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z0, k256, 0x00),
                                           _mm512_clmulepi64_epi128(z0, k256, 0x11),
                                           _mm512_loadu_si512((const void *)(buf + 0x00)), 0x96);
            z1 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z1, k256, 0x00),
                                           _mm512_clmulepi64_epi128(z1, k256, 0x11),
                                           _mm512_loadu_si512((const void *)(buf + 0x40)), 0x96);
            z2 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z2, k256, 0x00),
                                           _mm512_clmulepi64_epi128(z2, k256, 0x11),
                                           _mm512_loadu_si512((const void *)(buf + 0x80)), 0x96);
            z3 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z3, k256, 0x00),
                                           _mm512_clmulepi64_epi128(z3, k256, 0x11),
                                           _mm512_loadu_si512((const void *)(buf + 0xc0)), 0x96);
            buf += 256;
            len -= 256;
        }
        z1 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z0, k64, 0x00),
                                       _mm512_clmulepi64_epi128(z0, k64, 0x11), z1, 0x96);
        z2 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z1, k64, 0x00),
                                       _mm512_clmulepi64_epi128(z1, k64, 0x11), z2, 0x96);
        z3 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z2, k64, 0x00),
                                       _mm512_clmulepi64_epi128(z2, k64, 0x11), z3, 0x96);
        return sbt_crc_fold_on(
            _mm512_extracti32x4_epi32(z3, 0), _mm512_extracti32x4_epi32(z3, 1),
            _mm512_extracti32x4_epi32(z3, 2), _mm512_extracti32x4_epi32(z3, 3), buf, len);
    }

    /* 0: no carry-less multiply; 1: PCLMULQDQ; 2: also AVX-512 with VPCLMULQDQ and an
       operating system that saves its registers. Asked of the CPU (cpuid.h works with GCC
       and clang alike). */
    static int sbt_crc_cpu_level(void) {
        unsigned int a, b, c, d, lo, hi;
        int level = 0;
        if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
        if (!(c & (1u << 1))) return 0;  /* PCLMULQDQ */
        level = 1;
        if (!(c & (1u << 27))) return level;  /* OSXSAVE: xgetbv may be asked */
        __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        if ((lo & 0xe6) != 0xe6) return level;  /* the OS saves the zmm state */
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return level;
        if ((b & (1u << 16)) && (c & (1u << 10))) level = 2;  /* AVX512F, VPCLMULQDQ */
        return level;
    }

    #else
    static uint32_t sbt_crc_fold(uint32_t c, const unsigned char *buf, size_t len) {
        return sbt_crc_bytes(c, buf, len);
    }
    static uint32_t sbt_crc_fold512(uint32_t c, const unsigned char *buf, size_t len) {
        return sbt_crc_bytes(c, buf, len);
    }
    static int sbt_crc_cpu_level(void) { return 0; }
    #endif

    static int sbt_crc_level = 0;  /* what sbt_crc32 uses: at most the CPU's level */

    /* zlib's crc32(crc, buf, len). */
    static uint32_t sbt_crc32(uint32_t crc, const unsigned char *buf, size_t len) {
        uint32_t c = ~crc;
        size_t whole = len & ~(size_t)15;
        if (sbt_crc_level >= 2 && len >= 256) {
            c = sbt_crc_fold512(c, buf, whole);
        } else if (sbt_crc_level >= 1 && len >= 64) {
            c = sbt_crc_fold(c, buf, whole);
        } else {
            whole = 0;
        }
        return ~sbt_crc_bytes(c, buf + whole, len - whole);
    }

    static int sbt_crc_setup(void) {
        uint32_t n, c;
        int k;
        for (n = 0; n < 256; n++) {
            c = n;
            for (k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            sbt_crc_table[n] = c;
        }
        sbt_crc_level = sbt_crc_cpu_level();
        return sbt_crc_level;
    }

    /* The tests' switch: use at most `level` (never more than the CPU's). */
    static int sbt_crc_use(int level) {
        int cpu = sbt_crc_cpu_level();
        sbt_crc_level = level < cpu ? level : cpu;
        return sbt_crc_level;
    }
    """
    int sbt_crc_setup()
    int sbt_crc_use(int level)
    int sbt_crc_level
    unsigned int sbt_crc32(unsigned int crc, const unsigned char* buf, size_t length) nogil

cdef int _CRC_LEVEL = sbt_crc_setup()
cdef Py_ssize_t _CRC_BLOCK = 4096
# Past this many bytes the blocks are checksummed without the GIL (the check ahead's steps of
# 256 KiB): the event loop's thread runs meanwhile. Below it, dropping the GIL costs more.
cdef Py_ssize_t _CRC_NOGIL = 65536


def crc_accelerated():
    """Whether this CPU folds with carry-less multiplies (x86-64 with PCLMULQDQ): only then
    is the compiled CRC faster than zlib's, and the store uses it."""
    return _CRC_LEVEL != 0


def crc_level(level=None):
    """How the compiled CRC folds: 0 a byte at a time, 1 PCLMULQDQ, 2 AVX-512 VPCLMULQDQ
    (the CPU's best, chosen at import). The tests pass `level` to hold each to zlib's
    answers: it is capped at what the CPU has."""
    if level is None:
        return sbt_crc_level
    return sbt_crc_use(level)


def crc32(object data, unsigned int crc=0):
    """`zlib.crc32(data, crc)` (the pure twin: `store._crc`)."""
    cdef Py_buffer view
    cdef unsigned int out
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        out = sbt_crc32(crc, <const unsigned char*>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return out


cdef void _blocks(const unsigned char* buf, Py_ssize_t count, unsigned int* dst) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(count):
        dst[k] = sbt_crc32(0, buf + k * _CRC_BLOCK, <size_t>_CRC_BLOCK)


def block_crcs(object data, Py_ssize_t count):
    """`store._checksums.pure_block_crcs`: the CRC-32 of each of the first `count` whole
    4 KiB blocks of `data`, as an `array("I")`."""
    cdef Py_buffer view
    cdef array out
    cdef unsigned int* dst
    cdef const unsigned char* buf
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if count < 0 or count * _CRC_BLOCK > view.len:
            raise ValueError(f"{count} blocks of {_CRC_BLOCK} bytes in a buffer of {view.len}")
        out = clone(_U32, count, False)
        dst = <unsigned int*>out.data.as_voidptr
        buf = <const unsigned char*>view.buf
        if count * _CRC_BLOCK >= _CRC_NOGIL:
            with nogil:
                _blocks(buf, count, dst)
        else:
            _blocks(buf, count, dst)
    finally:
        PyBuffer_Release(&view)
    return out


def add_blocks(object data, Py_ssize_t tail_len, unsigned int tail_crc, array sums):
    """`store._checksums.pure_add_blocks`: take `data`, which follows `tail_len` bytes of a
    partial block whose CRC is `tail_crc`: append to `sums` the CRC of each block it
    completes, and return the new `(tail_len, tail_crc)`."""
    cdef Py_buffer view
    cdef const unsigned char* buf
    cdef Py_ssize_t n, room, whole, had
    cdef unsigned int* dst
    if sums.ob_descr.typecode != b"I" or sums.ob_descr.itemsize != 4:
        raise TypeError("sums must be an array('I') of 4-byte items")
    if tail_len < 0 or tail_len >= _CRC_BLOCK:
        raise ValueError(f"a tail of {tail_len} bytes is not part of a {_CRC_BLOCK}-byte block")
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        buf = <const unsigned char*>view.buf
        n = view.len
        room = _CRC_BLOCK - tail_len
        if n < room:
            return tail_len + n, sbt_crc32(tail_crc, buf, <size_t>n)
        whole = (n - room) // _CRC_BLOCK
        had = len(sums)
        resize_smart(sums, had + 1 + whole)
        dst = <unsigned int*>sums.data.as_voidptr + had
        dst[0] = sbt_crc32(tail_crc, buf, <size_t>room)
        buf += room
        # With the GIL held: another thread may read `sums` (the check ahead).
        _blocks(buf, whole, dst + 1)
        buf += whole * _CRC_BLOCK
        n -= room + whole * _CRC_BLOCK
        return n, (sbt_crc32(0, buf, <size_t>n) if n else 0)
    finally:
        PyBuffer_Release(&view)
