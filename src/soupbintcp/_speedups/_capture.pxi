# Included by _core.pyx (one extension, one namespace): the per-packet walk of captures (issue 25).
# The cimports and shared helpers are in _core.pyx.

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


cdef array _TIMES = array("q")  # capture times: signed 64-bit ns, as the sidecar holds them
assert _TIMES.itemsize == 8


cdef inline Py_ssize_t _grow(bytearray frames, Py_ssize_t extra) except -1:
    """Make room for `extra` more bytes at the end of `frames` (over-allocating, so a run
    of many packets is copied O(1) times per byte); the old length."""
    cdef Py_ssize_t size = PyByteArray_GET_SIZE(frames)
    PyByteArray_Resize(frames, size + extra)
    return size


def mold_runs(list rows, int kind):
    """`capture._mold.pure_mold_runs`: consecutive MoldUDP64 data packets made one row
    (`kind`, key, first number, packets, frames, times, session field): the messages as
    SoupBinTCP Sequenced Data frames back to back (what a journal holds) and one capture
    time per message, no object per message."""
    cdef list out = []
    cdef bytearray frames = None
    cdef array times = None
    cdef object key = None
    cdef object run_key = None
    cdef object first = None
    cdef long long time_ns = 0
    cdef int overflow = 0
    cdef bytes raw = None
    cdef bytes data
    cdef tuple row
    cdef const unsigned char* p
    cdef unsigned char* dst
    cdef long long* tdst
    cdef Py_ssize_t size, pos, end, k, n, at, packets = 0, held
    cdef unsigned long long sequence, run_end = 0
    cdef unsigned int count
    cdef bint open_ = False, extendable = False
    for item in rows:
        row = <tuple>item
        if <long>row[0] == 17 and type(row[4]) is bytes and type(row[6]) is int:
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
                    time_ns = PyLong_AsLongLongAndOverflow(row[6], &overflow)
                    if k == count and pos == size and not overflow:
                        sequence = (
                            (<unsigned long long>p[10] << 56) | (<unsigned long long>p[11] << 48)
                            | (<unsigned long long>p[12] << 40) | (<unsigned long long>p[13] << 32)
                            | (<unsigned long long>p[14] << 24) | (<unsigned long long>p[15] << 16)
                            | (<unsigned long long>p[16] << 8) | p[17]
                        )
                        key = row[1]
                        if not (open_ and extendable and sequence == run_end and key == run_key
                                and memcmp(PyBytes_AS_STRING(raw), p, 10) == 0):
                            if open_:
                                out.append((kind, run_key, first, packets, frames, times, raw))
                            open_ = True
                            run_key = key
                            raw = PyBytes_FromStringAndSize(<const char*>p, 10)
                            first = PyLong_FromUnsignedLongLong(sequence)
                            frames = bytearray()
                            times = clone(_TIMES, 0, False)
                            packets = 0
                        packets += 1
                        run_end = sequence + count
                        extendable = run_end > sequence  # no wrap past 2**64
                        # A block (2-byte length, message) becomes a frame (2-byte length
                        # + 1, b"S", message): one more byte per message.
                        at = _grow(frames, size - 20 + count)
                        dst = <unsigned char*>PyByteArray_AS_STRING(frames) + at
                        held = len(times)
                        resize_smart(times, held + count)
                        tdst = <long long*>times.data.as_voidptr + held
                        pos = 20
                        for k in range(count):
                            n = (p[pos] << 8) | p[pos + 1]
                            dst[0] = <unsigned char>((n + 1) >> 8)
                            dst[1] = <unsigned char>((n + 1) & 0xFF)
                            dst[2] = _S
                            memcpy(dst + 3, p + pos + 2, n)
                            dst += 3 + n
                            tdst[k] = time_ns
                            pos += 2 + n
                        continue
        if open_:
            out.append((kind, run_key, first, packets, frames, times, raw))
            open_ = False
        out.append(row)
    if open_:
        out.append((kind, run_key, first, packets, frames, times, raw))
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
