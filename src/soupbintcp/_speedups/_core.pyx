# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=False
"""Compiled twins of the receive path's hot loops (the optional fast path).

Each function here has the contract of a pure-Python function that stays the reference:

- `split_sequenced`   the loop of `PacketDecoder.next_sequenced_payloads` (_wire/_framing.py)
- `sequenced_frames`  the same loop, but offsets and lengths instead of payload objects
- `mold_blocks`       the block loop of MoldUDP64's `decode_blocks` (_wire/_moldudp64.py)
- `walk`, `frame_payloads`  the frame walk of _wire/_frames.py
- `MessageCursor`     `map(Message, zip(count(first), left))` and its `left = iter(payloads)`

They import nothing of the package and raise none of its errors: they return where they
stopped, and the pure caller words the fault, so every message is written once. Input is
anything with the buffer protocol (bytes, bytearray, memoryview); it is only read.
"""

cimport cython
from cpython.array cimport array, clone
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_FromUnsignedLongLong
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_SET_ITEM
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


def split_sequenced(object buf, Py_ssize_t pos, Py_ssize_t limit, bint omega):
    """(payloads, new position) of the complete Sequenced Data packets of `buf` from `pos`.

    Stops at the first packet that is not one: another type, a length of 0 (Omega: of 0 or
    1, the empty "no more messages" packet), a length over `limit`, or one not yet whole.
    """
    cdef Py_buffer view
    cdef const unsigned char* p
    cdef Py_ssize_t size, n, end
    cdef Py_ssize_t min_n = 2 if omega else 1
    cdef list out = []
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        p = <const unsigned char*>view.buf
        size = view.len
        _check_pos(pos, size)
        while pos + 3 <= size:
            n = (p[pos] << 8) | p[pos + 1]
            end = pos + 2 + n
            if p[pos + 2] != _S or n < min_n or n > limit or end > size:
                break
            out.append(PyBytes_FromStringAndSize(<const char*>p + pos + 3, n - 1))
            pos = end
    finally:
        PyBuffer_Release(&view)
    return out, pos


def sequenced_frames(object buf, Py_ssize_t pos, Py_ssize_t limit, bint omega):
    """(offsets, lengths, new position): the loop of `split_sequenced`, but each payload as
    its offset in `buf` (array "I") and its length (array "H"), with no object per message."""
    cdef Py_buffer view
    cdef const unsigned char* p
    cdef Py_ssize_t size, n, end, start, count = 0, i = 0
    cdef Py_ssize_t min_n = 2 if omega else 1
    cdef array offsets, lengths
    cdef unsigned int* off
    cdef unsigned short* lens
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        p = <const unsigned char*>view.buf
        size = view.len
        _check_pos(pos, size)
        if size > 0xFFFFFFFF:
            raise ValueError("a frames view holds at most 4 GiB")
        start = pos
        # Two passes (count, then fill) so both arrays are allocated once, exactly.
        while pos + 3 <= size:
            n = (p[pos] << 8) | p[pos + 1]
            end = pos + 2 + n
            if p[pos + 2] != _S or n < min_n or n > limit or end > size:
                break
            count += 1
            pos = end
        offsets = clone(_U32, count, False)
        lengths = clone(_U16, count, False)
        off = offsets.data.as_uints
        lens = lengths.data.as_ushorts
        pos = start
        while i < count:
            n = (p[pos] << 8) | p[pos + 1]
            off[i] = <unsigned int>(pos + 3)
            lens[i] = <unsigned short>(n - 1)
            pos += 2 + n
            i += 1
    finally:
        PyBuffer_Release(&view)
    return offsets, lengths, pos


def mold_blocks(object data, Py_ssize_t count, Py_ssize_t start):
    """(messages, position after them) of `count` MoldUDP64 message blocks from `start`.

    A block that runs past the end stops the loop with a position past the end (the pure
    loop's `size + 1` when a length field itself is cut), which the caller reports.
    """
    cdef Py_buffer view
    cdef const unsigned char* p
    cdef Py_ssize_t size, n, pos = start
    cdef Py_ssize_t k = 0
    cdef list out = []
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        p = <const unsigned char*>view.buf
        size = view.len
        _check_pos(pos, size)
        while k < count:
            if pos + 2 > size:
                pos = size + 1
                break
            n = (p[pos] << 8) | p[pos + 1]
            if pos + 2 + n > size:
                pos = size + 1
                break
            out.append(PyBytes_FromStringAndSize(<const char*>p + pos + 2, n))
            pos += 2 + n
            k += 1
    finally:
        PyBuffer_Release(&view)
    return out, pos


