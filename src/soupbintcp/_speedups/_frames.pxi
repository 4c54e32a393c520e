# Included by _core.pyx (one extension, one namespace): the frame and packet walks of the receive path.
# The cimports and shared helpers are in _core.pyx.

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
