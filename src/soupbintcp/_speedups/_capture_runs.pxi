# Included by _core.pyx after _capture.pxi (one extension, one namespace): the walk's
# MoldUDP64 runs and the TCP runs of Sequenced Data, frames and times without an object per
# message (issue 25). The cimports are in _core.pyx; `_locate`, `_segment` and `_u32` in
# _capture.pxi.

cdef array _TIMES = array("q")  # capture times: signed 64-bit ns, as the sidecar holds them
assert _TIMES.itemsize == 8


cdef inline Py_ssize_t _mold_count(const unsigned char* p, Py_ssize_t size):
    """The message count of a MoldUDP64 data packet whose blocks fill it exactly (as
    decode_blocks asks); -1 for anything else (short, heartbeat, End of Session, cut)."""
    cdef Py_ssize_t pos = 20, k = 0, count
    if size <= 20:
        return -1
    count = (p[18] << 8) | p[19]
    if not 0 < count < 0xFFFF:
        return -1
    while k < count:
        if pos + 2 > size:
            return -1
        pos += 2 + ((p[pos] << 8) | p[pos + 1])
        if pos > size:
            return -1
        k += 1
    return count if pos == size else -1


cdef inline unsigned long long _mold_sequence(const unsigned char* p):
    return (
        (<unsigned long long>p[10] << 56) | (<unsigned long long>p[11] << 48)
        | (<unsigned long long>p[12] << 40) | (<unsigned long long>p[13] << 32)
        | (<unsigned long long>p[14] << 24) | (<unsigned long long>p[15] << 16)
        | (<unsigned long long>p[16] << 8) | p[17]
    )


cdef class _MoldRun:
    """Consecutive MoldUDP64 data packets of one flow and session, each numbered on from
    the one before: their messages as Sequenced Data frames and one time per message."""
    cdef public bint open_
    cdef bint extendable
    cdef unsigned long long end
    cdef object key
    cdef bytes raw
    cdef object first
    cdef Py_ssize_t packets
    cdef bytearray frames
    cdef array times

    cdef inline bint extends(self, const unsigned char* p, unsigned long long sequence):
        """Whether packet `p` (numbered `sequence`) is numbered on in this run's session
        (the flow is the caller's to compare)."""
        return (self.open_ and self.extendable and sequence == self.end
                and memcmp(PyBytes_AS_STRING(self.raw), p, 10) == 0)

    cdef inline void start(self, object key, const unsigned char* p, unsigned long long sequence):
        self.open_ = True
        self.key = key
        self.raw = PyBytes_FromStringAndSize(<const char*>p, 10)
        self.first = PyLong_FromUnsignedLongLong(sequence)
        self.frames = bytearray()
        self.times = clone(_TIMES, 0, False)
        self.packets = 0

    cdef int add(self, const unsigned char* p, Py_ssize_t size, Py_ssize_t count,
                 unsigned long long sequence, long long time_ns) except -1:
        """The packet's blocks (2-byte length, message) as frames (2-byte length + 1, b"S",
        message): one more byte per message, written in place."""
        cdef Py_ssize_t at, held, k, n, pos = 20
        cdef unsigned char* dst
        cdef long long* tdst
        self.packets += 1
        self.end = sequence + <unsigned long long>count
        self.extendable = self.end > sequence  # no wrap past 2**64
        at = PyByteArray_GET_SIZE(self.frames)
        PyByteArray_Resize(self.frames, at + size - 20 + count)  # over-allocates: O(1) a byte
        dst = <unsigned char*>PyByteArray_AS_STRING(self.frames) + at
        held = len(self.times)
        resize_smart(self.times, held + count)
        tdst = <long long*>self.times.data.as_voidptr + held
        for k in range(count):
            n = (p[pos] << 8) | p[pos + 1]
            dst[0] = <unsigned char>((n + 1) >> 8)
            dst[1] = <unsigned char>((n + 1) & 0xFF)
            dst[2] = _S
            memcpy(dst + 3, p + pos + 2, n)
            dst += 3 + n
            tdst[k] = time_ns
            pos += 2 + n
        return 0

    cdef inline tuple close(self, int kind):
        self.open_ = False
        return (kind, self.key, self.first, self.packets, self.frames, self.times, self.raw)


