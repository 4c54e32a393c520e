"""A minimal OUCH venue double for the order client's first end-to-end tests (a stepping stone
until the project's venue, `soupbintcp.venue`, serves them): per-user streams on the real
SoupBinTCP server, §5.1-5.2's UserRefNum rules, a crossing book per symbol, and a record of
what each account entered. Outbound messages are laid out by hand from the spec's tables.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import soupbintcp

_A = struct.Struct(">cQIcI8sQccQcccc14sH")
_U = struct.Struct(">cQIIcI8sQccQcccc14sH")
_C = struct.Struct(">cQIIc")
_E = struct.Struct(">cQIIQcQH")
_M = struct.Struct(">cQIcI")
_Q = struct.Struct(">cQI")
_J = struct.Struct(">cQIH14s")


@dataclass(eq=False)
class _Order:
    user: str
    num: int
    side: str
    symbol: bytes
    price: int
    open: int
    executed: int
    clid: bytes
    tif: bytes


@dataclass
class Account:
    last: int = 0
    entered: list[tuple[int, str]] = field(default_factory=list)
    duplicates: int = 0
    orders: dict[int, _Order] = field(default_factory=dict)


class VenueDouble:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.books: dict[bytes, list[_Order]] = {}
        self.match = 0
        self.orn = 0
        self.reject_next_count = 0
        self.servers: list[soupbintcp.Server] = []
        self.addresses: list[tuple[str, int]] = []

    def account(self, user: str) -> Account:
        return self.accounts.setdefault(user, Account())

    def _pub(self, user: str, data: bytes) -> None:
        # Every mirror publishes the same stream (§5.7): its own store, the same numbers.
        for server in self.servers:
            server.publish(data, user=user)

    # --- what the chaos trials ask (tests/order_chaos_support.ChaosVenue) ---

    def consumed(self, user: str) -> list[tuple[int, str]]:
        return list(self.account(user).entered)

    def orders(self, user: str) -> dict[int, tuple[str, int, int]]:
        return {
            n: (o.clid.decode().rstrip(), o.open, o.executed)
            for n, o in self.account(user).orders.items()
        }

    def positions(self, user: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.account(user).orders.values():
            sym = o.symbol.decode().rstrip()
            out[sym] = out.get(sym, 0) + (o.executed if o.side == "B" else -o.executed)
        return {s: p for s, p in out.items() if p}

    def reject_next(self, count: int) -> None:
        self.reject_next_count = count

    async def close(self) -> None:
        for server in self.servers:
            await server.close()

    def on_unsequenced(self, connection: soupbintcp.Connection, data: bytes) -> None:
        user = connection.username.lower()
        acct = self.account(user)
        kind = data[:1]
        if kind == b"O":
            _, num, side, qty, sym, price, tif, _d, _c, _i, _x, clid, _ = struct.unpack(
                ">cIcI8sQccccc14sH", data[:47]
            )
            if num <= acct.last:
                acct.duplicates += 1
                return
            acct.last = num
            acct.entered.append((num, clid.decode().rstrip()))
            if self.reject_next_count:
                self.reject_next_count -= 1
                self._pub(user, _J.pack(b"J", 0, num, 0x13, clid))
                return
            self.orn += 1
            order = _Order(user, num, side.decode(), sym, price, qty, 0, clid, tif)
            acct.orders[num] = order
            self._pub(user, _A.pack(b"A", 0, num, side, qty, sym, price, tif, b"Y", self.orn,
                                    b"A", b"N", b"N", b"L", clid, 0))  # fmt: skip
            self._cross(order)
            if order.open and tif == b"3":
                self._cancel(order, 0, b"I")
            elif order.open:
                self.books.setdefault(sym, []).append(order)
        elif kind == b"U":
            _, orig, num, qty, price, tif, _d, _i, clid, _ = struct.unpack(
                ">cIIIQccc14sH", data[:40]
            )
            old = acct.orders.get(orig)
            if old is None or old.open == 0 or num <= acct.last:
                acct.duplicates += 1
                return
            acct.last = num
            self.orn += 1
            book = self.books.get(old.symbol, [])
            if old in book:
                book.remove(old)
            new = _Order(user, num, old.side, old.symbol, price, max(0, qty - old.executed),
                         old.executed, clid, tif)  # fmt: skip
            old.open = 0
            acct.orders[num] = new
            side = old.side.encode()
            self._pub(user, _U.pack(b"U", 0, orig, num, side, new.open, old.symbol, price, tif,
                                    b"Y", self.orn, b"A", b"N", b"N", b"L", clid, 0))  # fmt: skip
            self._cross(new)
            if new.open:
                book.append(new)
        elif kind == b"X":
            _, num, qty = struct.unpack(">cII", data)
            target = acct.orders.get(num)
            if target is None or target.open <= qty:
                return
            self._cancel(target, qty, b"U")
        elif kind == b"M":
            _, num, side, qty = struct.unpack(">cIcI", data)
            target = acct.orders.get(num)
            if target is None or target.open == 0:
                return
            target.side = side.decode()
            target.open = min(target.open, qty)
            if target.open == 0:
                self.books[target.symbol].remove(target)
            self._pub(user, _M.pack(b"M", 0, num, side, target.open))
        elif kind == b"Q":
            self._pub(user, _Q.pack(b"Q", 0, acct.last + 1))

    def _cancel(self, order: _Order, target: int, reason: bytes) -> None:
        dec = order.open - target
        order.open = target
        if target == 0:
            book = self.books.get(order.symbol, [])
            if order in book:
                book.remove(order)
        self._pub(order.user, _C.pack(b"C", 0, order.num, dec, reason))

    def _cross(self, order: _Order) -> None:
        book = self.books.get(order.symbol, [])
        buy = order.side == "B"
        for rest in list(book):
            if order.open == 0:
                break
            if (rest.side == "B") == buy:
                continue
            if (order.price < rest.price) if buy else (order.price > rest.price):
                continue
            qty = min(order.open, rest.open)
            self.match += 1
            for o, flag in ((rest, b"A"), (order, b"R")):
                o.open -= qty
                o.executed += qty
                self._pub(o.user, _E.pack(b"E", 0, o.num, qty, rest.price, flag, self.match, 0))
            if rest.open == 0:
                book.remove(rest)


async def start_double(mirrors: int = 1) -> VenueDouble:
    """One double served by `mirrors` hosts that share its state (§5.7)."""
    venue = VenueDouble()
    for _ in range(mirrors):
        server = await soupbintcp.serve(
            ("127.0.0.1", 0), user_store=lambda user: soupbintcp.MemoryStore(session_id="DAY1"),
            session_id="DAY1", authenticate=lambda u, p, s, q: True,
            on_unsequenced=venue.on_unsequenced,
        )  # fmt: skip
        venue.servers.append(server)
        venue.addresses.append(server.address)
    return venue
