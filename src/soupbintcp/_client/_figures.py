"""`Client`: what both clients show of their session, as a protocol, for code that takes
either (the metrics collector, monitoring).

Layer 3 (drivers), no I/O here. `AsyncClient` and `BlockingClient` each declare these
members themselves (their documentation lists them); this only names the shape they share.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .._session._client import ClientState
from ._options import Address
from ._reconnect import CloseReason

__all__ = ["Client"]


@runtime_checkable
class Client(Protocol):
    """The read-only figures of a client session, `AsyncClient` or `BlockingClient`."""

    @property
    def session_id(self) -> str:
        """The session's id, as the server's Login Accepted gave it."""
        ...

    @property
    def next_sequence(self) -> int:
        """Sequence number of the next sequenced message to arrive."""
        ...

    @property
    def state(self) -> ClientState:
        """Where the session is in its life."""
        ...

    @property
    def is_closed(self) -> bool:
        """Whether the session is over for good."""
        ...

    @property
    def close_reason(self) -> CloseReason | None:
        """Why the session ended; None while it has not."""
        ...

    @property
    def address(self) -> Address:
        """The address of the current (or last) connection attempt."""
        ...

    @property
    def addresses(self) -> tuple[Address, ...]:
        """Every address the client may use, in the order it tries them."""
        ...

    @property
    def reconnects(self) -> int:
        """Logins after the first."""
        ...

    @property
    def failovers(self) -> int:
        """Logins at another address than the login before."""
        ...

    @property
    def gaps_refused(self) -> int:
        """Logins refused because the server would have skipped messages."""
        ...

    @property
    def messages_received(self) -> int:
        """Sequenced messages received since the first login."""
        ...

    @property
    def receive_rate(self) -> float:
        """Messages received per second, recomputed at most once a second."""
        ...

    @property
    def queued(self) -> int:
        """Messages received and not yet handed to the application."""
        ...
