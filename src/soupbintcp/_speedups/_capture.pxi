# Included by _core.pyx (one extension, one namespace): the per-packet walk of captures (issue 25).
# The cimports and shared helpers are in _core.pyx.

# --- issue 25: captures (the per-packet walk of capture/_walk.py and capture/_net.py) -------
#
# `capture_decode` is `capture._net.decode` and `pcap_walk` is `capture._walk.pure_pcap_walk`
# (with a run kind: followed by `capture._mold.pure_mold_runs`), line by line; `mold_runs` is
# `pure_mold_runs`, `sequenced_run` the loop of `PacketDecoder.pure_next_sequenced_run`. The
# pure functions stay the reference, and the tests hold the two to the same answers on
# random and hostile captures.

ctypedef struct _Found:
    unsigned int protocol
    unsigned int flags
    unsigned long sequence
    const unsigned char* addr  # the addresses (alen bytes), then the ports at `ports`
    const unsigned char* ports
    Py_ssize_t alen
    Py_ssize_t start  # the payload: [start, end) of the frame, of which [start, n) captured
    Py_ssize_t end


cdef bint _locate(const unsigned char* p, Py_ssize_t n, int linktype, _Found* f):
    """Where the TCP segment or UDP datagram of one captured frame lies (`capture._net.decode`
    without the objects); False when it is neither."""
    cdef Py_ssize_t off, l4, end, start, ihl, alen, length
    cdef unsigned int ethertype, family, version, protocol, offset
    cdef unsigned int flags = 0
    cdef unsigned long sequence = 0
    cdef const unsigned char* addr
    # The link layer.
    if linktype == 1:  # Ethernet
        if n < 14:
            return False
        ethertype = (p[12] << 8) | p[13]
        off = 14
        while (ethertype == 0x8100 or ethertype == 0x88A8) and n >= off + 4:
            ethertype = (p[off + 2] << 8) | p[off + 3]
            off += 4
    elif linktype == 0:  # BSD loopback
        if n < 4:
            return False
        family = p[0] | p[3]
        ethertype = 0x0800 if family == 2 else (
            0x86DD if (family == 24 or family == 28 or family == 30) else 0)
        off = 4
    elif linktype == 113:  # Linux cooked
        if n < 16:
            return False
        ethertype = (p[14] << 8) | p[15]
        off = 16
    elif linktype == 276:  # Linux cooked v2
        if n < 20:
            return False
        ethertype = (p[0] << 8) | p[1]
        off = 20
    elif linktype == 101 or linktype == 228 or linktype == 229:  # raw IP
        if n < 1:
            return False
        version = p[0] >> 4
        ethertype = 0x0800 if version == 4 else (0x86DD if version == 6 else 0)
        off = 0
    else:
        return False
    # IP.
    if ethertype == 0x0800:
        if n < off + 20:
            return False
        ihl = (p[off] & 15) * 4
        if ihl < 20 or ((p[off + 6] << 8) | p[off + 7]) & 0x3FFF:
            return False
        l4 = off + ihl
        end = off + ((p[off + 2] << 8) | p[off + 3])
        protocol = p[off + 9]
        addr = p + off + 12
        alen = 8
    elif ethertype == 0x86DD:
        if n < off + 40:
            return False
        end = off + 40 + ((p[off + 4] << 8) | p[off + 5])
        protocol = p[off + 6]
        addr = p + off + 8
        alen = 32
        l4 = off + 40
    else:
        return False
    # TCP or UDP.
    if protocol == 6:
        if n < l4 + 14:
            return False
        offset = p[l4 + 12]
        if offset < 0x50:
            return False
        sequence = (
            (<unsigned long>p[l4 + 4] << 24) | (<unsigned long>p[l4 + 5] << 16)
            | (<unsigned long>p[l4 + 6] << 8) | p[l4 + 7]
        )
        flags = p[l4 + 13]
        start = l4 + (offset >> 4) * 4
    elif protocol == 17:
        if n < l4 + 6:
            return False
        length = (p[l4 + 4] << 8) | p[l4 + 5]
        start = l4 + 8
        if l4 + length < end:
            end = l4 + length
    else:
        return False
    if end < start:
        return False
    f.protocol = protocol
    f.flags = flags
    f.sequence = sequence
    f.addr = addr
    f.ports = p + l4
    f.alen = alen
    f.start = start
    f.end = end
    return True


cdef bytes _key(_Found* f):
    """The flow's key: the addresses, then the ports (as `capture._net.decode` makes it)."""
    cdef bytes key = PyBytes_FromStringAndSize(NULL, f.alen + 4)
    cdef char* k = PyBytes_AS_STRING(key)
    memcpy(k, f.addr, f.alen)
    memcpy(k + f.alen, f.ports, 4)
    return key


cdef object _capture_decode(const unsigned char* p, Py_ssize_t n, int linktype, object time):
    """(protocol, key, sequence, flags, payload, missing) of one captured frame, or None;
    with `time` (not None) added at the end: what `pcap_walk` hands out."""
    cdef _Found f
    if not _locate(p, n, linktype, &f):
        return None
    return _segment(p, n, &f, time)


cdef tuple _segment(const unsigned char* p, Py_ssize_t n, _Found* f, object time):
    """The row of what `_locate` found in frame `p` (`n` bytes captured)."""
    cdef bytes payload
    cdef Py_ssize_t missing
    if f.start >= n:
        payload = b""
        missing = f.end - f.start
    elif f.end <= n:
        payload = PyBytes_FromStringAndSize(<const char*>p + f.start, f.end - f.start)
        missing = 0
    else:
        payload = PyBytes_FromStringAndSize(<const char*>p + f.start, n - f.start)
        missing = f.end - n
    if time is None:
        return (f.protocol, _key(f), f.sequence, f.flags, payload, missing)
    return (f.protocol, _key(f), f.sequence, f.flags, payload, missing, time)


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
