"""Layer 3, the client drivers: asyncio and blocking clients over the sans-IO `ClientSession`.

Offers the layers above: `connect_async` / `AsyncClient`, `connect` / `BlockingClient`, the
reconnect policy (`ReconnectPolicy`, `CloseReason`), `BatchItem`, the `Addresses` and
`ConnectOptions` the connect functions take, and `Client` (the public protocol of both
clients' figures, which `metrics` reads). Never imports `_server` or `moldudp64`, its
siblings at layer 3.
"""

from __future__ import annotations

from ._async import AsyncClient, BatchItem, connect_async
from ._blocking import BlockingClient, connect
from ._figures import Client
from ._options import Addresses, ConnectOptions
from ._reconnect import CloseReason, ReconnectPolicy

__all__ = [
    "Addresses",
    "AsyncClient",
    "BatchItem",
    "BlockingClient",
    "Client",
    "CloseReason",
    "ConnectOptions",
    "ReconnectPolicy",
    "connect",
    "connect_async",
]
