"""OUCH 5.0 codec: Hypothesis round trips of every message, and every malformed form.

Golden vectors (the bytes themselves) are in test_ouch_golden.py; here the properties:
encode then decode gives the message back, in both directions, with any allowed options;
and any bytes either decode or raise an `OuchError` naming a sensible offset.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soupbintcp import ouch as o
from soupbintcp.ouch._fields import Kind

_MAX = {"H": 0xFFFF, "I": 0xFFFF_FFFF, "Q": 0xFFFF_FFFF_FFFF_FFFF}
# Alpha text as it survives the wire: ASCII, no trailing spaces (they are the padding).
_TEXT_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def _text(width: int) -> st.SearchStrategy[str]:
    return st.text(_TEXT_CHARS, max_size=width).map(lambda s: s.rstrip(" "))


def _field(kind: Kind) -> st.SearchStrategy[Any]:
    if kind.codes is not None:
        return st.sampled_from(list(kind.codes.values()))
    if kind.text_width:
        return _text(kind.text_width)
    return st.integers(0, _MAX[kind.struct_code])


def _option(cls: type[o.Option]) -> st.SearchStrategy[Any]:
    from soupbintcp.ouch._options import _ENUM_OF, _INT_FORMAT

    tag = cls.TAG
    values: st.SearchStrategy[Any]
    if tag in _INT_FORMAT:
        fmt = _INT_FORMAT[tag][-1]
        values = st.integers(-(2**31), 2**31 - 1) if fmt == "i" else st.integers(0, _MAX[fmt])
    elif tag in _ENUM_OF:
        members: list[Enum] = list(_ENUM_OF[tag])
        if tag == 10:
            members = [m for m in members if m.value in "LPMR"]
        values = st.sampled_from(members)
    else:
        values = _text(cls.SIZE)
    return values.map(lambda v: cls(v))  # type: ignore[call-arg]


def _message(cls: type[o.Message]) -> st.SearchStrategy[o.Message]:
    fields = [_field(kind) for kind in cls.KINDS]
    if cls.TAGS is not None:
        allowed = [o.OPTION_CLASSES[t] for t in sorted(cls.TAGS)]
        options = (
            st.lists(st.one_of(*map(_option, allowed)), max_size=4) if allowed else st.just([])
        )
        fields.append(options.map(tuple))
    return st.tuples(*fields).map(lambda values: cls(*values))


ALL = [*o.INBOUND.values(), *o.OUTBOUND.values()]


@pytest.mark.parametrize(
    "cls", ALL, ids=[f"{c.__name__}-{'in' if c.INBOUND else 'out'}" for c in ALL]
)
@given(data=st.data())
def test_round_trip(cls: type[o.Message], data: st.DataObject) -> None:
    message = data.draw(_message(cls))
    raw = message.encode()
    assert raw[:1] == cls.TYPE.encode()
    assert len(raw) == cls.FIXED + (len(raw) - cls.FIXED) >= cls.FIXED
    decoded = o.decode(raw, inbound=cls.INBOUND, strict=True)
    assert decoded == message
    assert type(decoded) is cls
    assert decoded.encode() == raw


@given(st.binary(max_size=80), st.booleans(), st.booleans())
def test_any_bytes_decode_or_raise_ouch_error(raw: bytes, inbound: bool, strict: bool) -> None:
    error: o.OuchError | None = None
    try:
        message = o.decode(raw, inbound=inbound, strict=strict)
    except o.OuchError as exc:
        error = exc
    if error is None:
        assert message.encode() == raw  # what decodes re-encodes to the same bytes
    else:
        assert 0 <= error.offset <= len(raw)


def _enter(**changes: Any) -> bytes:
    return o.EnterOrder(1, o.Side.BUY, 100, "AAPL", 10_000, **changes).encode()


def test_empty_and_unknown_types() -> None:
    with pytest.raises(o.UnknownMessageType) as exc:
        o.decode_inbound(b"")
    assert exc.value.offset == 0
    with pytest.raises(o.UnknownMessageType):
        o.decode_inbound(b"Z")
    with pytest.raises(o.UnknownMessageType):
        o.decode_outbound(_enter())  # O is inbound only
    with pytest.raises(o.UnknownMessageType):
        o.decode_inbound(b"A" + bytes(63))  # A is outbound only


def test_wrong_fixed_lengths() -> None:
    with pytest.raises(o.MessageLengthError):
        o.decode_inbound(b"X" + bytes(7))
    with pytest.raises(o.MessageLengthError):
        o.decode_inbound(b"X" + bytes(9))  # one byte too many
    with pytest.raises(o.MessageLengthError):
        o.decode_inbound(b"Q\x00")
    with pytest.raises(o.MessageLengthError) as exc:
        o.decode_inbound(_enter()[:46])  # shorter than the fixed part
    assert exc.value.offset == 46


def test_appendage_length_must_match_the_payload() -> None:
    raw = _enter(appendage=(o.MinQty(100),))
    with pytest.raises(o.AppendageLengthError) as exc:
        o.decode_inbound(raw + b"\x00")  # one byte more than Appendage Length says
    assert exc.value.offset == 45
    with pytest.raises(o.AppendageLengthError):
        o.decode_inbound(raw[:-1])
    with pytest.raises(o.AppendageLengthError):
        o.decode_inbound(_enter()[:-2] + b"\x00\x01")  # says 1 byte, none follow


def _with_appendage(elements: bytes) -> bytes:
    return _enter()[:45] + len(elements).to_bytes(2, "big") + elements


def test_truncated_tags() -> None:
    with pytest.raises(o.TruncatedTag) as exc:
        o.decode_inbound(_with_appendage(b"\x05\x03\x00\x00"))  # MinQty cut short
    assert exc.value.offset == 47
    with pytest.raises(o.TruncatedTag) as exc:
        o.decode_inbound(_with_appendage(b"\x05\x03\x00\x00\x00\x64\x00"))  # Length 0
    assert exc.value.offset == 53


def test_unknown_tags_are_kept_unless_strict() -> None:
    raw = _with_appendage(b"\x03\x08\xab\xcd\x05\x03\x00\x00\x00\x64")  # tag 8 is undefined
    message = o.decode_inbound(raw)
    assert message.appendage == (o.UnknownOption(8, b"\xab\xcd"), o.MinQty(100))  # type: ignore[attr-defined]
    assert message.encode() == raw  # kept byte for byte
    with pytest.raises(o.UnknownTag) as exc:
        o.decode_inbound(raw, strict=True)
    assert exc.value.offset == 48
    assert o.find_option(message.appendage, o.MinQty) == 100  # type: ignore[attr-defined]
    assert o.find_option(message.appendage, o.Firm) is None  # type: ignore[attr-defined]


def test_a_tag_not_allowed_in_the_message_is_refused_when_strict() -> None:
    raw = _with_appendage(b"\x02\x12\x31")  # BBO Weight Indicator: outbound only
    assert o.decode_inbound(raw).appendage == (o.BboWeight(o.BboWeightIndicator.UP_TO_1_PERCENT),)  # type: ignore[attr-defined]
    with pytest.raises(o.UnknownTag):
        o.decode_inbound(raw, strict=True)


def test_known_tag_with_the_wrong_size_or_value() -> None:
    with pytest.raises(o.TagValueError) as exc:
        o.decode_inbound(_with_appendage(b"\x04\x03\x00\x00\x64"))  # MinQty in 3 bytes
    assert exc.value.offset == 47
    with pytest.raises(o.TagValueError) as exc:
        o.decode_inbound(_with_appendage(b"\x02\x0c\x58"))  # PostOnly "X"
    assert exc.value.offset == 49
    with pytest.raises(o.TagValueError):
        o.decode_inbound(_with_appendage(b"\x02\x0a\x51"))  # DiscretionPriceType "Q"


@pytest.mark.parametrize(
    ("offset", "byte", "inbound"),
    [(5, b"U", True), (26, b"E", None), (27, b"Z", True), (10, b"\xe9", True), (29, b"X", True)],
)
def test_bad_field_values_name_their_offset(offset: int, byte: bytes, inbound: bool | None) -> None:
    raw = bytearray(_enter())
    raw[offset : offset + 1] = byte
    if inbound is None:  # "E" after hours is a valid TIF for Enter, not for Replace
        assert o.decode_inbound(bytes(raw)).time_in_force is o.TimeInForce.AFTER_HOURS  # type: ignore[attr-defined]
        replace = bytearray(o.ReplaceOrderRequest(1, 2, 100, 100).encode())
        replace[21:22] = b"E"
        raw, offset = replace, 21
    with pytest.raises(o.InvalidFieldValue) as exc:
        o.decode_inbound(bytes(raw))
    assert exc.value.offset == offset


def test_outbound_bad_codes() -> None:
    raw = bytearray(o.OrderCanceled(1, 2, 3, o.CancelReason.TIMEOUT).encode())
    raw[17] = ord("W")
    with pytest.raises(o.InvalidFieldValue) as exc:
        o.decode_outbound(bytes(raw))
    assert exc.value.offset == 17
    rejected = bytearray(o.Rejected(1, 2, o.RejectReason.OTHER, "").encode())
    rejected[13:15] = b"\x00\x2b"  # 43 is past Appendix D
    with pytest.raises(o.InvalidFieldValue) as exc:
        o.decode_outbound(bytes(rejected))
    assert exc.value.offset == 13


def test_values_that_do_not_fit_are_not_encoded() -> None:
    bad: list[o.Message] = [
        o.EnterOrder(1, o.Side.BUY, 100, "TOOLONGSYM", 1),
        o.EnterOrder(1, o.Side.BUY, 100, "AAPL", 1, cl_ord_id="x" * 15),
        o.EnterOrder(2**32, o.Side.BUY, 100, "AAPL", 1),
        o.EnterOrder(1, o.Side.BUY, -1, "AAPL", 1),
        o.EnterOrder(1, "X", 100, "AAPL", 1),  # type: ignore[arg-type]
        o.EnterOrder(1, o.Side.BUY, 100, "ÄPL", 1),
        o.EnterOrder(1, o.Side.BUY, 100, "AAPL", 1, display=o.Display.CONFORMANT),
        o.EnterOrder(1, o.Side.BUY, 100, "AAPL", 1, appendage=(o.BboWeight(" "),)),
        o.EnterOrder(1, o.Side.BUY, 100, "AAPL", 1, appendage=(o.MinQty(2**32),)),
        o.EnterOrder(1, o.Side.BUY, 100, "AAPL", 1, appendage=(o.Firm("ABCDE"),)),
        o.ReplaceOrderRequest(1, 2, 3, 4, appendage=(o.Firm("ABCD"),)),  # Firm: not on replace
        o.OrderExecuted(1, 2, 3, 4, o.LiquidityFlag.ADDED, 5, appendage=(o.MinQty(1),)),
    ]
    for message in bad:
        with pytest.raises(o.OuchEncodeError):
            message.encode()


def test_plain_code_letters_encode_like_members() -> None:
    as_letters = o.EnterOrder(1, "B", 100, "AAPL", 1, "3")  # type: ignore[arg-type]
    assert (
        as_letters.encode()
        == o.EnterOrder(1, o.Side.BUY, 100, "AAPL", 1, o.TimeInForce.IOC).encode()
    )
