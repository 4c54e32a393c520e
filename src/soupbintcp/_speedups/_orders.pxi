# Included by _core.pyx (one extension, one namespace): the order client's answers read as
# fields. The cimports and shared helpers are in _core.pyx.
#
# Twins of `ouch._fast.accepted_fields` / `canceled_fields` / `executed_fields` (the pure
# functions stay the reference; tests/test_ouch_fast.py holds them equal, Hypothesis). The
# code tables and caches are the pure module's own, handed over once by `orders_tables`: a
# payload whose codes are not cached yet goes to the pure function, which checks and caches.
# Each returns what its twin returns; anything but exactly `bytes` goes to the twin too.

cdef object _pure_accepted = None
cdef object _pure_canceled = None
cdef object _pure_executed = None
cdef dict _accepted_codes = None
cdef dict _symbol_text = None
cdef dict _cancel_reasons = None
cdef dict _liquidity_flags = None


def orders_tables(
    object pure_accepted, object pure_canceled, object pure_executed, dict accepted_codes,
    dict symbol_text, dict cancel_reasons, dict liquidity_flags,
):
    """The pure twins and the tables they use (`ouch._fast`), once at its import."""
    global _pure_accepted, _pure_canceled, _pure_executed
    global _accepted_codes, _symbol_text, _cancel_reasons, _liquidity_flags
    _pure_accepted, _pure_canceled, _pure_executed = pure_accepted, pure_canceled, pure_executed
    _accepted_codes, _symbol_text = accepted_codes, symbol_text
    _cancel_reasons, _liquidity_flags = cancel_reasons, liquidity_flags


cdef inline unsigned long long _be(const unsigned char* p, int n) noexcept:
    cdef unsigned long long v = 0
    cdef int k
    for k in range(n):
        v = (v << 8) | p[k]
    return v


cdef inline Py_ssize_t _unpadded(const unsigned char* p, Py_ssize_t n) noexcept:
    """The length of `p[:n]` without its trailing spaces (`bytes.rstrip(b" ")`)."""
    while n > 0 and p[n - 1] == 32:
        n -= 1
    return n


def accepted_fields(object payload):
    """`ouch._fast.accepted_fields` (Order Accepted, §3.2, without appendage)."""
    if type(payload) is not bytes or len(<bytes>payload) != 64:
        return _pure_accepted(payload)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(payload)
    cdef char key[7]
    key[0] = <char>p[13]  # side, time in force + display, capacity + ISE + cross + state
    key[1] = <char>p[34]
    key[2] = <char>p[35]
    key[3] = <char>p[44]
    key[4] = <char>p[45]
    key[5] = <char>p[46]
    key[6] = <char>p[47]
    codes = _accepted_codes.get(PyBytes_FromStringAndSize(key, 7))
    if codes is None or _be(p + 62, 2) != 0:
        return _pure_accepted(payload)  # not cached yet (it checks, caches), or refused
    try:
        cl_ord_id = PyUnicode_DecodeASCII(<const char*>p + 48, _unpadded(p + 48, 14), NULL)
    except UnicodeDecodeError:
        return None
    raw = PyBytes_FromStringAndSize(<const char*>p + 18, 8)
    symbol = _symbol_text.get(raw)
    if symbol is None:
        return _pure_accepted(payload)
    return (
        _be(p + 9, 4), cl_ord_id, symbol, (<tuple>codes)[0], _be(p + 14, 4), _be(p + 26, 8),
        (<tuple>codes)[1], _be(p + 36, 8), (<tuple>codes)[2],
    )


def canceled_fields(object payload):
    """`ouch._fast.canceled_fields` (Order Canceled, §3.4)."""
    if type(payload) is not bytes or len(<bytes>payload) != 18:
        return _pure_canceled(payload)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(payload)
    if PyBytes_FromStringAndSize(<const char*>p + 17, 1) not in _cancel_reasons:
        return None
    return _be(p + 9, 4), _be(p + 13, 4)


def executed_fields(object payload):
    """`ouch._fast.executed_fields` (Order Executed, §3.6, without appendage)."""
    if type(payload) is not bytes or len(<bytes>payload) != 36:
        return _pure_executed(payload)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(payload)
    member = _liquidity_flags.get(PyBytes_FromStringAndSize(<const char*>p + 25, 1))
    if member is None or _be(p + 34, 2) != 0:
        return None
    return _be(p + 9, 4), _be(p + 13, 4), _be(p + 17, 8), member, _be(p + 26, 8)
