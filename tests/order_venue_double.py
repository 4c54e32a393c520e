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
        self.reject_next = 0
        self.server: soupbintcp.Server | None = None

    def account(self, user: str) -> Account:
        return self.accounts.setdefault(user, Account())

    def _pub(self, user: str, data: bytes) -> None:
        assert self.server is not None
        self.server.publish(data, user=user)

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
            if self.reject_next:
                self.reject_next -= 1
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
            self._pub(user, _U.pack(b"U", 0, orig, num, old.side.encode(), new.open, old.symbol,
                                    price, tif, b"Y", self.orn, b"A", b"N", b"N", b"L", clid, 0))  # fmt: skip
            self._cross(new)
            if new.open:
                book.append(new)
        elif kind == b"X":
            _, num, qty = struct.unpack(">cII", data)
            order = acct.orders.get(num)
            if order is None or order.open <= qty:
                return
            self._cancel(order, qty, b"U")
        elif kind == b"M":
            _, num, side, qty = struct.unpack(">cIcI", data)
            order = acct.orders.get(num)
            if order is None or order.open == 0:
                return
            order.side = side.decode()
            order.open = min(order.open, qty)
            if order.open == 0:
                self.books[order.symbol].remove(order)
            self._pub(user, _M.pack(b"M", 0, num, side, order.open))
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
            if (rest.side == "B") == buy or rest.user == order.user:
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


async def start_double(*ports: int) -> tuple[VenueDouble, list[soupbintcp.Server]]:
    """One double served on several ports that share its state (mirrors, §5.7)."""
    venue = VenueDouble()
    servers = []
    stores: dict[str, soupbintcp.MemoryStore] = {}

    def store(user: str) -> soupbintcp.MemoryStore:
        return stores.setdefault(user, soupbintcp.MemoryStore(session_id="DAY1"))

    for port in ports or (0,):
        server = await soupbintcp.serve(
            ("127.0.0.1", port), user_store=store, session_id="DAY1",
            authenticate=lambda u, p, s, q: True, on_unsequenced=venue.on_unsequenced,
        )  # fmt: skip
        servers.append(server)
    venue.server = servers[0]
    return venue, servers
