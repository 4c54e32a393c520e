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
