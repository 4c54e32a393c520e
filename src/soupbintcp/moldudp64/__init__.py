"""MoldUDP64: the multicast sibling of SoupBinTCP.

A transmitter sends a `MessageStore`'s messages to a multicast group, a re-request server
answers what listeners missed from the same store, and listeners deliver each message
exactly once, in order, with the SoupBinTCP client's API shape:

    transmitter = await transmit(store, ("239.1.1.1", 5000), interface="127.0.0.1")
    requests = await serve_requests(store, ("127.0.0.1", 5001))
    listener = await listen_async(("239.1.1.1", 5000), ("127.0.0.1", 5001))
    async for msg in listener:
        ...

Layers as in the rest of the package: packets in `_wire._moldudp64`, the sans-IO
`MoldListener` in `_session`, the drivers here.
"""

from .._errors import MoldUDP64Error, MoldUDP64Fault, MoldUDP64GapTimeout
from .._session._mold_listener import ListenerState, MoldListener
from .._wire._moldudp64 import DEFAULT_MAX_PAYLOAD, Downstream, Request
from ._blocking import BlockingListener, listen
from ._listener import AsyncListener, listen_async
from ._request_server import RequestServer, serve_requests
from ._sockets import kernel_drops
from ._transmitter import Transmitter, transmit

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "AsyncListener",
    "BlockingListener",
    "Downstream",
    "ListenerState",
    "MoldListener",
    "MoldUDP64Error",
    "MoldUDP64Fault",
    "MoldUDP64GapTimeout",
    "Request",
    "RequestServer",
    "Transmitter",
    "kernel_drops",
    "listen",
    "listen_async",
    "serve_requests",
    "transmit",
]
