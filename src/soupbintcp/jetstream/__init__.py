"""A feed beyond one machine: SoupBinTCP gateways on a replicated log (NATS JetStream).

Needs the optional extra ``nats`` (``pip install 'soupbintcp[nats]'``). One writer appends
batches of messages to a JetStream stream under a fence; every gateway follows that stream
into a local `FileStore` cache and serves it, so message n is the same bytes on every
gateway and a client can fail over from one to another. See docs/scale-out.md.
"""

try:
    import nats as _nats  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("soupbintcp.jetstream needs nats-py: pip install 'soupbintcp[nats]'") from exc

from ._gateway import DEFAULT_SESSION, Gateway, open_gateway
from ._log import (
    EntryKind,
    LogAddress,
    LogError,
    LogState,
    LogUnavailable,
    WriterFenced,
    parse_log_address,
)

__all__ = [
    "DEFAULT_SESSION",
    "EntryKind",
    "Gateway",
    "LogAddress",
    "LogError",
    "LogState",
    "LogUnavailable",
    "WriterFenced",
    "open_gateway",
    "parse_log_address",
]
