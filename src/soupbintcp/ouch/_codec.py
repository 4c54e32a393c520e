"""Encode and decode: per message class, one encoder and one decoder built at import.

Why generated code: a generic loop over a field table costs a Python-level step per field,
which halves the rate; each class's pair is instead written out once from its ``KINDS``
(as `collections.namedtuple` and `dataclasses` do), so the hot path is one
`struct` call, a dictionary look-up per code and one tuple build. Faults are then located
by a slow second pass that names the offset (`_locate`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

from ._errors import (
    AppendageLengthError,
    InvalidFieldValue,
    MessageLengthError,
    OuchEncodeError,
    UnknownMessageType,
)
from ._fields import Message
from ._inbound import (
    AccountQueryRequest,
    CancelOrderRequest,
    EnterOrder,
    ModifyOrderRequest,
    ReplaceOrderRequest,
)
from ._options import decode_appendage, encode_appendage
from ._outbound import (
    AccountQueryResponse,
    AiqCanceled,
    BrokenTrade,
    CancelPending,
    CancelReject,
    OrderAccepted,
    OrderCanceled,
    OrderExecuted,
    OrderModified,
    OrderPriorityUpdate,
    OrderReplaced,
    OrderRestated,
    Rejected,
    SystemEvent,
)

__all__ = [
    "INBOUND",
    "OUTBOUND",
    "decode",
    "decode_inbound",
    "decode_outbound",
    "encode",
]

#: Inbound (client -> host) message classes by type letter.
INBOUND: Final[dict[str, type[Message]]] = {
    cls.TYPE: cls
    for cls in (
        EnterOrder,
        ReplaceOrderRequest,
        CancelOrderRequest,
        ModifyOrderRequest,
        AccountQueryRequest,
    )
}
#: Outbound (host -> client) message classes by type letter.
OUTBOUND: Final[dict[str, type[Message]]] = {
    cls.TYPE: cls
    for cls in (
        SystemEvent,
        OrderAccepted,
        OrderReplaced,
        OrderCanceled,
        AiqCanceled,
        OrderExecuted,
        BrokenTrade,
        Rejected,
        CancelPending,
        CancelReject,
        OrderPriorityUpdate,
        OrderModified,
        OrderRestated,
        AccountQueryResponse,
    )
}

Decoder = Callable[[Any, int, bool], Message]


def _struct_of(cls: type[Message]) -> struct.Struct:
    codes = "".join(kind.struct_code for kind in cls.KINDS)
    return struct.Struct(">" + codes + ("H" if cls.TAGS is not None else ""))


def _locate(cls: type[Message], payload: Any) -> InvalidFieldValue:
    """The error for the first fixed field of ``payload`` that does not decode."""
    offset = 1
    for name, kind in zip(cls._fields, cls.KINDS, strict=False):  # type: ignore[attr-defined]
        fmt = ">" + kind.struct_code
        (raw,) = struct.unpack_from(fmt, payload, offset)
        if kind.codes is not None and raw not in kind.codes:
            return InvalidFieldValue(f"{cls.__name__}.{name}: {raw!r} is not a valid code", offset)
        if kind.text_width:
            try:
                raw.decode("ascii")
            except UnicodeDecodeError:
                return InvalidFieldValue(f"{cls.__name__}.{name}: {raw!r} is not ASCII", offset)
        offset += struct.calcsize(fmt)
    return InvalidFieldValue(f"{cls.__name__}: undecodable", 0)  # pragma: no cover


def _build(cls: type[Message]) -> tuple[Decoder, Callable[[Any], bytes]]:
    """Write out and compile ``cls``'s decoder and encoder."""
    packer = _struct_of(cls)
    assert 1 + packer.size == cls.FIXED, (cls.__name__, packer.size)
    names = [f"v{i}" for i in range(len(cls.KINDS))]
    scope: dict[str, Any] = {
        "cls": cls,
        "new": tuple.__new__,
        "unpack_from": packer.unpack_from,
        "pack": struct.Struct(">c" + packer.format[1:]).pack,
        "tags": cls.TAGS,
        "decode_appendage": decode_appendage,
        "encode_appendage": encode_appendage,
        "locate": _locate,
        "MessageLengthError": MessageLengthError,
        "AppendageLengthError": AppendageLengthError,
        "OuchEncodeError": OuchEncodeError,
        "struct_error": struct.error,
        "type_byte": cls.TYPE.encode("ascii"),
    }
    reads, writes = [], []
    for i, (name, kind) in enumerate(zip(names, cls.KINDS, strict=True)):
        if kind.codes is not None:
            scope[f"d{i}"] = dict(kind.codes)
            scope[f"e{i}"] = {member: raw for raw, member in kind.codes.items()}
            reads.append(f"d{i}[{name}]")
            writes.append(f"e{i}[{name}]")
        elif kind.text_width:
            reads.append(f"{name}.decode('ascii').rstrip(' ')")
            w = kind.text_width
            writes.append(
                f"(t if len(t := {name}.encode('ascii')) <= {w} else text({name}, {w})).ljust({w})"
            )
        else:
            reads.append(name)
            writes.append(name)
    fixed = cls.FIXED
    unpacked = ", ".join(names + (["alen"] if cls.TAGS is not None else [])) + ","
    if cls.TAGS is None:
        check = (
            f"    if n != {fixed}:\n"
            f"        raise MessageLengthError('{cls.__name__} is {fixed} bytes, not ' + str(n), "
            f"min(n, {fixed}))\n"
        )
        tail = ""
        app_write = ""
    else:
        check = (
            f"    if n < {fixed}:\n"
            f"        raise MessageLengthError("
            f"'{cls.__name__} needs {fixed} bytes, has ' + str(n), n)\n"
        )
        tail = f"decode_appendage(payload, {fixed}, n, tags, strict) if alen else (), "
        app_write = (
            "    a = encode_appendage(m[-1], tags, cls.__name__) if m[-1] else b''\n"
            "    if len(a) > 65535:\n"
            "        raise OuchEncodeError(cls.__name__ + ': appendage over 65,535 bytes')\n"
        )
    source = f"def decode(payload, n, strict):\n{check}"
    if names or cls.TAGS is not None:
        source += f"    {unpacked} = unpack_from(payload, 1)\n"
    if cls.TAGS is not None:
        source += (
            f"    if {fixed} + alen != n:\n"
            f"        raise AppendageLengthError('{cls.__name__}: fixed part {fixed} + Appendage "
            f"Length ' + str(alen) + ' != ' + str(n), {fixed - 2})\n"
        )
    source += (
        "    try:\n"
        f"        return new(cls, ({''.join(r + ', ' for r in reads)}{tail}))\n"
        "    except (KeyError, UnicodeDecodeError):\n"
        "        raise locate(cls, payload) from None\n"
    )
    source += "\n\ndef encode(m):\n"
    source += app_write
    if names:
        source += f"    {', '.join(names)}, *_ = m\n"
    if cls.TAGS is not None:
        writes.append("len(a)")
    appended = " + a" if cls.TAGS is not None else ""
    source += (
        "    try:\n"
        f"        return pack(type_byte{''.join(', ' + w for w in writes)}){appended}\n"
        "    except (KeyError, struct_error, UnicodeEncodeError, AttributeError, TypeError)"
        " as exc:\n"
        "        raise OuchEncodeError(f'cannot encode {m!r}: {exc!r}') from None\n"
    )
    scope["text"] = _text
    # The source is ours, built above from the class tables: no outside input reaches it.
    code = compile(source, f"<ouch codec {cls.__name__}>", "exec")
    exec(code, scope)  # noqa: S102
    return scope["decode"], scope["encode"]


