# Included by _core.pyx (one extension, one namespace): journal writing: frames and capture times in bulk.
# The cimports and shared helpers are in _core.pyx.

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
