"""What the order client sends, and how the answers move its `OrderBook`.

The bridge between the OUCH 5.0 messages (`soupbintcp.ouch`, the project's codec) and the
sans-IO book, and the event that tells the application one outbound message
(`OrderEvent`): build an inbound message, record one in the book (`record_inbound`, also used
to re-read the send journal after a restart), and apply one outbound payload
(`apply_outbound`, which returns the decoded message for the application; `apply_answer`,
which does not decode the common answers into message objects at all).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import soupbintcp.ouch as ouch

from ..ouch._fast import accepted_fields, canceled_fields, executed_fields
from ._book import Answer, OrderBook, Request

__all__ = ["FAST_ANSWERS", "OrderEvent", "apply_answer", "apply_outbound", "record_inbound"]


class OrderEvent:
    """One outbound message, told to the application once: its sequence number, the
    payload, its decoded message (None if it is not OUCH 5.0) and the requests it settled
    (with their orders). The message is decoded when first asked for: the client's book
    reads the common answers without building message objects (one event per message is
    on the hot path)."""

    __slots__ = ("_message", "answers", "payload", "sequence")

    def __init__(self, sequence: int, payload: bytes, answers: tuple[Answer, ...]) -> None:
        self.sequence = sequence
        self.payload = payload
        self.answers = answers
        self._message: ouch.Message | bool | None = False  # False: not decoded yet

    @property
    def message(self) -> ouch.Message | None:
        """The payload decoded (`soupbintcp.ouch.decode_outbound`), or None if it is not an
        OUCH 5.0 message (the book counted it in `OrderBook.malformed`)."""
        message = self._message
        if message is False:
            try:
                message = ouch.decode_outbound(self.payload)
            except ouch.OuchError:
                message = None
            self._message = message
        return message  # type: ignore[return-value]

    @property
    def type(self) -> str:
        """The message's type letter (outbound meanings: `A` Accepted, `E` Executed, ...)."""
        return chr(self.payload[0]) if self.payload else ""

    def __repr__(self) -> str:
        return f"OrderEvent({self.sequence}, {self.payload!r}, answers={self.answers!r})"


def record_inbound(book: OrderBook, payload: bytes) -> Request:
    """Record the inbound message `payload` (as sent) in `book`."""
    msg = ouch.decode_inbound(payload)
    if isinstance(msg, ouch.EnterOrder):
        return book.sent_enter(
            payload, msg.user_ref_num, msg.cl_ord_id, msg.symbol, msg.side, msg.quantity,
            msg.price, msg.time_in_force,
        )  # fmt: skip
    if isinstance(msg, ouch.ReplaceOrderRequest):
        return book.sent_replace(
            payload, msg.orig_user_ref_num, msg.user_ref_num, msg.cl_ord_id, msg.quantity,
            msg.price, msg.time_in_force,
        )  # fmt: skip
    if isinstance(msg, ouch.CancelOrderRequest):
        return book.sent_cancel(payload, msg.user_ref_num, msg.quantity)
    if isinstance(msg, ouch.ModifyOrderRequest):
        return book.sent_modify(payload, msg.user_ref_num, msg.side, msg.quantity)
    return book.sent_query(payload)


def _accepted(book: OrderBook, m: Any) -> list[Answer]:
    return book.on_accepted(
        m.user_ref_num, m.cl_ord_id, m.symbol, m.side, m.quantity, m.price, m.time_in_force,
        m.order_reference_number, m.order_state == ouch.OrderState.DEAD,
    )  # fmt: skip


def _replaced(book: OrderBook, m: Any) -> list[Answer]:
    return book.on_replaced(
        m.orig_user_ref_num, m.user_ref_num, m.cl_ord_id, m.symbol, m.side, m.quantity,
        m.price, m.time_in_force, m.order_reference_number, m.order_state == ouch.OrderState.DEAD,
    )  # fmt: skip


_APPLY: dict[type[ouch.Message], Callable[[OrderBook, Any], list[Answer]]] = {
    ouch.OrderAccepted: _accepted,
    ouch.OrderReplaced: _replaced,
    ouch.OrderCanceled: lambda b, m: b.on_canceled(m.user_ref_num, m.quantity),
    ouch.AiqCanceled: lambda b, m: b.on_canceled(m.user_ref_num, m.decrement_shares),
    ouch.OrderExecuted: lambda b, m: b.on_executed(
        m.user_ref_num, m.quantity, m.price, m.liquidity_flag, m.match_number
    ),
    ouch.BrokenTrade: lambda b, m: b.on_broken_trade(m.user_ref_num, m.match_number),
    ouch.Rejected: lambda b, m: b.on_rejected(m.user_ref_num, int(m.reason)),
    ouch.CancelPending: lambda b, m: b.on_cancel_pending(m.user_ref_num),
    ouch.CancelReject: lambda b, m: b.on_cancel_reject(m.user_ref_num),
    ouch.OrderPriorityUpdate: lambda b, m: b.on_priority_update(
        m.user_ref_num, m.price, m.order_reference_number
    ),
    ouch.OrderModified: lambda b, m: b.on_modified(m.user_ref_num, m.side, m.quantity),
    ouch.AccountQueryResponse: lambda b, m: b.on_account_query_response(m.next_user_ref_num),
    ouch.SystemEvent: lambda b, m: b.on_system_event(m.event_code),
}


def apply_outbound(book: OrderBook, payload: bytes) -> tuple[ouch.Message | None, list[Answer]]:
    """Apply one outbound message to `book`: the message decoded (None if it is not OUCH 5.0:
    counted in `book.malformed`, never fatal) and the requests it settles."""
    try:
        msg = ouch.decode_outbound(payload)
    except ouch.OuchError:
        book.malformed += 1
        return None, []
    apply = _APPLY.get(type(msg))
    return msg, (apply(book, msg) if apply is not None else [])  # Restated: nothing tracked


#: Type byte -> (fast reader, the book's method): the answers nearly every order gets. The
#: reader checks the message as the codec would and gives None for anything it leaves to it.
FAST_ANSWERS: dict[bytes, tuple[Callable[[bytes], Any], Callable[..., list[Answer]]]] = {
    b"A": (accepted_fields, OrderBook.on_accepted),
    b"C": (canceled_fields, OrderBook.on_canceled),
    b"E": (executed_fields, OrderBook.on_executed),
}


def apply_answer(book: OrderBook, payload: bytes) -> list[Answer]:
    """As `apply_outbound`, without the decoded message: Order Accepted, Canceled and
    Executed (without appendage) are read as the fields the book needs, not decoded into
    message objects (the order client's hot path; `OrderEvent.message` decodes on demand)."""
    fast = FAST_ANSWERS.get(payload[:1])
    if fast is not None:
        fields = fast[0](payload)
        if fields is not None:
            return fast[1](book, *fields)
    return apply_outbound(book, payload)[1]
