"""Nasdaq TotalView-ITCH 5.0 decoding for SoupBinTCP payloads (the ``itch`` extra).

``decode(payload)`` turns one message into an `ItchMessage`: its type letter, the
specification's name for it, and its fields in wire order with prices as `Decimal`,
timestamps as `TimeOfDay` and text fields trimmed. `Decoder` does the same for a stream
and never raises for bad bytes: it counts them as warnings. `to_text` and `to_json` give
one line each. `ItchEncoder` builds the messages an order book publishes. The byte layouts
come from the ``itchfeed`` library (``pip install 'soupbintcp[itch]'``).
"""

from __future__ import annotations

from ._decode import (
    ItchDecodeError,
    ItchMessage,
    ItchNotInstalled,
    TimeOfDay,
    decode,
    ensure_installed,
)
from ._encode import ItchEncoder
from ._format import Decoder, to_json, to_jsonable, to_text
from ._layouts import LAYOUTS as _LAYOUTS

#: Each ITCH 5.0 message type letter and the specification's name for it.
MESSAGE_TYPES: dict[str, str] = {letter: layout.name for letter, layout in _LAYOUTS.items()}
#: Each ITCH 5.0 message type letter and its published length in bytes (type included).
MESSAGE_SIZES: dict[str, int] = {letter: layout.size for letter, layout in _LAYOUTS.items()}

__all__ = [
    "MESSAGE_SIZES",
    "MESSAGE_TYPES",
    "Decoder",
    "ItchDecodeError",
    "ItchEncoder",
    "ItchMessage",
    "ItchNotInstalled",
    "TimeOfDay",
    "decode",
    "ensure_installed",
    "to_json",
    "to_jsonable",
    "to_text",
]