def _text(value: str, width: int) -> bytes:
    raw = value.encode("ascii")
    if len(raw) > width:
        raise OuchEncodeError(f"{value!r} is longer than its {width}-byte field")
    return raw.ljust(width)


def _tables() -> tuple[dict[int, Decoder], dict[int, Decoder]]:
    inbound: dict[int, Decoder] = {}
    outbound: dict[int, Decoder] = {}
    for table, classes in ((inbound, INBOUND), (outbound, OUTBOUND)):
        for letter, cls in classes.items():
            decoder, encoder = _build(cls)
            cls.encode = encoder  # type: ignore[method-assign,assignment]
            table[ord(letter)] = decoder
    return inbound, outbound


_INBOUND_DECODERS, _OUTBOUND_DECODERS = _tables()


def decode_inbound(payload: bytes | bytearray | memoryview, strict: bool = False) -> Message:
    """Decode one client -> host message (the payload of an Unsequenced Data packet).

    Raises an `OuchError` subclass naming the offset for anything malformed. Options with
    tags this edition does not define are kept as `UnknownOption`; with ``strict`` they,
    and defined tags the message does not allow, raise `UnknownTag`.
    """
    n = len(payload)
    try:
        decoder = _INBOUND_DECODERS[payload[0]]
    except (KeyError, IndexError):
        raise UnknownMessageType(
            f"not an inbound OUCH message type: {bytes(payload[:1])!r}", 0
        ) from None
    return decoder(payload, n, strict)


def decode_outbound(payload: bytes | bytearray | memoryview, strict: bool = False) -> Message:
    """Decode one host -> client message (the payload of a Sequenced Data packet)."""
    n = len(payload)
    try:
        decoder = _OUTBOUND_DECODERS[payload[0]]
    except (KeyError, IndexError):
        raise UnknownMessageType(
            f"not an outbound OUCH message type: {bytes(payload[:1])!r}", 0
        ) from None
    return decoder(payload, n, strict)


def decode(payload: bytes | bytearray | memoryview, inbound: bool, strict: bool = False) -> Message:
    """Decode one message of the given direction (``U``, ``M``, ``Q`` differ by direction)."""
    return (decode_inbound if inbound else decode_outbound)(payload, strict)


def encode(message: Message) -> bytes:
    """The bytes of ``message``: the same as ``message.encode()``."""
    return message.encode()
