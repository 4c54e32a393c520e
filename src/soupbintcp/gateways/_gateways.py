"""The two gateways: MoldUDP64 into a SoupBinTCP server, a SoupBinTCP journal onto MoldUDP64.

Layer 4 (gateways).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Self

from .._errors import LocalProtocolError, SessionEnded, SoupBinTCPError
from .._server._serve import serve
from .._server._server import Authenticate, Server
from ..moldudp64 import (
    AsyncListener,
    ListenerState,
    RequestServer,
    Transmitter,
    listen_async,
    serve_requests,
    transmit,
)
from ..store import MessageStore

__all__ = [
    "MoldGateway",
    "SoupToMold",
    "discover_session",
    "mold_to_soupbintcp",
    "soupbintcp_to_mold",
]

log = logging.getLogger("soupbintcp.gateways")

Address = tuple[str, int]


class MoldGateway:
    """A MoldUDP64 listener feeding a SoupBinTCP server's journal. `wait_closed()` returns
    once the multicast session has ended (the server then sends End of Session to its
    clients) or the listener failed (its error is raised)."""

    def __init__(self, listener: AsyncListener, server: Server, store: MessageStore) -> None:
        self.listener = listener
        self.server = server
        self.store = store
        self._task = asyncio.get_running_loop().create_task(self._feed())

    async def _feed(self) -> None:
        store = self.store
        server = self.server
        try:
            async for batch in self.listener.batches():
                for run in batch:
                    if run.first_sequence != store.count + 1:
                        raise LocalProtocolError(
                            f"the listener delivered message {run.first_sequence}, the "
                            f"journal expects {store.count + 1}"
                        )
                    server.publish_many(run.messages)
        finally:
            if self.listener.state is ListenerState.ENDED and not server.session_ended:
                await server.end_session()

    @property
    def address(self) -> Address:
        """Where SoupBinTCP clients connect."""
        host, port = self.server.address[:2]
        return host, port

    async def wait_closed(self) -> None:
        """Wait until the gateway has stopped."""
        await asyncio.shield(self._task)

    async def close(self) -> None:
        """Stop listening and serving (the journal stays, to resume from)."""
        await self.listener.close()
        with contextlib.suppress(SessionEnded, SoupBinTCPError):
            await self._task
        await self.server.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def mold_to_soupbintcp(
    group: Address | Sequence[Address],
    request: Address | None,
    listen: Address,
    store: MessageStore,
    *,
    session_id: str | None = None,
    credentials: Mapping[str, str] | None = None,
    authenticate: Authenticate | None = None,
    interface: str | None = None,
    first_packet_timeout: float | None = None,
    **serve_options: Any,
) -> MoldGateway:
    """Follow MoldUDP64 `group` into `store` and serve it with SoupBinTCP on `listen`.
    `group` may be several groups: the A/B lines of the session (see `listen_async`).

    The journal is the cache: the listener starts at `store.count + 1`, so a restarted
    gateway resumes where it stopped, and the first start back-fills the session from 1
    through `request`. The SoupBinTCP session is the MoldUDP64 one: given, recorded in the
    store, or else learned from the first packet (waiting up to `first_packet_timeout`);
    a journal records its session only when it is created, so create it with the session
    (`discover_session()` finds it) for a restart to check it. `serve_options` go to
    `soupbintcp.serve`.
    """
    session = session_id or store.session_id
    listener = await listen_async(
        group, request, sequence=store.count + 1, session_id=session, interface=interface
    )
    try:
        if session is None:
            await asyncio.wait_for(_first_packet(listener), first_packet_timeout)
            session = listener.session_id
            assert session is not None
        server = await serve(
            listen,
            store=store,
            session_id=session,
            credentials=credentials,
            authenticate=authenticate,
            **serve_options,
        )
    except BaseException:
        await listener.close()
        raise
    host, port = server.address[:2]
    groups: list[Any] = [group] if isinstance(group[0], str) else list(group)
    lines = " + ".join(f"{g[0]}:{g[1]}" for g in groups)
    log.info("gateway: MoldUDP64 %s session %s onto SoupBinTCP %s:%s", lines, session, host, port)
    return MoldGateway(listener, server, store)


async def discover_session(
    group: Address, *, interface: str | None = None, timeout: float | None = None
) -> str:
    """The session of the next packet on MoldUDP64 `group` (a heartbeat will do)."""
    listener = await listen_async(group, None, sequence=0, interface=interface)
    try:
        await asyncio.wait_for(_first_packet(listener), timeout)
    finally:
        await listener.close()
    assert listener.session_id is not None
    return listener.session_id


async def _first_packet(listener: AsyncListener) -> None:
    while listener.session_id is None:
        if listener.is_closed:
            raise SessionEnded("the listener ended before any packet")
        await asyncio.sleep(0.01)


class SoupToMold:
    """A transmitter and a re-request server on one journal."""

    def __init__(self, transmitter: Transmitter, requests: RequestServer) -> None:
        self.transmitter = transmitter
        self.requests = requests

    async def end_session(self, linger: float = 5.0) -> None:
        """End of Session on the multicast, answering requests meanwhile."""
        await self.transmitter.end_session(linger)

    async def close(self) -> None:
        await self.transmitter.close()
        await self.requests.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def soupbintcp_to_mold(
    server: Server,
    group: Address,
    request_listen: Address,
    *,
    interface: str | None = None,
    ttl: int = 1,
    loopback: bool = True,
    first: int | None = None,
) -> SoupToMold:
    """Transmit what `server` publishes on MoldUDP64 `group`, with a re-request server on
    `request_listen`, from the server's own journal and session."""
    store = server.store
    transmitter = await transmit(
        store,
        group,
        session_id=server.session_id,
        interface=interface,
        ttl=ttl,
        loopback=loopback,
        first=first,
    )
    try:
        requests = await serve_requests(store, request_listen, session_id=server.session_id)
    except BaseException:
        await transmitter.close()
        raise
    return SoupToMold(transmitter, requests)
