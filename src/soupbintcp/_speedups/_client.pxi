# The client's round trip (issue 22): the usual answer to a request, a chunk that is exactly
# one Sequenced Data packet, made into the `Message` the application is handed, in C. The
# pure twin, the reference, is `_session._client.one_sequenced_message`.

cdef extern from "Python.h":
    bint PyBytes_CheckExact(object o)
    int PyType_HasFeature(type cls, unsigned long feature)
    unsigned long Py_TPFLAGS_TUPLE_SUBCLASS


def one_sequenced_message(
    type cls, object data, object sequence, Py_ssize_t limit, bint omega
):
    """`cls((sequence, data[3:]))` if `data` is exactly one whole Sequenced Data packet with
    at most `limit` bytes after its length field (and, with `omega`, not the empty "no more
    messages"); else None. `cls` is a plain tuple subclass (`Message`): allocated and filled
    here, with no argument tuple made and copied (`Message((n, b))` costs ~180 ns)."""
    cdef Py_ssize_t n = len(data) - 2
    cdef const unsigned char* p
    if not PyType_HasFeature(cls, Py_TPFLAGS_TUPLE_SUBCLASS):
        raise TypeError(f"{cls.__name__} is not a tuple subclass")
    if n < 1 or n > limit:
        return None
    if not PyBytes_CheckExact(data):  # a bytearray or view (sans-IO callers): as the twin
        if data[2] != _S or ((data[0] << 8) | data[1]) != n or (n == 1 and omega):
            return None
        return cls((sequence, data[3:]))
    p = <const unsigned char*>PyBytes_AS_STRING(data)
    if p[2] != _S or ((<Py_ssize_t>p[0] << 8) | p[1]) != n or (n == 1 and omega):
        return None
    payload = PyBytes_FromStringAndSize(<const char*>p + 3, n - 1)
    msg = PyType_GenericAlloc(cls, 2)
    Py_INCREF(sequence)
    PyTuple_SET_ITEM(msg, 0, sequence)
    Py_INCREF(payload)
    PyTuple_SET_ITEM(msg, 1, payload)
    return msg
