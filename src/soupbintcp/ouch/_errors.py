"""What goes wrong with OUCH bytes: `OuchError` and one subclass per kind of fault.

Every decoding error names the byte offset (within the message) where the fault was found,
so a log line points at the bad byte. Encoding errors (a value that does not fit its field)
are `OuchEncodeError`, our caller's fault rather than the peer's.
"""

from __future__ import annotations

from .._errors import SoupBinTCPError

__all__ = [
    "AppendageLengthError",
    "InvalidFieldValue",
    "MessageLengthError",
    "OuchEncodeError",
    "OuchError",
    "TagValueError",
    "TruncatedTag",
    "UnknownMessageType",
    "UnknownTag",
]


class OuchError(SoupBinTCPError, ValueError):
    """Bytes that are not a valid OUCH 5.0 message; ``offset`` is where the fault is."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(f"{message} (at offset {offset})")
        self.offset = offset


class UnknownMessageType(OuchError):
    """The type letter at offset 0 is not an OUCH message of this direction (or is absent)."""


class MessageLengthError(OuchError):
    """Shorter than the fixed part, or (no appendage) not exactly the fixed length."""


class AppendageLengthError(OuchError):
    """Fixed part + Appendage Length does not equal the payload's length."""


class TruncatedTag(OuchError):
    """A TagValue element runs past the end of the appendage, or its Length byte is 0."""


class TagValueError(OuchError):
    """A known tag whose value has the wrong size or an invalid code."""


class UnknownTag(OuchError):
    """(strict decoding) A tag not defined in Appendix B, or not allowed in this message."""


class InvalidFieldValue(OuchError):
    """A fixed field holds a code outside its enumeration, or text that is not ASCII."""


class OuchEncodeError(SoupBinTCPError, ValueError):
    """A message cannot be encoded: a value does not fit its field (our caller's fault)."""