def walk(
    object buf,
    Py_ssize_t pos,
    Py_ssize_t count,
    int kind,
    object starts,
    Py_ssize_t number,
    Py_ssize_t mark,
    Py_ssize_t every,
    Py_ssize_t base,
):
    """(end, walked, fault length, fault type byte) of the frame walk of _wire/_frames.py;
    `kind` -1 is the untyped walk (BinaryFILE records), a fault length of -1 means none."""
    cdef Py_buffer view
    cdef const unsigned char* p
    cdef Py_ssize_t size, n, head, end
    cdef Py_ssize_t walked = 0
    cdef Py_ssize_t due = mark - number if starts is not None else -1
    cdef bint typed = kind >= 0
    cdef Py_ssize_t fault_n = -1
    cdef int fault_t = -1
    if pos < 0:
        raise ValueError(f"negative position {pos}")
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        p = <const unsigned char*>view.buf
        size = view.len
        while walked != count:
            head = pos + 2
            if head > size:
                break
            n = (p[pos] << 8) | p[pos + 1]
            if typed:
                if head == size:
                    break
                if n == 0 or p[head] != kind:
                    fault_n = n
                    fault_t = p[head]
                    break
            end = head + n
            if end > size:
                break
            if walked == due:
                starts.append(base + pos)
                due += every
            walked += 1
            pos = end
    finally:
        PyBuffer_Release(&view)
    return pos, walked, fault_n, fault_t


def frame_payloads(object buf, Py_ssize_t count, Py_ssize_t pos, bint typed):
    """The payloads of `count` frames from `pos` that the caller walked or wrote. As the
    pure loop: a length field past the end raises IndexError, a body past it is cut short."""
    cdef Py_buffer view
    cdef const unsigned char* p
    cdef Py_ssize_t size, end, after, first
    cdef Py_ssize_t skip = 3 if typed else 2
    cdef Py_ssize_t k = 0
    cdef list out = []
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        p = <const unsigned char*>view.buf
        size = view.len
        _check_pos(pos, size)
        while k < count:
            if pos + 2 > size:
                raise IndexError("index out of range")
            after = pos + 2 + ((p[pos] << 8) | p[pos + 1])
            first = pos + skip
            if first > size:
                first = size
            end = after if after < size else size
            out.append(PyBytes_FromStringAndSize(<const char*>p + first, end - first))
            pos = after
            k += 1
    finally:
        PyBuffer_Release(&view)
    return out


cdef class MessageCursor:
    """Hands out `cls((first + i, payloads[i]))` one at a time, as `next()` asks.

    `cls` is a tuple subclass without its own `__new__` or `__init__` (`Message`): each one is
    allocated and filled in C. `__next__` takes its index before it allocates, so threads
    sharing a cursor never get the same message. `rest()` takes the payloads not handed out.
    """

    cdef type _cls
    cdef list _payloads
    cdef Py_ssize_t _index
    cdef Py_ssize_t _count
    cdef object _first  # a Python int: sequence numbers are not bounded by the protocol
    cdef uint64_t _cfirst
    cdef bint _small  # first + count fits 64 bits: numbers are made in C

    def __cinit__(self, type cls, object first, list payloads):
        if not issubclass(cls, tuple) or cls.__new__ is not tuple.__new__ or (
            cls.__init__ is not tuple.__init__
        ):
            raise TypeError(f"{cls.__name__} is not a plain tuple subclass")
        self._cls = cls
        self._payloads = payloads
        self._index = 0
        self._count = len(payloads)
        self._first = int(first)
        self._small = 0 <= self._first and self._first + self._count < 2**64
        self._cfirst = self._first if self._small else 0

    def __iter__(self):
        return self

    @cython.boundscheck(True)  # the list is the caller's: never read past its end
    def __next__(self):
        cdef Py_ssize_t i = self._index
        if i >= self._count:
            raise StopIteration
        self._index = i + 1  # before anything that could let another thread run
        data = self._payloads[i]
        if self._small:
            number = PyLong_FromUnsignedLongLong(self._cfirst + <uint64_t>i)
        else:
            number = self._first + i
        msg = PyType_GenericAlloc(self._cls, 2)
        Py_INCREF(number)
        PyTuple_SET_ITEM(msg, 0, number)
        Py_INCREF(data)
        PyTuple_SET_ITEM(msg, 1, data)
        return msg

    def __length_hint__(self):
        return self._count - self._index

    @property
    def next_sequence(self):
        """The sequence number of the next message this cursor would hand out."""
        return self._first + self._index

    def rest(self):
        """The payloads not handed out yet, which this cursor then no longer hands out."""
        cdef Py_ssize_t i = self._index
        self._index = self._count
        return self._payloads[i:self._count]

    def payloads_left(self):
        """An iterator over the payloads not handed out yet, sharing this cursor's place: what
        it takes, the cursor no longer hands out (`iter(payloads)` under `map` and `zip`)."""
        return _PayloadsLeft(self)