def pcap_walk(object buf, Py_ssize_t pos, bint big, unsigned long long scale, int linktype,
              int kind=0):
    """`capture._walk.pure_pcap_walk`: the whole pcap records of `buf` from `pos`, decoded.

    (segments, position, records, truncated, other, acks, first time, last time): see the
    pure function. With `kind` (not 0), the rows are also what `mold_runs(rows, kind)` makes
    of them, done on the way: a MoldUDP64 data packet goes into its run's frames straight
    from `buf`, with no object of its own."""
    cdef Py_buffer view
    cdef const unsigned char* p
    cdef const unsigned char* q
    cdef const unsigned char* data
    cdef Py_ssize_t size, end, count, dsize
    cdef unsigned long long incl, orig, time_ns, sequence
    cdef Py_ssize_t records = 0, truncated = 0, other = 0, acks = 0
    cdef long long first = -1, last = -1
    cdef list out = []
    cdef set seen = set()
    cdef tuple segment
    cdef long flags
    cdef _Found f
    cdef _MoldRun run = _MoldRun()
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
            if not _locate(q + 16, <Py_ssize_t>incl, linktype, &f):
                other += 1
                continue
            if kind and f.protocol == 17 and f.start < <Py_ssize_t>incl:
                # What mold_runs would see: the datagram's captured bytes.
                data = q + 16 + f.start
                dsize = min(f.end, <Py_ssize_t>incl) - f.start
                count = _mold_count(data, dsize) if time_ns <= 0x7FFFFFFFFFFFFFFFULL else -1
                if count > 0:
                    sequence = _mold_sequence(data)
                    if not (run.extends(data, sequence) and type(run.key) is bytes
                            and PyBytes_GET_SIZE(run.key) == f.alen + 4
                            and memcmp(PyBytes_AS_STRING(run.key), f.addr, f.alen) == 0
                            and memcmp(PyBytes_AS_STRING(run.key) + f.alen, f.ports, 4) == 0):
                        if run.open_:
                            out.append(run.close(kind))
                        run.start(_key(&f), data, sequence)
                    run.add(data, dsize, count, sequence, <long long>time_ns)
                    continue
            segment = _segment(q + 16, <Py_ssize_t>incl, &f, time_ns)
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
                        if run.open_:
                            out.append(run.close(kind))
                        out.append(segment)
                        continue
                seen.add(segment[1])
            if run.open_:
                out.append(run.close(kind))
            out.append(segment)
        if run.open_:
            out.append(run.close(kind))
    finally:
        PyBuffer_Release(&view)
    return out, pos, records, truncated, other, acks, first, last


def mold_runs(list rows, int kind):
    """`capture._mold.pure_mold_runs`: consecutive MoldUDP64 data packets made one row
    (`kind`, key, first number, packets, frames, times, session field): the messages as
    SoupBinTCP Sequenced Data frames back to back (what a journal holds) and one capture
    time per message, no object per message."""
    cdef list out = []
    cdef _MoldRun run = _MoldRun()
    cdef long long time_ns = 0
    cdef int overflow = 0
    cdef bytes data
    cdef tuple row
    cdef const unsigned char* p
    cdef Py_ssize_t count
    cdef unsigned long long sequence
    for item in rows:
        row = <tuple>item
        if <long>row[0] == 17 and type(row[4]) is bytes and type(row[6]) is int:
            data = <bytes>row[4]
            p = <const unsigned char*>PyBytes_AS_STRING(data)
            count = _mold_count(p, len(data))
            time_ns = PyLong_AsLongLongAndOverflow(row[6], &overflow)
            if count > 0 and not overflow:
                sequence = _mold_sequence(p)
                if not (run.extends(p, sequence) and row[1] == run.key):
                    if run.open_:
                        out.append(run.close(kind))
                    run.start(row[1], p, sequence)
                run.add(p, len(data), count, sequence, time_ns)
                continue
        if run.open_:
            out.append(run.close(kind))
        out.append(row)
    if run.open_:
        out.append(run.close(kind))
    return out


def sequenced_run(object buf, Py_ssize_t pos, Py_ssize_t limit, bint omega):
    """`_wire._framing.PacketDecoder.pure_next_sequenced_run`'s loop: how many complete
    Sequenced Data packets lie at `pos` and where they end, no object per message."""
    cdef Py_buffer view
    cdef const unsigned char* p
    cdef Py_ssize_t size, n, end, count = 0
    cdef Py_ssize_t min_n = 2 if omega else 1
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
            pos = end
            count += 1
    finally:
        PyBuffer_Release(&view)
    return count, pos
