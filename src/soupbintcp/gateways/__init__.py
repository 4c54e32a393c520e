"""Gateways between SoupBinTCP and MoldUDP64.

Layer 4: the only folder that may use both the SoupBinTCP server (`_server`) and the
MoldUDP64 drivers (`moldudp64`), which are layer 3 and may not import each other.

- `mold_to_soupbintcp()`: a SoupBinTCP server whose stream is fed by a MoldUDP64 listener
  through a journal, so clients log in at any sequence number and get what the multicast
  carried, gaps filled first (the listener delivers only in order).
- `soupbintcp_to_mold()`: a transmitter and a re-request server on the journal a SoupBinTCP
  server publishes into: one journal, both protocols.
"""

from ._gateways import (
    MoldGateway,
    SoupToMold,
    discover_session,
    mold_to_soupbintcp,
    soupbintcp_to_mold,
)

__all__ = [
    "MoldGateway",
    "SoupToMold",
    "discover_session",
    "mold_to_soupbintcp",
    "soupbintcp_to_mold",
]