cdef class _PayloadsLeft:
    """The payloads side of a `MessageCursor` (see `MessageCursor.payloads_left`)."""

    cdef MessageCursor _cursor

    def __cinit__(self, MessageCursor cursor):
        self._cursor = cursor

    def __iter__(self):
        return self

    @cython.boundscheck(True)
    def __next__(self):
        cdef MessageCursor cursor = self._cursor
        cdef Py_ssize_t i = cursor._index
        if i >= cursor._count:
            raise StopIteration
        cursor._index = i + 1
        return cursor._payloads[i]

    def __length_hint__(self):
        return self._cursor._count - self._cursor._index


# --- issue 25: captures (the per-packet walk of capture/_walk.py and capture/_net.py) -------
#
# `capture_decode` is `capture._net.decode` and `pcap_walk` is `capture._walk.pure_pcap_walk`,
# line by line: the pure functions stay the reference, and the tests hold the two to the same
# answers on random and hostile captures.

cdef object _capture_decode(const unsigned char* p, Py_ssize_t n, int linktype, object time):
    """(protocol, key, sequence, flags, payload, missing) of one captured frame, or None;
    with `time` (not None) added at the end: what `pcap_walk` hands out."""
    cdef Py_ssize_t off, l4, end, start, ihl, alen, length
    cdef unsigned int ethertype, family, version, protocol, offset
    cdef unsigned int flags = 0
    cdef unsigned long sequence = 0
    cdef const unsigned char* addr
    cdef const unsigned char* ports
    cdef bytes key, payload
    cdef char* k
    cdef Py_ssize_t missing
    # The link layer.
    if linktype == 1:  # Ethernet
        if n < 14:
            return None
        ethertype = (p[12] << 8) | p[13]
        off = 14
        while (ethertype == 0x8100 or ethertype == 0x88A8) and n >= off + 4:
            ethertype = (p[off + 2] << 8) | p[off + 3]
            off += 4
    elif linktype == 0:  # BSD loopback
        if n < 4:
            return None
        family = p[0] | p[3]
        ethertype = 0x0800 if family == 2 else (
            0x86DD if (family == 24 or family == 28 or family == 30) else 0)
        off = 4
    elif linktype == 113:  # Linux cooked
        if n < 16:
            return None
        ethertype = (p[14] << 8) | p[15]
        off = 16
    elif linktype == 276:  # Linux cooked v2
        if n < 20:
            return None
        ethertype = (p[0] << 8) | p[1]
        off = 20
    elif linktype == 101 or linktype == 228 or linktype == 229:  # raw IP
        if n < 1:
            return None
        version = p[0] >> 4
        ethertype = 0x0800 if version == 4 else (0x86DD if version == 6 else 0)
        off = 0
    else:
        return None
    # IP.
    if ethertype == 0x0800:
        if n < off + 20:
            return None
        ihl = (p[off] & 15) * 4
        if ihl < 20 or ((p[off + 6] << 8) | p[off + 7]) & 0x3FFF:
            return None
        l4 = off + ihl
        end = off + ((p[off + 2] << 8) | p[off + 3])
        protocol = p[off + 9]
        addr = p + off + 12
        alen = 8
    elif ethertype == 0x86DD:
        if n < off + 40:
            return None
        end = off + 40 + ((p[off + 4] << 8) | p[off + 5])
        protocol = p[off + 6]
        addr = p + off + 8
        alen = 32
        l4 = off + 40
    else:
        return None
    # TCP or UDP.
    if protocol == 6:
        if n < l4 + 14:
            return None
        offset = p[l4 + 12]
        if offset < 0x50:
            return None
        sequence = (
            (<unsigned long>p[l4 + 4] << 24) | (<unsigned long>p[l4 + 5] << 16)
            | (<unsigned long>p[l4 + 6] << 8) | p[l4 + 7]
        )
        flags = p[l4 + 13]
        start = l4 + (offset >> 4) * 4
    elif protocol == 17:
        if n < l4 + 6:
            return None
        length = (p[l4 + 4] << 8) | p[l4 + 5]
        start = l4 + 8
        if l4 + length < end:
            end = l4 + length
    else:
        return None
    if end < start:
        return None
    ports = p + l4
    key = PyBytes_FromStringAndSize(NULL, alen + 4)
    k = PyBytes_AS_STRING(key)
    memcpy(k, addr, alen)
    memcpy(k + alen, ports, 4)
    if start >= n:
        payload = b""
        missing = end - start
    elif end <= n:
        payload = PyBytes_FromStringAndSize(<const char*>p + start, end - start)
        missing = 0
    else:
        payload = PyBytes_FromStringAndSize(<const char*>p + start, n - start)
        missing = end - n
    if time is None:
        return (protocol, key, sequence, flags, payload, missing)
    return (protocol, key, sequence, flags, payload, missing, time)


