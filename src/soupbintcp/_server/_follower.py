"""`Follower`: a logged-in connection as the stream it follows sees it.

Layer 3 (server driver). The `ServerProtocol` is one; a `Stream` fans out to its followers
and tells them when to catch up from the store and when the session ended.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from .._session._server import ServerSession

if TYPE_CHECKING:
    from ._connection import Connection

__all__ = ["Follower"]


class Follower(Protocol):
    """A logged-in connection as its stream sees it. The fan-out writes to `transport`,
    records the messages in `session` and counts `bytes_sent` itself: no call per message."""

    bytes_sent: int

    @property
    def transport(self) -> asyncio.WriteTransport: ...
    @property
    def session(self) -> ServerSession: ...
    @property
    def connection(self) -> Connection: ...

    def catch_up(self) -> None:
        """Leave the live set's care: read what is missing from the store (soon, not now)."""

    def end_of_session(self) -> None:
        """The stream ended and this follower has everything: send End of Session."""
