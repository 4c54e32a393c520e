"""Fast paths for an order client's hot path: Enter Order without options, and the answers
that come for almost every order (Order Accepted, Order Canceled, Order Executed) without an
appendage, read as the fields an order book needs rather than as message objects.

Why: the order client's round trip is measured against the bare SoupBinTCP client (target
<= 1.1x, bench/bench_orders.py). The general codec builds a named tuple with every code as an
enumeration member, and the client then reads it through several layers; these read the
fields with one `struct` call at the spec's fixed offsets (reference §2.1, §3.2, §3.4, §3.6).

They check every field exactly as the codec does (the same code tables, taken from the
message classes' ``KINDS``; the same text rule): a payload they accept decodes with
`decode_outbound` to the same values, and the bytes they build are `EnterOrder.encode()`'s
(tests/test_ouch_fast.py, Hypothesis). Anything else (an appendage, another length, a code
the spec does not list, text that is not ASCII, a value that does not fit) gives None, and
the caller uses the codec, which then decides, and names what is wrong.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from .._speedups import ACCELERATED
from ._enums import OrderState
from ._inbound import EnterOrder
from ._outbound import OrderAccepted, OrderCanceled, OrderExecuted

__all__ = [
    "accepted_fields",
    "canceled_fields",
    "encode_enter_order",
    "enter_order_codes",
    "executed_fields",
    "pure_accepted_fields",
    "pure_canceled_fields",
    "pure_executed_fields",
]

# After the type byte and the timestamp (offset 9): the wire layout of the fixed part, codes
# as raw bytes (the adjacent one-byte codes read as one string each).
_ACCEPTED: Final = struct.Struct(">IcI8sQ2sQ4s14sH")  # §3.2, 64 bytes
_CANCELED: Final = struct.Struct(">IIc")  # §3.4, 18 bytes
_EXECUTED: Final = struct.Struct(">IIQcQH")  # §3.6, 36 bytes
_ENTER: Final = struct.Struct(">cIcI8sQ5s14sH")  # §2.1, 47 bytes

assert 9 + _ACCEPTED.size == OrderAccepted.FIXED
assert 9 + _CANCELED.size == OrderCanceled.FIXED
assert 9 + _EXECUTED.size == OrderExecuted.FIXED
assert _ENTER.size == EnterOrder.FIXED


def _codes(cls: type[Any], index: int) -> dict[bytes, Any]:
    codes = cls.KINDS[index].codes
    assert codes is not None, (cls.__name__, index)
    assert all(len(raw) == 1 for raw in codes), (cls.__name__, index)
    return dict(codes)


# Raw code -> member, per field, from the message classes themselves.
_A_SIDE, _A_TIF = _codes(OrderAccepted, 2), _codes(OrderAccepted, 6)
_A_DISPLAY, _A_CAPACITY = _codes(OrderAccepted, 7), _codes(OrderAccepted, 9)
_A_ISE, _A_CROSS = _codes(OrderAccepted, 10), _codes(OrderAccepted, 11)
_A_STATE = _codes(OrderAccepted, 12)
_C_REASON = _codes(OrderCanceled, 3)
_E_LIQUIDITY = _codes(OrderExecuted, 4)
_E_SIDE, _E_TIF, _E_DISPLAY = _codes(EnterOrder, 1), _codes(EnterOrder, 5), _codes(EnterOrder, 6)
_E_CAPACITY, _E_ISE, _E_CROSS = _codes(EnterOrder, 7), _codes(EnterOrder, 8), _codes(EnterOrder, 9)

#: Order Accepted's seven code bytes (side, tif + display, capacity + ISE + cross + state)
#: already checked -> (side, time in force, dead). At most the product of the code sets.
_ACCEPTED_CODES: dict[bytes, tuple[Any, Any, bool]] = {}


def _accepted_codes(key: bytes) -> tuple[Any, Any, bool] | None:
    try:
        side, tif = _A_SIDE[key[0:1]], _A_TIF[key[1:2]]
        _A_DISPLAY[key[2:3]], _A_CAPACITY[key[3:4]], _A_ISE[key[4:5]], _A_CROSS[key[5:6]]
        state = _A_STATE[key[6:7]]
    except KeyError:
        return None  # the codec names the field
    out = (side, tif, state is OrderState.DEAD)
    _ACCEPTED_CODES[key] = out
    return out


def pure_accepted_fields(payload: bytes) -> tuple[Any, ...] | None:
    """An Order Accepted without appendage as ``(user_ref_num, cl_ord_id, symbol, side,
    quantity, price, time_in_force, order_reference_number, dead)`` (side and time in force
    as the codec's members; dead: Order State is ``D``), or None: let the codec decide."""
    if len(payload) != 64:
        return None
    fields = _ACCEPTED.unpack_from(payload, 9)
    num, side, qty, symbol, price, tif_display, ref, rest, cl_ord_id, alen = fields
    key = side + tif_display + rest
    codes = _ACCEPTED_CODES.get(key) or _accepted_codes(key)
    if codes is None or alen:
        return None
    try:
        # (Padding stripped from the bytes: the same text, a cheaper strip.)
        cl = cl_ord_id.rstrip(b" ").decode("ascii")
        sym = _SYMBOL_TEXT.get(symbol) or _symbol_text(symbol)
    except UnicodeDecodeError:
        return None
    return num, cl, sym, codes[0], qty, price, codes[1], ref, codes[2]


#: Symbols as read (8 bytes, padded) -> their text, and text -> the bytes Enter Order
#: carries: an account trades a few symbols over and over, so each is decoded (or encoded)
#: once. Bounded: emptied when full (a cache, not a record).
_SYMBOL_TEXT: dict[bytes, str] = {}
_SYMBOL_BYTES: dict[str, bytes] = {}
_SYMBOLS_KEPT: Final = 4096


def _symbol_text(raw: bytes) -> str:
    text = raw.rstrip(b" ").decode("ascii")  # UnicodeDecodeError: not kept
    if len(_SYMBOL_TEXT) >= _SYMBOLS_KEPT:
        _SYMBOL_TEXT.clear()
    _SYMBOL_TEXT[raw] = text
    return text


def _symbol_bytes(symbol: str) -> bytes | None:
    try:
        raw = symbol.encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        return None
    if len(raw) > 8:
        return None
    if len(_SYMBOL_BYTES) >= _SYMBOLS_KEPT:
        _SYMBOL_BYTES.clear()
    raw = _SYMBOL_BYTES[symbol] = raw.ljust(8)
    return raw


def pure_canceled_fields(payload: bytes) -> tuple[int, int] | None:
    """An Order Canceled as ``(user_ref_num, quantity)``, or None: let the codec decide."""
    if len(payload) != 18:
        return None
    num, qty, reason = _CANCELED.unpack_from(payload, 9)
    return (num, qty) if reason in _C_REASON else None


def pure_executed_fields(payload: bytes) -> tuple[int, int, int, Any, int] | None:
    """An Order Executed without appendage as ``(user_ref_num, quantity, price,
    liquidity_flag, match_number)``, or None: let the codec decide."""
    if len(payload) != 36:
        return None
    num, qty, price, flag, match, alen = _EXECUTED.unpack_from(payload, 9)
    member = _E_LIQUIDITY.get(flag)
    if member is None or alen:
        return None
    return num, qty, price, member, match


def enter_order_codes(
    side: Any, time_in_force: Any, display: Any, capacity: Any, intermarket_sweep: Any,
    cross_type: Any,
) -> tuple[bytes, bytes] | None:  # fmt: skip
    """Enter Order's code bytes for these members (side; the other five in wire order), or
    None if one is not allowed in Enter Order (the codec says which)."""
    try:
        return _raw(_E_SIDE, side), b"".join(
            (
                _raw(_E_TIF, time_in_force),
                _raw(_E_DISPLAY, display),
                _raw(_E_CAPACITY, capacity),
                _raw(_E_ISE, intermarket_sweep),
                _raw(_E_CROSS, cross_type),
            )
        )
    except KeyError:
        return None


def _raw(codes: dict[bytes, Any], member: Any) -> bytes:
    for raw, known in codes.items():
        if known is member:
            return raw
    raise KeyError(member)


def encode_enter_order(
    user_ref_num: int, codes: tuple[bytes, bytes], quantity: int, symbol: str, price: int,
    cl_ord_id: str,
) -> bytes | None:  # fmt: skip
    """``EnterOrder(user_ref_num, ..., cl_ord_id).encode()`` without appendage, the codes from
    `enter_order_codes`; None if a value does not fit (the codec raises the error)."""
    try:
        sym = _SYMBOL_BYTES.get(symbol) or _symbol_bytes(symbol)
        cl = cl_ord_id.encode("ascii")
        if sym is None or len(cl) > 14:
            return None
        return _ENTER.pack(
            b"O", user_ref_num, codes[0], quantity, sym, price, codes[1], cl.ljust(14), 0
        )
    except (struct.error, UnicodeEncodeError, AttributeError, TypeError):
        return None


# The readers the order client calls: the compiled twins when the extension is in use (the
# Order Accepted reader ~580 -> ~150 ns), which hand anything not cached yet to the pure
# ones above (the reference; tests/test_ouch_fast.py holds them equal).
accepted_fields = pure_accepted_fields
canceled_fields = pure_canceled_fields
executed_fields = pure_executed_fields
if ACCELERATED:
    from .._speedups._core import accepted_fields, canceled_fields, executed_fields, orders_tables

    orders_tables(
        pure_accepted_fields, pure_canceled_fields, pure_executed_fields, _ACCEPTED_CODES,
        _SYMBOL_TEXT, _C_REASON, _E_LIQUIDITY,
    )  # fmt: skip