def capture_decode(int linktype, object packet):
    """`capture._net.decode`: the TCP segment or UDP datagram in a captured frame, or None."""
    cdef Py_buffer view
    PyObject_GetBuffer(packet, &view, PyBUF_SIMPLE)
    try:
        return _capture_decode(<const unsigned char*>view.buf, view.len, linktype, None)
    finally:
        PyBuffer_Release(&view)


cdef inline unsigned long long _u32(const unsigned char* q, bint big):
    if big:
        return (<unsigned long long>q[0] << 24) | (q[1] << 16) | (q[2] << 8) | q[3]
    return (<unsigned long long>q[3] << 24) | (q[2] << 16) | (q[1] << 8) | q[0]


def pcap_walk(object buf, Py_ssize_t pos, bint big, unsigned long long scale, int linktype):
    """`capture._walk.pure_pcap_walk`: the whole pcap records of `buf` from `pos`, decoded.

    (segments, position, records, truncated, other, acks, first time, last time): see the
    pure function."""
    cdef Py_buffer view
    cdef const unsigned char* p
    cdef const unsigned char* q
    cdef Py_ssize_t size, end
    cdef unsigned long long incl, orig, time_ns
    cdef Py_ssize_t records = 0, truncated = 0, other = 0, acks = 0
    cdef long long first = -1, last = -1
    cdef list out = []
    cdef set seen = set()
    cdef tuple segment
    cdef object found
    cdef long flags
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        p = <const unsigned char*>view.buf
        size = view.len
        _check_pos(pos, size)
        while pos + 16 <= size:
            q = p + pos
            incl = _u32(q + 8, big)
            if <unsigned long long>(size - pos - 16) < incl:
                break
            orig = _u32(q + 12, big)
            time_ns = _u32(q, big) * 1000000000ULL + _u32(q + 4, big) * scale
            end = pos + 16 + <Py_ssize_t>incl
            pos = end
            records += 1
            if first < 0:
                first = <long long>time_ns
            last = <long long>time_ns
            if incl < orig:
                truncated += 1
            found = _capture_decode(q + 16, <Py_ssize_t>incl, linktype, time_ns)
            if found is None:
                other += 1
                continue
            segment = <tuple>found
            if <long>segment[0] == 6:
                flags = <long>segment[3]
                if flags & 0x02:
                    if not flags & 0x10:
                        seen.clear()  # maybe a new connection on the same ports
                elif not segment[4] and not segment[5]:
                    if segment[1] in seen:
                        acks += 1
                        continue
                    if flags & 0x04:
                        out.append(segment)
                        continue
                seen.add(segment[1])
            out.append(segment)
    finally:
        PyBuffer_Release(&view)
    return out, pos, records, truncated, other, acks, first, last


