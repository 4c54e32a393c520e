"""The spec's fixed-width ASCII fields: emitted per spec, parsed tolerantly (either padding).

Layer 1 (wire). A failure to emit is our caller's (`LocalProtocolError`), a failure to parse
the peer's (`RemoteProtocolError`). The store writes its header's session id with these too.
"""

from __future__ import annotations

from typing import Final

from .._errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "SESSION_LEN",
    "ascii_field",
    "numeric_field",
    "parse_number",
    "parse_session",
    "parse_text",
    "session_field",
    "shown",
]

#: Width of the Session field (Login Accepted, Login Request, the journal's header).
SESSION_LEN: Final = 10


def shown(name: str, value: object) -> str:
    """A field's value as an error message may show it: a password never is."""
    return "(value withheld)" if name == "password" else repr(value)


def ascii_field(name: str, value: str, width: int, *, left_pad: bool) -> bytes:
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"{name} {shown(name, value)} is not ASCII") from None
    if len(raw) > width:
        raise LocalProtocolError(f"{name} {shown(name, value)} is longer than {width} characters")
    if not all(32 < c < 127 for c in raw):
        raise LocalProtocolError(
            f"{name} {shown(name, value)} must be printable ASCII without spaces"
        )
    return raw.rjust(width) if left_pad else raw.ljust(width)


def session_field(value: str) -> bytes:
    """The spec's 10-byte Session field (left-padded); `LocalProtocolError` if it cannot be."""
    if value and not value.isalnum():
        raise LocalProtocolError(f"session {value!r} must be alphanumeric")
    return ascii_field("session", value, SESSION_LEN, left_pad=True)


def numeric_field(name: str, value: int, width: int) -> bytes:
    if value < 0 or value >= 10**width:
        raise LocalProtocolError(f"{name} {value} does not fit {width} ASCII digits")
    return str(value).encode("ascii").rjust(width)


def parse_text(name: str, raw: bytes) -> str:
    text = raw.strip(b" ")
    if not all(32 < c < 127 for c in text):
        raise RemoteProtocolError(f"{name} field {shown(name, raw)} is not printable ASCII")
    return text.decode("ascii")


def parse_session(raw: bytes) -> str:
    """A received Session field as text; `RemoteProtocolError` if it is not one."""
    session = parse_text("session", raw)
    if session and not session.isalnum():
        raise RemoteProtocolError(f"session field {raw!r} is not alphanumeric")
    return session


def parse_number(name: str, raw: bytes) -> int:
    digits = raw.strip(b" ")
    # isdigit() on bytes is ASCII-only, unlike str.isdigit().
    if not digits.isdigit():
        raise RemoteProtocolError(f"{name} field {raw!r} is not an ASCII number")
    return int(digits)
