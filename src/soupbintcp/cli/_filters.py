"""Finding messages: `--type`, `--symbol`, `--since` / `--until` for `tail`, `journal dump`
and `journal export`.

`--type A,E` keeps messages whose first byte (the ITCH and OUCH Message Type) is one of the
letters. `--symbol` keeps the messages of those symbols, including the ones that do not name
it: an ITCH message names its stock by Stock Locate (every message but System Event and the
MWCB ones carries it at offset 1), learnt from the Stock Directory or any message that also
carries the Stock field; an OUCH outbound message names its order by UserRefNum, learnt from
the Order Accepted (and Order Replaced) that carries the Symbol. `--since` / `--until` (time
of day, ITCH: the Timestamp at offset 5, nanoseconds since midnight) keep a window.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

import click

from ._common import F, UserError

__all__ = ["MessageFilter", "filter_options", "make_filter"]

#: ITCH 5.0: where each message that carries the Stock field (8 bytes) has it.
_ITCH_STOCK_AT: Final = {
    ord(t): at
    for t, at in {
        "R": 11, "H": 11, "Y": 11, "L": 15, "K": 11, "J": 11, "h": 11, "A": 24, "F": 24,
        "P": 24, "Q": 19, "I": 28, "N": 11, "O": 11,
    }.items()
}  # fmt: skip
#: ITCH 5.0 messages that name no stock (Stock Locate 0).
_ITCH_MARKET_WIDE: Final = frozenset(b"SVW")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$")


def _time_of_day(text: str | None) -> int | None:
    """HH:MM[:SS[.fraction]] as nanoseconds since midnight."""
    if text is None:
        return None
    m = _TIME.match(text)
    if not m or int(m[1]) > 23 or int(m[2]) > 59 or int(m[3] or 0) > 59:
        raise UserError(f"time of day {text!r}: give HH:MM, HH:MM:SS or HH:MM:SS.fraction")
    fraction = int((m[4] or "0").ljust(9, "0"))
    return ((int(m[1]) * 60 + int(m[2])) * 60 + int(m[3] or 0)) * 10**9 + fraction


class MessageFilter:
    """Whether a message is wanted; keeps the symbol bookkeeping across calls (feed it every
    message in order, wanted or not)."""

    def __init__(
        self,
        types: frozenset[int] | None,
        symbols: frozenset[str] | None,
        since_ns: int | None,
        until_ns: int | None,
        protocol: str,
    ) -> None:
        self.types = types
        self.symbols = {s.encode("ascii").ljust(8) for s in symbols} if symbols else None
        self.since = since_ns
        self.until = until_ns
        self.protocol = protocol
        self._locates: set[int] = set()  # ITCH Stock Locates of the wanted symbols
        self._orders: set[int] = set()  # OUCH UserRefNums of the wanted symbols
        if protocol == "ouch50" and symbols:
            from soupbintcp import ouch

            self._ouch = ouch

    def __call__(self, data: bytes) -> bool:
        if not data:
            return False
        if self.types is not None and data[0] not in self.types:
            if self.symbols:
                self._learn(data)  # an unwanted type may still name a stock
            return False
        if self.since is not None or self.until is not None:
            if self.protocol != "itch50" or len(data) < 11:
                return False
            at = int.from_bytes(data[5:11], "big")
            if (self.since is not None and at < self.since) or (
                self.until is not None and at >= self.until
            ):
                if self.symbols:
                    self._learn(data)
                return False
        if self.symbols:
            return self._learn(data)
        return True

    def _learn(self, data: bytes) -> bool:
        """Note what `data` says about symbols; whether it belongs to a wanted one."""
        symbols = self.symbols
        assert symbols is not None
        if self.protocol == "itch50":
            kind = data[0]
            if kind in _ITCH_MARKET_WIDE or len(data) < 3:
                return False
            locate = (data[1] << 8) | data[2]
            at = _ITCH_STOCK_AT.get(kind)
            if at is not None and len(data) >= at + 8:
                if data[at : at + 8] in symbols:
                    self._locates.add(locate)
                    return True
                self._locates.discard(locate)  # a locate reused for another stock
                return False
            return locate in self._locates
        try:
            message = self._ouch.decode_outbound(data)
        except self._ouch.OuchError:
            return False
        symbol = getattr(message, "symbol", None)
        ref = getattr(message, "user_ref_num", None)
        if symbol is not None and ref is not None:
            wanted = symbol.encode("ascii").ljust(8) in symbols
            if wanted:
                self._orders.add(ref)
            return wanted
        return ref in self._orders


def make_filter(
    types: str | None,
    symbols: str | None,
    since: str | None,
    until: str | None,
    protocol: str | None,
    decode: str = "none",
) -> Callable[[bytes], bool] | None:
    """The filter the options ask for, or None when they ask for none. The payloads are
    `protocol`'s, else what `--decode` says they are (ITCH 5.0 unless ouch50)."""
    protocol = protocol or ("ouch50" if decode == "ouch50" else "itch50")
    if not (types or symbols or since or until):
        return None
    letters = None
    if types:
        parts = [t.strip() for t in types.split(",") if t.strip()]
        if not parts or any(len(t) != 1 or not t.isascii() for t in parts):
            raise UserError(f"--type {types!r}: give message type letters, e.g. A,E or S")
        letters = frozenset(ord(t) for t in parts)
    wanted = None
    if symbols:
        names = [s.strip() for s in symbols.split(",") if s.strip()]
        if not names or any(len(s) > 8 or not s.isascii() for s in names):
            raise UserError(f"--symbol {symbols!r}: give symbols of up to 8 characters")
        wanted = frozenset(names)
    if (since or until) and protocol != "itch50":
        raise UserError("--since/--until read the ITCH 5.0 Timestamp: use them with itch50")
    start, end = _time_of_day(since), _time_of_day(until)
    return MessageFilter(letters, wanted, start, end, protocol)


def filter_options(func: F) -> F:
    """--type, --symbol, --since, --until and --protocol, for make_filter(**...)."""
    options: list[Callable[[Any], Any]] = [
        click.option("--type", "types", metavar="A,E,...",
                     help="Only these message types (the payload's first letter)."),
        click.option("--symbol", "symbols", metavar="SYM[,SYM...]",
                     help="Only these symbols' messages (ITCH: by Stock Locate; OUCH: by "
                     "UserRefNum, from Order Accepted)."),
        click.option("--since", metavar="HH:MM[:SS]",
                     help="ITCH: only messages at or after this time of day."),
        click.option("--until", metavar="HH:MM[:SS]",
                     help="ITCH: only messages before this time of day."),
        click.option("--protocol", type=click.Choice(["itch50", "ouch50"]),
                     help="What the payloads are, for --symbol and --since/--until "
                     "[default: ouch50 with --decode ouch50, else itch50]."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func