def mold_runs(list rows, int kind):
    """`capture._mold.pure_mold_runs`: consecutive MoldUDP64 data packets made one row
    (`kind`, key, first number, packets, messages, times, session field)."""
    cdef list out = []
    cdef list msgs = None
    cdef list times = None
    cdef object key = None
    cdef object run_key = None
    cdef object first = None
    cdef object time
    cdef bytes raw = None
    cdef bytes data
    cdef tuple row
    cdef const unsigned char* p
    cdef Py_ssize_t size, pos, end, k, n, packets = 0
    cdef unsigned long long sequence, run_end = 0
    cdef unsigned int count
    cdef bint open_ = False, extendable = False
    cdef list found
    for item in rows:
        row = <tuple>item
        if <long>row[0] == 17 and type(row[4]) is bytes:
            data = <bytes>row[4]
            p = <const unsigned char*>PyBytes_AS_STRING(data)
            size = len(data)
            if size > 20:
                count = (p[18] << 8) | p[19]
                if 0 < count < 0xFFFF:
                    # The blocks must fill the datagram exactly (as decode_blocks asks).
                    pos = 20
                    k = 0
                    while k < count:
                        if pos + 2 > size:
                            break
                        end = pos + 2 + ((p[pos] << 8) | p[pos + 1])
                        if end > size:
                            break
                        pos = end
                        k += 1
                    if k == count and pos == size:
                        sequence = (
                            (<unsigned long long>p[10] << 56) | (<unsigned long long>p[11] << 48)
                            | (<unsigned long long>p[12] << 40) | (<unsigned long long>p[13] << 32)
                            | (<unsigned long long>p[14] << 24) | (<unsigned long long>p[15] << 16)
                            | (<unsigned long long>p[16] << 8) | p[17]
                        )
                        key = row[1]
                        time = row[6]
                        if not (open_ and extendable and sequence == run_end and key == run_key
                                and memcmp(PyBytes_AS_STRING(raw), p, 10) == 0):
                            if open_:
                                out.append((kind, run_key, first, packets, msgs, times, raw))
                            open_ = True
                            run_key = key
                            raw = PyBytes_FromStringAndSize(<const char*>p, 10)
                            first = PyLong_FromUnsignedLongLong(sequence)
                            msgs = []
                            times = []
                            packets = 0
                        packets += 1
                        run_end = sequence + count
                        extendable = run_end > sequence  # no wrap past 2**64
                        pos = 20
                        for k in range(count):
                            n = (p[pos] << 8) | p[pos + 1]
                            msgs.append(PyBytes_FromStringAndSize(<const char*>p + pos + 2, n))
                            times.append(time)
                            pos += 2 + n
                        continue
        if open_:
            out.append((kind, run_key, first, packets, msgs, times, raw))
            open_ = False
        out.append(row)
    if open_:
        out.append((kind, run_key, first, packets, msgs, times, raw))
    return out


def encode_sequenced(object messages):
    """`_wire._packets.pure_sequenced_frames` for a list or tuple of `bytes`: the Sequenced
    Data frames of `messages` back to back (2-byte length + 1, b"S", payload each) in one
    `bytes`, and how many. None when an item is not exactly `bytes` or too big for a packet:
    the pure twin then encodes (and words the error). What `journal import --pcap` and every
    `append_many` of a journal spend their time on, one copy per message."""
    cdef Py_ssize_t k, n, total = 0, count
    cdef object item
    cdef tuple items
    cdef bytes out
    cdef char* dst
    if type(messages) is tuple:
        items = <tuple>messages
    elif type(messages) is list:
        items = tuple(<list>messages)  # held still: the allocation below may run other code
    else:
        return None
    count = len(items)
    for k in range(count):
        item = items[k]
        if type(item) is not bytes:
            return None
        n = len(<bytes>item)
        if n > 65534:
            return None
        total += n + 3
    out = PyBytes_FromStringAndSize(NULL, total)
    dst = PyBytes_AS_STRING(out)
    for k in range(count):
        item = items[k]
        n = len(<bytes>item)
        dst[0] = <char>((n + 1) >> 8)
        dst[1] = <char>((n + 1) & 0xFF)
        dst[2] = <char>_S
        memcpy(dst + 3, PyBytes_AS_STRING(item), n)
        dst += 3 + n
    return out, count


cdef array _I64 = array("q")
assert _I64.itemsize == 8


def times_array(object times):
    """`array("q", times)` for a list of ints (`capture._times.pure_times_array`): the
    capture-time sidecar of an import. A packet's messages share one int object, so a repeat
    of the item before is copied, not converted again. None when an item is not exactly an
    int or does not fit 64 bits: the pure twin then converts (and raises)."""
    cdef tuple items
    cdef Py_ssize_t k, count
    cdef array out
    cdef long long* dst
    cdef object item
    cdef object last = None
    cdef long long value = 0
    cdef int overflow = 0
    if type(times) is not list:
        return None
    items = tuple(<list>times)  # held still while converting
    count = len(items)
    out = clone(_I64, count, False)
    dst = <long long*>out.data.as_voidptr
    for k in range(count):
        item = items[k]
        if item is not last:
            if type(item) is not int:
                return None
            value = PyLong_AsLongLongAndOverflow(item, &overflow)
            if overflow:
                return None
            last = item
        dst[k] = value
    return out
