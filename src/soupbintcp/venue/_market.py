"""Market data out of the book: the engine's events as ITCH 5.0 messages, and back.

`MarketData` encodes (with the ``itch`` extra's ``itchfeed``); `ItchBook` rebuilds every
displayed order from an ITCH feed alone, which is how the tests check that the feed tells
the truth about the venue's book.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

from ..itch import ItchEncoder
from ._engine import MarketEvent

__all__ = ["ItchBook", "MarketData"]


class MarketData:
    """Turns `MarketEvent` tuples into ITCH payloads; symbols get Stock Locate 1, 2, ..."""

    def __init__(self, symbols: Iterable[str]) -> None:
        self.locates = {s: n for n, s in enumerate(symbols, start=1)}
        self._encoder = encoder = ItchEncoder()
        self._by_letter: dict[str, Callable[..., bytes]] = {
            "A": encoder.add_order,
            "E": encoder.order_executed,
            "X": encoder.order_cancel,
            "D": encoder.order_delete,
            "U": encoder.order_replace,
        }

    def directory(self, timestamp: int) -> list[bytes]:
        """A Stock Directory message per symbol (sent after the start-of-day events)."""
        encode = self._encoder.stock_directory
        return [encode(timestamp, locate, s) for s, locate in self.locates.items()]

    def encode(self, events: Iterable[MarketEvent]) -> list[bytes]:
        """The ITCH payloads of ``events``, in order."""
        out = []
        for event in events:
            letter, timestamp, symbol = event[0], event[1], event[2]
            if letter == "S":
                out.append(self._encoder.system_event(timestamp, event[3]))
                if event[3] == "Q":  # market hours begin: the directory first
                    out.extend(self.directory(timestamp))
            elif letter == "A":
                _, _, _, ref, side, shares, price = event
                out.append(
                    self._encoder.add_order(
                        timestamp, self.locates[symbol], ref, side, shares, symbol, price
                    )
                )
            elif letter == "P":
                _, _, _, side, shares, price, match = event
                out.append(
                    self._encoder.trade(
                        timestamp, self.locates[symbol], side, shares, symbol, price, match
                    )
                )
            else:
                out.append(self._by_letter[letter](timestamp, self.locates[symbol], *event[3:]))
        return out


_HEAD = struct.Struct(">cHH6x")


class ItchBook:
    """Every displayed order known from an ITCH 5.0 feed, by Order Reference Number.

    Feed it payloads in sequence order (`apply`); `depth(symbol)` then gives what the feed
    says rests on the book. Hidden orders never appear, by design.
    """

    def __init__(self) -> None:
        self.symbols: dict[int, str] = {}  # Stock Locate -> symbol (from Stock Directory)
        #: ref -> [locate, side "B"/"S", shares, price]
        self.orders: dict[int, list[Any]] = {}
        self.trades = 0  # executions seen (Order Executed and Trade)
        self.messages = 0

    def apply(self, payload: bytes) -> None:
        """Apply one ITCH message (in sequence order)."""
        self.messages += 1
        letter = payload[:1]
        if letter == b"A" or letter == b"F":
            ref, side, shares, _, price = struct.unpack_from(">QcI8sI", payload, 11)
            locate = _HEAD.unpack_from(payload)[1]
            self.orders[ref] = [locate, side.decode(), shares, price]
        elif letter == b"E" or letter == b"C":
            ref, shares = struct.unpack_from(">QI", payload, 11)
            self._take(ref, shares)
            self.trades += 1
        elif letter == b"X":
            ref, shares = struct.unpack_from(">QI", payload, 11)
            self._take(ref, shares)
        elif letter == b"D":
            (ref,) = struct.unpack_from(">Q", payload, 11)
            del self.orders[ref]
        elif letter == b"U":
            ref, new_ref, shares, price = struct.unpack_from(">QQII", payload, 11)
            old = self.orders.pop(ref)
            self.orders[new_ref] = [old[0], old[1], shares, price]
        elif letter == b"P":
            self.trades += 1
        elif letter == b"R":
            locate = _HEAD.unpack_from(payload)[1]
            self.symbols[locate] = payload[11:19].decode("ascii").rstrip(" ")

    def _take(self, ref: int, shares: int) -> None:
        order = self.orders[ref]
        order[2] -= shares
        if order[2] <= 0:
            del self.orders[ref]

    def depth(self, symbol: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids, asks) as [(price, shares)] per level, best first."""
        locates = [n for n, s in self.symbols.items() if s == symbol]
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        for locate, side, shares, price in self.orders.values():
            if locates and locate == locates[0]:
                levels = bids if side == "B" else asks
                levels[price] = levels.get(price, 0) + shares
        return (
            sorted(bids.items(), reverse=True),
            sorted(asks.items()),
        )
