"""The project's venue (`soupbintcp.venue`) as the chaos trials see it: mirrored OUCH ports,
its scripted faults, and its own records read back.

The records are the venue's: the account's outbound stream as the venue's server holds it
(every Accepted and Rejected names the UserRefNum it consumed and the ClOrdID), folded here
by a few lines independent of the client's `OrderBook`, and the engine's live orders, which
the fold must agree with.
"""

from __future__ import annotations

from soupbintcp import ouch
from soupbintcp.venue import Venue

SYMBOLS = ["AAPL", "MSFT"]


class VenueRecords:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.addresses = list(venue.addresses)

    @classmethod
    async def start(cls, mirrors: int = 2) -> VenueRecords:
        venue = Venue(SYMBOLS, listen=[("127.0.0.1", 0)] * mirrors, heartbeat_interval=0.2)
        await venue.start()
        return cls(venue)

    def _stream(self, user: str) -> list[ouch.Message]:
        assert self.venue.server is not None
        store = self.venue.server.stream(user).store
        return [ouch.decode_outbound(p) for p in store.read(1, store.count)]

    def consumed(self, user: str) -> list[tuple[int, str]]:
        return [
            (m.user_ref_num, m.cl_ord_id)
            for m in self._stream(user)
            if isinstance(m, ouch.OrderAccepted | ouch.Rejected)
        ]

    def _fold(self, user: str) -> tuple[dict[int, list[object]], dict[str, int]]:
        orders: dict[int, list[object]] = {}  # num -> [clid, open, executed, symbol, side]
        positions: dict[str, int] = {}
        for m in self._stream(user):
            if isinstance(m, ouch.OrderAccepted):
                dead = m.order_state == ouch.OrderState.DEAD
                orders[m.user_ref_num] = [
                    m.cl_ord_id,
                    0 if dead else m.quantity,
                    0,
                    m.symbol,
                    m.side,
                ]
            elif isinstance(m, ouch.OrderExecuted):
                o = orders[m.user_ref_num]
                o[1] = int(o[1]) - m.quantity  # type: ignore[call-overload]
                o[2] = int(o[2]) + m.quantity  # type: ignore[call-overload]
                sign = 1 if o[4] == ouch.Side.BUY else -1
                positions[str(o[3])] = positions.get(str(o[3]), 0) + sign * m.quantity
            elif isinstance(m, ouch.OrderCanceled):
                o = orders[m.user_ref_num]
                o[1] = int(o[1]) - m.quantity  # type: ignore[call-overload]
            elif isinstance(m, ouch.OrderModified):
                orders[m.user_ref_num][1] = m.quantity
        return orders, positions

    def orders(self, user: str) -> dict[int, tuple[str, int, int]]:
        folded, _ = self._fold(user)
        out = {n: (str(o[0]), int(o[1]), int(o[2])) for n, o in folded.items()}  # type: ignore[call-overload]
        # The engine's own live orders agree with its stream.
        account = self.venue.engine.accounts.get(user)
        live = {n: o.open for n, o in account.orders.items()} if account is not None else {}
        assert live == {n: v[1] for n, v in out.items() if v[1]}, (live, out)
        return out

    def positions(self, user: str) -> dict[str, int]:
        return {s: p for s, p in self._fold(user)[1].items() if p}

    def reject_next(self, count: int) -> None:
        self.venue.reject_next(count)

    def ignored(self) -> int:
        return self.venue.engine.ignored

    def delay(self, milliseconds: float) -> None:
        self.venue.delay(milliseconds)

    async def close(self) -> None:
        await self.venue.close()
