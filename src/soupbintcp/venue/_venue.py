"""`Venue`: a test exchange that takes OUCH 5.0 orders and publishes their ITCH 5.0 data.

Layer 4. One SoupBinTCP `Server` with per-user streams serves the accounts (one stream per
username, on every ``listen`` address: mirrored ports share it); a second serves the ITCH
feed from one shared store, which MoldUDP64 may also transmit. Each inbound message is
decoded, written to the input journal, applied to the `Engine`, and what it caused is
encoded and published at once, so an account hears its answers in the order of its
requests. Scripted faults for testing clients: `reject_next`, `delay`, `drop_after`,
`end_day`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any, Self

import soupbintcp.ouch as ouch

from .._server._connection import Connection
from .._server._events import ConnectionClosed, ServerEvent
from .._server._serve import serve
from .._server._server import Server
from ..moldudp64 import RequestServer, Transmitter, serve_requests, transmit
from ..store import Durability, FileStore, MemoryStore, MessageStore
from ._bots import BOT_PREFIX, Bots
from ._days import DayFiles, next_session_id
from ._engine import Engine
from ._inputs import encode_input, iterate, read_reject, reject_data
from ._market import MarketData
from ._outbound import Outbound

__all__ = ["Venue"]

log = logging.getLogger("soupbintcp.venue")
Address = tuple[str, int]
NS_PER_DAY = 86_400 * 10**9


def utc_clock() -> int:
    """Nanoseconds since midnight UTC (the reference leaves the zone open, §6 A14)."""
    return time.time_ns() % NS_PER_DAY


class Venue:
    """An exchange in a box. ``async with Venue(["AAPL", "MSFT"]) as venue: ...``

    ``listen``: OUCH addresses (port 0 picks one; several are mirrors of one another).
    ``itch_listen``: the ITCH feed's address. ``data``: a directory for the journals (None:
    in memory); the same day resumes unless ``new_day``. ``credentials``: {user: password}
    (None: any login is taken). ``cancel_on_disconnect``: an account's orders are cancelled
    when its last connection goes. ``bots``/``seed``: seeded market makers and takers.
    ``mold_group`` (and ``mold_request_listen``): also transmit the ITCH feed on MoldUDP64
    (``mold_interface``, ``mold_ttl``: 0 keeps it on this host).
    ``clock``: nanoseconds since midnight (UTC by default). ``durability``: of the outbound
    journals (the accounts' and the ITCH feed's): `Durability.TIMER` (the default) writes
    them every few milliseconds and sends nothing before it is written; the input journal is
    always written at once, so a restart can rebuild whatever a crash lost of the others.
    """

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        listen: Iterable[Address] = (("127.0.0.1", 0),),
        itch_listen: Address = ("127.0.0.1", 0),
        data: str | os.PathLike[str] | None = None,
        new_day: bool = False,
        credentials: Mapping[str, str] | None = None,
        cancel_on_disconnect: bool = False,
        bots: int = 0,
        seed: int = 0,
        mold_group: Address | None = None,
        mold_request_listen: Address | None = None,
        mold_interface: str | None = "127.0.0.1",
        mold_ttl: int = 0,
        clock: Any = utc_clock,
        heartbeat_interval: float = 1.0,
        durability: Durability = Durability.TIMER,
    ) -> None:
        self.symbols = [s.strip().upper() for s in symbols if s.strip()]
        self._listen = list(listen) or [("127.0.0.1", 0)]
        self._itch_listen = itch_listen
        self._files = DayFiles(data) if data is not None else None
        self._new_day = new_day
        self._credentials = dict(credentials) if credentials is not None else None
        self.cancel_on_disconnect = cancel_on_disconnect
        self._bot_count, self.seed = bots, seed
        self._mold = (mold_group, mold_request_listen, mold_interface, mold_ttl)
        self._clock = clock
        self._heartbeat = heartbeat_interval
        self._durability = durability
        self._now = 0
        self.engine = Engine(self.symbols, lambda: self._now)
        self.market_data = MarketData(self.symbols)
        self.session_id = ""
        self.server: Server | None = None
        self.itch_server: Server | None = None
        self._itch_store: MessageStore | None = None
        self._inputs: MessageStore | None = None
        self._transmitter: Transmitter | None = None
        self._requests: RequestServer | None = None
        self._bots: Any = None
        # scripted faults
        self._outbound = Outbound()  # holds the answers back for `delay`
        self._drop_after: dict[str, int] = {}
        self._received: dict[str, int] = {}
        self.malformed = 0
        self._pending_inputs: list[bytes] = []
        self._flush_scheduled = False

    # --- starting and stopping ---------------------------------------------------------------

    async def start(self) -> Self:
        """Open the journals (resuming the day), start the servers, the feed and the bots."""
        files = self._files
        resuming = False
        if files is not None:
            self.session_id, resuming = files.open_day(self._new_day)
            self._itch_store = FileStore(
                files.itch, session_id=self.session_id, durability=self._durability
            )
            self._inputs = FileStore(files.inputs, session_id=self.session_id)
        else:
            self.session_id = next_session_id(None)
            self._itch_store = MemoryStore(session_id=self.session_id)
            self._inputs = MemoryStore(session_id=self.session_id)
        authenticate = None if self._credentials is not None else (lambda *_: True)
        self.server = await serve(
            self._listen[0], user_store=self._user_store, session_id=self.session_id,
            credentials=self._credentials, authenticate=authenticate,
            on_unsequenced=self._on_unsequenced, on_event=self._on_event,
            heartbeat_interval=self._heartbeat,
        )  # fmt: skip
        self._outbound.server = self.server
        for address in self._listen[1:]:
            await self.server.listen(address)
        self.itch_server = await serve(
            self._itch_listen, store=self._itch_store, authenticate=lambda *_: True,
            heartbeat_interval=self._heartbeat,
        )  # fmt: skip
        if resuming and self._inputs.count:
            self._resume()
        else:
            self._act("S", "")
        group, request_listen, interface, ttl = self._mold
        if group is not None:
            self._transmitter = await transmit(
                self._itch_store, group, interface=interface, ttl=ttl, first=1
            )
            if request_listen is not None:
                self._requests = await serve_requests(self._itch_store, request_listen)
        if self._bot_count:
            self._bots = Bots(self, self._bot_count, self.seed)
            self._bots.start()
        log.info(
            "venue %s: OUCH on %s, ITCH on %s:%s, symbols %s",
            self.session_id,
            ", ".join(f"{h}:{p}" for h, p in self.addresses),
            *self.itch_address,
            ",".join(self.symbols),
        )
        return self

    async def close(self) -> None:
        """Stop the bots, publish what is pending, close the servers and the journals."""
        if self._bots is not None:
            self._bots.stop()
        if self._inputs is not None and not getattr(self._inputs, "closed", False):
            self._flush()
        self._outbound.close()
        for closable in (self._transmitter, self._requests):
            if closable is not None:
                await closable.close()
        for server in (self.server, self.itch_server):
            if server is not None:
                await server.close(timeout=1.0)
        for store in (self._itch_store, self._inputs):
            if store is not None:
                store.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def addresses(self) -> list[Address]:
        """The OUCH ports (mirrors of one another)."""
        assert self.server is not None
        return self.server.addresses

    @property
    def address(self) -> Address:
        """The first OUCH port."""
        return self.addresses[0]

    @property
    def itch_address(self) -> Address:
        """The ITCH feed's SoupBinTCP port."""
        assert self.itch_server is not None
        return self.itch_server.address

    @property
    def mold_request_address(self) -> Address | None:
        """The MoldUDP64 re-request server's address, if there is one."""
        return self._requests.address if self._requests is not None else None

    @property
    def itch_store(self) -> MessageStore:
        """The ITCH journal (the feed's `MessageStore`)."""
        assert self._itch_store is not None
        return self._itch_store

    # --- scripted faults -----------------------------------------------------------------------

    def reject_next(self, count: int, reason: ouch.RejectReason = ouch.RejectReason.OTHER) -> None:
        """Reject the next ``count`` Enter Orders and Replaces (of any account) with ``reason``."""
        self._act("R", "", reject_data(count, int(reason)))

    @property
    def delay_seconds(self) -> float:
        """How long each response is held (see `delay`)."""
        return self._outbound.delay_seconds

    @delay_seconds.setter
    def delay_seconds(self, seconds: float) -> None:
        self._outbound.delay_seconds = seconds

    def delay(self, milliseconds: float) -> None:
        """Hold every response this long before sending it (0: no delay); order is kept."""
        self.delay_seconds = max(0.0, milliseconds / 1000)

    def drop_after(self, account: str, count: int) -> None:
        """Close ``account``'s connection right after its ``count``-th next inbound message."""
        self._received[account.lower()] = 0
        self._drop_after[account.lower()] = count

    def end_day(self) -> None:
        """End of day: resting orders are cancelled, System Event E, no new orders."""
        self._act("E", "")

    def cancel_all(self, account: str) -> None:
        """Cancel every open order of ``account`` (what cancel on disconnect does)."""
        self._act("K", account.lower())

    # --- inbound ----------------------------------------------------------------------------------

    def submit(self, account: str, payload: bytes) -> None:
        """Apply one inbound OUCH payload from ``account`` as if it came over the wire."""
        try:
            message = ouch.decode_inbound(payload)
        except ouch.OuchError as exc:
            self.malformed += 1
            # A peer can send these as fast as it likes: the log says the first ten, then
            # one in a thousand with the count, never one line per message.
            if self.malformed <= 10 or self.malformed % 1000 == 0:
                log.warning(
                    "%s: malformed OUCH message ignored (%d so far): %s",
                    account, self.malformed, exc,
                )  # fmt: skip
            return
        self._now = self._clock()
        self._pending_inputs.append(encode_input("I", self._now, account, payload))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s -> %r", account, message)
        self.engine.handle(account, message)
        if not self._flush_scheduled:
            # What the messages of one read from the network cause is journaled and
            # published together at the end of this turn of the loop: one append per
            # journal and per account stream instead of one per message.
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _on_unsequenced(self, connection: Connection, data: bytes) -> None:
        account = connection.username.lower()
        self.submit(account, data)
        limit = self._drop_after.get(account)
        if limit is not None:
            self._received[account] += 1
            if self._received[account] >= limit:
                del self._drop_after[account]
                log.info("%s: dropping its connection after %d messages (fault)", account, limit)
                connection.close()

    def _on_event(self, event: ServerEvent) -> None:
        if not (self.cancel_on_disconnect and isinstance(event, ConnectionClosed) and event.user):
            return
        account = event.user.lower()
        assert self.server is not None
        for conn in self.server.connections:
            if conn.logged_in and not conn.closed and conn.username.lower() == account:
                return  # another connection (a mirror) still serves the account
        if self.engine.accounts.get(account) and self.engine.accounts[account].orders:
            self.cancel_all(account)

    def _act(self, kind: str, account: str, data: bytes = b"") -> None:
        self._now = self._clock()
        self._pending_inputs.append(encode_input(kind, self._now, account, data))
        self._apply(kind, account, data)
        self._flush()

    def _apply(self, kind: str, account: str, data: bytes) -> None:
        engine = self.engine
        if kind == "I":
            engine.handle(account, ouch.decode_inbound(data))
        elif kind == "S":
            engine.start_day()
        elif kind == "E":
            engine.end_day()
        elif kind == "K":
            engine.cancel_all(account)
        elif kind == "R":
            count, reason = read_reject(data)
            engine.reject_next = count
            engine.reject_reason = ouch.RejectReason(reason)

    def _resume(self) -> None:
        """Replay the input journal (same day) and append what the journals lack."""
        assert self._inputs is not None
        assert self.server is not None
        records = self._inputs.read(1, self._inputs.count)
        per_account: dict[str, list[bytes]] = {}
        market: list[bytes] = []
        for record in iterate(records):
            self._now = record.timestamp
            self._apply(record.kind, record.account, record.data)
            for account, message in self.engine.outbound:
                per_account.setdefault(account, []).append(message.encode())
            self.engine.outbound.clear()
            market.extend(self.market_data.encode(self.engine.market))
            self.engine.market.clear()
        for account, messages in per_account.items():
            if account.startswith(BOT_PREFIX):
                continue
            stream = self.server.stream(account)
            have = stream.store.count - 1  # the first is the System Event S of the factory
            if have < len(messages):
                self.server.publish_many(messages[have:], user=account)
        itch = self.itch_store
        if itch.count < len(market):
            assert self.itch_server is not None
            self.itch_server.publish_many(market[itch.count :])
        log.info("venue %s resumed: %d inputs replayed", self.session_id, len(records))

    # --- outbound ---------------------------------------------------------------------------------

    def _user_store(self, user: str) -> MessageStore:
        store: MessageStore
        if self._files is not None:
            path = self._files.account_path(user)
            store = FileStore(path, session_id=self.session_id, durability=self._durability)
        else:
            store = MemoryStore(session_id=self.session_id)
        if store.count == 0:  # a new stream starts with the day's System Event S
            start = ouch.SystemEvent(self._clock(), ouch.EventCode.START_OF_DAY)
            store.append(start.encode())
        return store

    def _flush(self) -> None:
        """Journal the inputs, then publish what they caused (never the other way round:
        nothing goes out that a restart could not rebuild)."""
        self._flush_scheduled = False
        if self._pending_inputs:
            assert self._inputs is not None
            self._inputs.append_many(self._pending_inputs)
            self._pending_inputs.clear()
        engine = self.engine
        if engine.outbound:
            out, engine.outbound = engine.outbound, []
            if log.isEnabledFor(logging.DEBUG):
                for account, message in out:
                    log.debug("%s <- %r", account, message)
            if len(out) == 1:
                account, message = out[0]
                if not account.startswith(BOT_PREFIX):
                    self._outbound.publish(account, [message.encode()])
            else:  # one append per account stream, in order within each
                per_account: dict[str, list[bytes]] = {}
                for account, message in out:
                    if not account.startswith(BOT_PREFIX):
                        per_account.setdefault(account, []).append(message.encode())
                for account, payloads in per_account.items():
                    self._outbound.publish(account, payloads)
        if engine.market:
            events, engine.market = engine.market, []
            assert self.itch_server is not None
            self.itch_server.publish_many(self.market_data.encode(events))
