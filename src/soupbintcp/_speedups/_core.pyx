# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=False
"""Compiled twins of the receive path's hot loops (the optional fast path).

Each function here has the contract of a pure-Python function that stays the reference:

- `split_sequenced`   the loop of `PacketDecoder.next_sequenced_payloads` (_wire/_framing.py)
- `sequenced_frames`  the same loop, but offsets and lengths instead of payload objects
- `mold_blocks`       the block loop of MoldUDP64's `decode_blocks` (_wire/_moldudp64.py)
- `walk`, `frame_payloads`  the frame walk of _wire/_frames.py
- `MessageCursor`     `map(Message, zip(count(first), left))` and its `left = iter(payloads)`
- `one_sequenced_message`  `one_sequenced_message` of _session/_client.py (the round trip's answer)
- `accepted_fields`, `canceled_fields`, `executed_fields`  those of ouch/_fast.py
- `crc32`, `block_crcs`, `add_blocks`  zlib's CRC-32 and store/_crc.py's loops over 4 KiB blocks

They import nothing of the package and raise none of its errors: they return where they
stopped, and the pure caller words the fault, so every message is written once. Input is
anything with the buffer protocol (bytes, bytearray, memoryview); it is only read.
"""

cimport cython
from cpython.array cimport array, clone, resize_smart
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_FromUnsignedLongLong
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport uint64_t
from libc.string cimport memcmp, memcpy

cdef extern from "Python.h":
    # Allocation of a tuple subclass without its (absent) __new__/__init__: what
    # `Message((n, b))` ends up doing, minus the argument tuple and the copy.
    object PyType_GenericAlloc(type cls, Py_ssize_t nitems)

cdef array _U32 = array("I")
cdef array _U16 = array("H")
assert _U32.itemsize == 4 and _U16.itemsize == 2  # the documented widths of the view

cdef unsigned char _S = 83  # b"S", Sequenced Data


cdef inline Py_ssize_t _check_pos(Py_ssize_t pos, Py_ssize_t size) except -1:
    if pos < 0 or pos > size:
        raise ValueError(f"position {pos} outside a buffer of {size} bytes")
    return pos


# Each area in its own file, textually included: one module, one C file, small sources.
include "_frames.pxi"
include "_capture.pxi"
include "_capture_runs.pxi"
include "_journal.pxi"
include "_crc.pxi"
include "_client.pxi"
include "_orders.pxi"
