"""What the order client sends, and how the answers move its `OrderBook`.

The bridge between the OUCH 5.0 messages (`soupbintcp.ouch`) and the sans-IO book: build an
inbound payload, record it in the book (`record_inbound`, also used to re-read the send
journal after a restart), and apply one outbound payload (`apply_outbound`).
"""

from __future__ import annotations

import struct

from ._book import Answer, OrderBook, Request

__all__ = [
    "apply_outbound",
    "encode_cancel",
    "encode_enter",
    "encode_modify",
    "encode_query",
    "encode_replace",
    "record_inbound",
]

_ENTER = struct.Struct(">cIcI8sQccccc14sH")
_REPLACE = struct.Struct(">cIIIQcc c14sH".replace(" ", ""))
_CANCEL = struct.Struct(">cII")
_MODIFY = struct.Struct(">cIcI")
_U32 = struct.Struct(">I")


def _alpha(value: str, width: int) -> bytes:
    return value.encode("ascii").ljust(width, b" ")


def encode_enter(
    user_ref_num: int,
    side: str,
    quantity: int,
    symbol: str,
    price: int,
    time_in_force: str = "0",
    display: str = "Y",
    capacity: str = "A",
    intermarket_sweep: str = "N",
    cross_type: str = "N",
    cl_ord_id: str = "",
) -> bytes:
    return _ENTER.pack(
        b"O", user_ref_num, side.encode(), quantity, _alpha(symbol, 8), price,
        time_in_force.encode(), display.encode(), capacity.encode(),
        intermarket_sweep.encode(), cross_type.encode(), _alpha(cl_ord_id, 14), 0,
    )  # fmt: skip


def encode_replace(
    orig_user_ref_num: int,
    user_ref_num: int,
    quantity: int,
    price: int,
    time_in_force: str = "0",
    display: str = "Y",
    intermarket_sweep: str = "N",
    cl_ord_id: str = "",
) -> bytes:
    return _REPLACE.pack(
        b"U", orig_user_ref_num, user_ref_num, quantity, price, time_in_force.encode(),
        display.encode(), intermarket_sweep.encode(), _alpha(cl_ord_id, 14), 0,
    )  # fmt: skip


def encode_cancel(user_ref_num: int, quantity: int = 0) -> bytes:
    return _CANCEL.pack(b"X", user_ref_num, quantity)


def encode_modify(user_ref_num: int, side: str, quantity: int) -> bytes:
    return _MODIFY.pack(b"M", user_ref_num, side.encode(), quantity)


def encode_query() -> bytes:
    return b"Q"


def _text(raw: bytes) -> str:
    return raw.decode("ascii").rstrip(" ")


def record_inbound(book: OrderBook, payload: bytes) -> Request:
    """Record the inbound message `payload` (as sent) in `book`."""
    kind = payload[:1]
    if kind == b"O":
        _, num, side, qty, symbol, price, tif, _d, _c, _i, _x, clid, _ = _ENTER.unpack_from(payload)
        return book.sent_enter(
            payload, num, _text(clid), _text(symbol), side.decode(), qty, price, tif.decode()
        )
    if kind == b"U":
        _, orig, num, qty, price, tif, _d, _i, clid, _ = _REPLACE.unpack_from(payload)
        return book.sent_replace(payload, orig, num, _text(clid), qty, price, tif.decode())
    if kind == b"X":
        _, num, qty = _CANCEL.unpack_from(payload)
        return book.sent_cancel(payload, num, qty)
    if kind == b"M":
        _, num, side, qty = _MODIFY.unpack_from(payload)
        return book.sent_modify(payload, num, side.decode(), qty)
    if kind == b"Q":
        return book.sent_query(payload)
    raise ValueError(f"not an inbound OUCH message: {payload[:1]!r}")


def _u32(payload: bytes, offset: int) -> int:
    return int(_U32.unpack_from(payload, offset)[0])


def _u64(payload: bytes, offset: int) -> int:
    return int.from_bytes(payload[offset : offset + 8], "big")


def apply_outbound(book: OrderBook, payload: bytes) -> list[Answer]:
    """Apply one outbound message to `book`; the requests it settles."""
    kind = payload[:1]
    p = payload
    if kind == b"A":
        return book.on_accepted(
            _u32(p, 9), _text(p[48:62]), _text(p[18:26]), chr(p[13]), _u32(p, 14), _u64(p, 26),
            chr(p[34]), _u64(p, 36), p[47:48] == b"D",
        )  # fmt: skip
    if kind == b"U":
        return book.on_replaced(
            _u32(p, 9), _u32(p, 13), _text(p[52:66]), _text(p[22:30]), chr(p[17]), _u32(p, 18),
            _u64(p, 30), chr(p[38]), _u64(p, 40), p[51:52] == b"D",
        )  # fmt: skip
    if kind == b"C" or kind == b"D":
        return book.on_canceled(_u32(p, 9), _u32(p, 13))
    if kind == b"E":
        return book.on_executed(_u32(p, 9), _u32(p, 13), _u64(p, 17), chr(p[25]), _u64(p, 26))
    if kind == b"B":
        return book.on_broken_trade(_u32(p, 9), _u64(p, 13))
    if kind == b"J":
        return book.on_rejected(_u32(p, 9), int.from_bytes(p[13:15], "big"))
    if kind == b"P":
        return book.on_cancel_pending(_u32(p, 9))
    if kind == b"I":
        return book.on_cancel_reject(_u32(p, 9))
    if kind == b"T":
        return book.on_priority_update(_u32(p, 9), _u64(p, 13), _u64(p, 22))
    if kind == b"M":
        return book.on_modified(_u32(p, 9), chr(p[13]), _u32(p, 14))
    if kind == b"Q":
        return book.on_account_query_response(_u32(p, 9))
    if kind == b"S":
        return book.on_system_event(chr(p[9]))
    return []  # Order Restated and anything newer: no change to what the book tracks
