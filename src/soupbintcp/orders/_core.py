"""What the asyncio and blocking order clients share: the book, the UserRefNums, the send
queue, the write-ahead journal and the recovery procedure, with no I/O of its own.

A driver calls `logged_in` after every login (first, reconnect, failover), writes what it
returns, feeds every run of outbound messages to `received`, and writes what `take` hands
out when the throttle allows (`delay`). The recovery (OUCH 5.0 §5.1):

1. After the login, the stream resumes where the journal ends; an Account Query goes out at
   once. Its response is appended to the account's stream after everything the venue had
   done, so when it comes back the client holds the whole outbound stream: every order's
   state is rebuilt.
2. Requests the venue ignores without a word are settled (`OrderBook.settle_superfluous`).
3. Every request that was sent and has no answer is re-sent, unchanged and in its original
   order; new requests follow. A repeat that did arrive the first time is ignored by the
   venue (UserRefNums only go up), so nothing is entered twice.

UserRefNums: above the last one sent (the journal) and at least the venue's NextUserRefNum
(the Account Query Response), strictly increasing; a message is in the journal (fsync'd)
before it leaves, so a process killed at any moment never sends a used number after a
restart. Numbers allocated but never sent may be skipped: the venue allows gaps.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Any

import soupbintcp.ouch as ouch

from ..ouch._fast import encode_enter_order
from ._book import Answer, OrderBook, Request, RequestKind
from ._letters import DISPLAY, ENTER_LETTERS, ISO, SIDE, TIF, enter_letters, member
from ._messages import FAST_ANSWERS, OrderEvent, apply_answer, apply_outbound, record_inbound
from ._state import StateDir
from ._throttle import Throttle

__all__ = ["KillSwitchEngaged", "OrderCore", "OrderEvent", "Phase"]

_QUERY = ouch.AccountQueryRequest().encode()
#: UserRefNum is a u32 (§1.2).
_MAX_USER_REF_NUM = 0xFFFFFFFF


class KillSwitchEngaged(RuntimeError):
    """New orders are refused: the kill switch cancelled everything (`release_kill_switch`)."""


class Phase(enum.Enum):
    #: Not logged in: requests wait in the queue.
    DISCONNECTED = "disconnected"
    #: Logged in, catching up with the stream (the Account Query not answered yet).
    RECOVERING = "recovering"
    #: Caught up: re-sends done or under way, new requests flow.
    READY = "ready"


_READY = Phase.READY  # a global: no trip through the enum metaclass's hook


class OrderCore:
    """The sans-IO heart of `OrderClient` and `BlockingOrderClient`."""

    def __init__(
        self,
        state: StateDir | None,
        rate: float | None = None,
        *,
        cancel_on_disconnect: bool = False,
        now: float = 0.0,
    ) -> None:
        self.book = OrderBook()
        self.state = state
        self.throttle = Throttle(rate, now=now)
        #: No messages-per-second limit: `take` hands out everything waiting (when ready).
        self.unlimited = rate is None
        self.cancel_on_disconnect = cancel_on_disconnect
        self.phase = Phase.DISCONNECTED
        self.kill_switch = False
        #: Outbound messages applied (the stream's last sequence number).
        self.received = 0
        #: Logins so far (1 after the first).
        self.logins = 0
        #: Requests re-sent by recoveries, and settled by them without a re-send.
        self.resent = 0
        self._queue: deque[Request] = deque()
        self._resend: deque[Request] = deque()
        self._barrier: Request | None = None
        #: Answers of `sync()` queries a login superseded, for the driver to tell.
        self.superseded: list[Answer] = []
        self._next = 1
        self._disconnected_while_live = False
        if state is not None:
            self._restore(state)

    def _restore(self, state: StateDir) -> None:
        """Rebuild the book from the journals, silently: it was told in an earlier life."""
        for payload in state.sent_payloads():
            record_inbound(self.book, payload).sent = True
        for payload in state.stream_payloads():
            apply_outbound(self.book, payload)
        self.received = state.received

    # --- the application's requests -----------------------------------------------------------

    def _number(self) -> int:
        num = self._next
        if num <= self.book.highest_user_ref_num:
            num = self.book.highest_user_ref_num + 1
        if num > _MAX_USER_REF_NUM:
            raise OverflowError("UserRefNums are used up for the day")
        self._next = num + 1
        return num

    def _check_open(self) -> None:
        if self.kill_switch:
            raise KillSwitchEngaged("the kill switch is engaged: no new orders")

    def _queued(self, request: Request) -> Request:
        self._queue.append(request)
        return request

    def enter(
        self,
        symbol: str,
        side: str,
        quantity: int,
        price: int,
        *,
        time_in_force: str = "0",
        display: str = "Y",
        capacity: str = "A",
        intermarket_sweep: str = "N",
        cross_type: str = "N",
        cl_ord_id: str = "",
    ) -> Request:
        """Enter an order: the request queued, its order in the book."""
        request = self.enter_request(
            symbol, side, quantity, price, time_in_force, display, capacity, intermarket_sweep,
            cross_type, cl_ord_id,
        )  # fmt: skip
        self.book.entered(
            request.user_ref_num, cl_ord_id, symbol, side, quantity, price, time_in_force
        )
        return request

    def enter_request(
        self,
        symbol: str,
        side: str,
        quantity: int,
        price: int,
        time_in_force: str,
        display: str,
        capacity: str,
        intermarket_sweep: str,
        cross_type: str,
        cl_ord_id: str,
    ) -> Request:
        """`enter` without recording the order (`OrderBook.entered`): the driver records it
        before it next reads the stream, once the message is on its way (the asyncio client:
        off the round trip's path)."""
        if self.kill_switch:
            self._check_open()  # raises
        # The letters are checked before a number is spent on a message that cannot go; a
        # combination once checked is looked up in one step.
        letters = (side, time_in_force, display, capacity, intermarket_sweep, cross_type)
        members = ENTER_LETTERS.get(letters) or enter_letters(letters)
        num = self._next  # `_number`, written out: once per order
        if num <= self.book.highest_user_ref_num:
            num = self.book.highest_user_ref_num + 1
        if num > _MAX_USER_REF_NUM:
            raise OverflowError("UserRefNums are used up for the day")
        self._next = num + 1
        codes = members[6]
        payload = (
            encode_enter_order(num, codes, quantity, symbol, price, cl_ord_id) if codes else None
        )
        if payload is None:  # a value the fast path leaves to the codec: it raises, or builds
            s, t, d, c, i, x, _ = members
            message = ouch.EnterOrder(num, s, quantity, symbol, price, t, d, c, i, x, cl_ord_id)
            payload = message.encode()
        request = self.book.enter_request(payload, num)
        self._queue.append(request)
        return request

    def current(self, user_ref_num: int) -> int:
        """The number an order lives under now: the last replacement of its chain."""
        order = self.book.orders.get(user_ref_num)
        while order is not None and order.replaced_by is not None:
            user_ref_num = order.replaced_by
            order = self.book.orders.get(user_ref_num)
        return user_ref_num

    def replace(
        self,
        user_ref_num: int,
        quantity: int,
        price: int,
        *,
        time_in_force: str = "0",
        display: str = "Y",
        intermarket_sweep: str = "N",
        cl_ord_id: str = "",
    ) -> Request:
        """`quantity` as the spec means it (§5.3): shares the whole chain may be liable for,
        executed ones included."""
        self._check_open()
        orig = self.current(user_ref_num)
        num = self._number()
        payload = ouch.ReplaceOrderRequest(
            orig, num, quantity, price, member(TIF, time_in_force, "time_in_force"),
            member(DISPLAY, display, "display"),
            member(ISO, intermarket_sweep, "intermarket_sweep"), cl_ord_id,
        ).encode()  # fmt: skip
        return self._queued(
            self.book.sent_replace(payload, orig, num, cl_ord_id, quantity, price, time_in_force)
        )

    def cancel(self, user_ref_num: int, quantity: int = 0) -> Request:
        """`quantity`: the size to leave open (0 cancels everything open, §5.4)."""
        num = self.current(user_ref_num)
        payload = ouch.CancelOrderRequest(num, quantity).encode()
        return self._queued(self.book.sent_cancel(payload, num, quantity))

    def modify(self, user_ref_num: int, side: str, quantity: int) -> Request:
        num = self.current(user_ref_num)
        payload = ouch.ModifyOrderRequest(num, member(SIDE, side, "side"), quantity).encode()
        return self._queued(self.book.sent_modify(payload, num, side, quantity))

    def query(self) -> Request:
        """An Account Query: its answer comes after everything the venue did before it, so
        once it is answered the book holds all of that (`sync()` of the drivers)."""
        return self._queued(self.book.sent_query(_QUERY))

    def cancel_all(self) -> list[Request]:
        """The kill switch: cancel every order that is or may be on the book, and refuse new
        ones until `release_kill_switch`."""
        self.kill_switch = True
        live = [o.user_ref_num for o in self.book.live() if o.replaced_by is None]
        return [self.cancel(num) for num in live]

    def release_kill_switch(self) -> None:
        self.kill_switch = False

    # --- the driver's calls -------------------------------------------------------------------

    def logged_in(self, session_id: str) -> bytes:
        """A login was accepted: the Account Query to write at once (the recovery's barrier)."""
        if self.state is not None:
            self.state.bind(session_id)  # StateMismatch: the state is another day's
        if self.logins and self.cancel_on_disconnect:
            self._disconnected_while_live = True  # a reconnect: the link was lost
        self.logins += 1
        for request in self.book.unanswered():
            if request.kind is RequestKind.QUERY:  # a lost link's: this login's supersedes it
                answer = self.book.supersede(request)
                if answer is not None and request is not self._barrier:
                    self.superseded.append(answer)  # a `sync()`: its driver asks again
        self._resend.clear()
        self.phase = Phase.RECOVERING
        self._barrier = self.book.sent_query(_QUERY)
        self._barrier.sent = True
        return self._barrier.payload

    def disconnected(self) -> None:
        """The link is gone: requests wait (and are re-sent after the next login)."""
        self.phase = Phase.DISCONNECTED

    @property
    def idle(self) -> bool:
        """Whether every request has its answer and nothing waits to go."""
        return not self._queue and not self._resend and not self.book.has_unanswered

    def received_run(self, first_sequence: int, payloads: list[bytes]) -> list[OrderEvent]:
        """A run of outbound messages: journaled, applied, and told (each once)."""
        events: list[OrderEvent] = self.received_answers(first_sequence, payloads, True)
        return events

    def received_answers(
        self, first_sequence: int, payloads: list[bytes], events: bool = False
    ) -> list[Any]:
        """As `received_run` for a driver that tells nobody the messages themselves: only
        the answers (no `OrderEvent` per message). `events`: `received_run`'s result."""
        skip = self.received + 1 - first_sequence
        if skip > 0:  # already held (a resume that overlapped): never applied twice
            payloads = payloads[skip:]
            first_sequence += skip
        if not payloads:
            return []
        if self.state is not None:
            self.state.received_run(payloads)
        book = self.book
        fast_answers = FAST_ANSWERS
        out: list[Any] = []
        if events:
            for sequence, payload in enumerate(payloads, first_sequence):
                answers = apply_answer(book, payload)
                if answers and self._barrier is not None and self._barrier.answered:
                    answers = self._barrier_answered(answers)  # only ever settled by an answer
                out.append(OrderEvent(sequence, payload, tuple(answers)))
        else:
            for payload in payloads:
                # `apply_answer`, written out: the common answers read as fields, not decoded.
                fast = fast_answers.get(payload[:1])
                if fast is not None and (fields := fast[0](payload)) is not None:
                    answers = fast[1](book, *fields)
                else:
                    answers = apply_outbound(book, payload)[1]
                if answers:
                    if self._barrier is not None and self._barrier.answered:
                        answers = self._barrier_answered(answers)
                    out += answers
        self.received = first_sequence + len(payloads) - 1
        return out

    def _barrier_answered(self, answers: list[Answer]) -> list[Answer]:
        barrier, self._barrier = self._barrier, None
        # The client's own query: not the application's news.
        return [a for a in answers if a.request is not barrier] + self._caught_up()

    def _caught_up(self) -> list[Answer]:
        book = self.book
        answers = book.settle_superfluous()
        self.resent += len(answers)
        if book.next_user_ref_num is not None:
            self._next = max(self._next, book.next_user_ref_num)
        self._resend = deque(r for r in book.unanswered() if r.sent)
        self.resent += len(self._resend)
        self.phase = Phase.READY
        if self._disconnected_while_live:
            self._disconnected_while_live = False
            self.cancel_all()
        return answers

    @property
    def sendable(self) -> int:
        """Requests waiting to go (re-sends first)."""
        return len(self._resend) + len(self._queue) if self.phase is _READY else 0

    def delay(self, now: float) -> float:
        """Seconds until the throttle lets the next request go."""
        return self.throttle.delay(now)

    def take(self, now: float) -> list[bytes]:
        """The payloads to write now, in order: re-sends, then new requests, as many as the
        throttle allows. New ones are in the journal (one fdatasync) before this returns."""
        if self.phase is not _READY:
            return []
        queue = self._queue
        if len(queue) == 1 and not self._resend and self.unlimited:
            request = queue.popleft()  # one new request, no limit: a closed loop's case
            if request.answered:
                return []
            payloads = [request.payload]
            if self.state is not None:
                self.state.write_ahead(payloads)
            request.sent = True
            return payloads
        count = self.throttle.take(now, len(self._resend) + len(queue))
        out: list[bytes] = []
        resend = self._resend
        while count and resend:
            request = resend.popleft()
            count -= 1
            if not request.answered:
                out.append(request.payload)
        fresh: list[Request] = []
        while count and queue:
            request = queue.popleft()
            count -= 1
            if not request.answered:  # a cancel settled before it went needs no sending
                fresh.append(request)
        if fresh:
            payloads = [r.payload for r in fresh]
            if self.state is not None:
                self.state.write_ahead(payloads)
            for request in fresh:
                request.sent = True
            out += payloads
        return out
