"""Layer 2, the sans-IO sessions: state machines with time passed in, over the wire layer only.

Offers the layers above: `ClientSession` (one logical client session across connections,
`ClientState`), `ServerConnectionState` (the server's end of one connection, `ServerState`),
the events they return (`Event`, `SequencedMessages`, `SequencedFrames`, `Message`,
`NoMoreMessages`, ...), the sans-IO `MoldListener`, and the run queue the drivers hand
messages out of. Each machine's transitions are one table (`_RULES` in `_client` and
`_server`, a `_core.Rules`), from which the documentation draws its state diagrams.
"""

from __future__ import annotations

from ._client import ClientSession, ClientState
from ._events import (
    BatchItem,
    Event,
    FramesItem,
    Message,
    NoMoreMessages,
    SequencedFrames,
    SequencedMessages,
)
from ._mold_lines import DEFAULT_LINE_WAIT, LineArbiter, LineCounters
from ._mold_listener import ListenerState, MoldListener
from ._queue import Queued, RunQueue, as_batch_item
from ._server import ServerConnectionState, ServerSession, ServerState

__all__ = [
    "DEFAULT_LINE_WAIT",
    "BatchItem",
    "ClientSession",
    "ClientState",
    "Event",
    "FramesItem",
    "LineArbiter",
    "LineCounters",
    "ListenerState",
    "Message",
    "MoldListener",
    "NoMoreMessages",
    "Queued",
    "RunQueue",
    "SequencedFrames",
    "SequencedMessages",
    "ServerConnectionState",
    "ServerSession",
    "ServerState",
    "as_batch_item",
]
