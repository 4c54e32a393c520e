"""The requests in flight of one OUCH account and how an answer settles them: the part of the
order book (`_book.OrderBook`, which derives from this) that knows requests, not orders.

Every request sent (or to be sent) is kept until an answer settles it, in the order it was
made: a recovery re-sends exactly those (OUCH 5.0 §5.1). Each is named under the UserRefNums
an answer may carry (a Replace under two), so settling costs the same with ten thousand
requests in flight as with one. UserRefNums only go up (§5.2): the ledger refuses a used one.

Layer 4 (order client), but it imports nothing: it is the part both drivers share.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ._order import Answer, Order, Request, RequestKind

__all__ = ["Ledger"]

# The members as module names: `RequestKind.ENTER` goes through the enum metaclass's
# `__getattr__` hook (~75 ns); a global is a dictionary look-up (hot path: every answer).
_ENTER, _REPLACE = RequestKind.ENTER, RequestKind.REPLACE
#: `Answer((request, outcome, order))`: the named tuple's own `__new__` is a Python frame
#: (once per order); `tuple.__new__` builds the same Answer in C.
_new_answer: Callable[[tuple[Request, str, Order | None]], Answer] = partial(tuple.__new__, Answer)


class Ledger:
    """Requests without an answer, in the order they were made, and the numbers used."""

    def __init__(self) -> None:
        #: Every order of the account (`OrderBook` fills it; an answer names its order).
        self.orders: dict[int, Order] = {}
        #: Requests without an answer, in the order they were made.
        self._unanswered: dict[int, Request] = {}
        #: UserRefNum -> keys of the unanswered requests naming it (a Replace names two).
        self._naming: dict[int, list[int]] = {}
        self._next_key = 0
        #: Highest UserRefNum this book has seen used (sent or in the stream).
        self.highest_user_ref_num = 0

    # --- recording ----------------------------------------------------------------------------

    def _record(self, request: Request) -> Request:
        key = self._next_key
        self._next_key = key + 1
        self._unanswered[key] = request
        self._naming.setdefault(request.user_ref_num, []).append(key)
        if request.kind is _REPLACE:
            self._naming.setdefault(request.target, []).append(key)
        return request

    def enter_request(self, payload: bytes, user_ref_num: int) -> Request:
        """Record an Enter Order's request (its order: `OrderBook.entered`, which the asyncio
        client calls once the message is on its way: off the round trip's path)."""
        if user_ref_num <= self.highest_user_ref_num:
            self._use(user_ref_num)  # raises
        self.highest_user_ref_num = user_ref_num
        request = Request(_ENTER, user_ref_num, payload)
        key = self._next_key  # `_record`, written out: once per order
        self._next_key = key + 1
        self._unanswered[key] = request
        keys = self._naming.get(user_ref_num)
        if keys is None:  # the usual case: a new number (a Cancel may name any)
            self._naming[user_ref_num] = [key]
        else:
            keys.append(key)
        return request

    def _use(self, user_ref_num: int) -> None:
        if user_ref_num <= self.highest_user_ref_num:
            # The one rule that makes every re-send benign (§5.2): never a used number.
            raise ValueError(
                f"UserRefNum {user_ref_num} is not above {self.highest_user_ref_num}, the last used"
            )
        self.highest_user_ref_num = user_ref_num

    @property
    def has_unanswered(self) -> bool:
        return bool(self._unanswered)

    def unanswered(self) -> list[Request]:
        """Requests still waiting for an answer, in the order they were sent."""
        return list(self._unanswered.values())

    # --- settling -----------------------------------------------------------------------------

    def _keys(self, user_ref_num: int) -> list[int]:
        keys = self._naming.get(user_ref_num)
        return list(keys) if keys else []

    def _settle(self, key: int, request: Request, outcome: str) -> Answer:
        del self._unanswered[key]
        num = request.user_ref_num
        keys = self._naming.get(num)
        if keys is not None and key in keys:
            if len(keys) == 1:
                del self._naming[num]
            else:
                keys.remove(key)
        if request.kind is _REPLACE:  # the only kind named under two numbers
            self._unname(request.target, key)
        request.answered = True
        request.outcome = outcome
        return _new_answer((request, outcome, self.orders.get(num)))

    def _unname(self, num: int, key: int) -> None:
        keys = self._naming.get(num)
        if keys is not None and key in keys:
            keys.remove(key)
            if not keys:
                del self._naming[num]

    def _answer(self, kind: RequestKind, user_ref_num: int, outcome: str) -> list[Answer]:
        """Settle the first unanswered request of `kind` for `user_ref_num`."""
        keys = self._naming.get(user_ref_num)
        if keys:
            unanswered = self._unanswered
            if len(keys) == 1 and kind is not _REPLACE:
                # The usual case (one request in flight for the order), `_settle` written
                # out: a request of these kinds is named under its own number only.
                key = keys[0]
                request = unanswered.get(key)
                if (
                    request is not None
                    and request.kind is kind
                    and request.user_ref_num == user_ref_num
                ):
                    del unanswered[key]
                    del self._naming[user_ref_num]
                    request.answered = True
                    request.outcome = outcome
                    return [_new_answer((request, outcome, self.orders.get(user_ref_num)))]
                return []
            for key in keys:  # not changed before the return that follows a change
                request = unanswered.get(key)
                if (
                    request is not None
                    and request.kind is kind
                    and request.user_ref_num == user_ref_num
                ):
                    return [self._settle(key, request, outcome)]
        return []

    def supersede(self, request: Request) -> Answer | None:
        """Settle an unanswered request as superseded (an Account Query of a lost link)."""
        for key, held in list(self._unanswered.items()):
            if held is request:
                return self._settle(key, request, "superseded")
        return None
