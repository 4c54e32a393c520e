"""Checking a Login Request's username and password against configured credentials.

Layer 3 (server driver), no I/O. The spec makes both fields case-insensitive and pads them
with spaces to their widths (6 and 10); we compare the normalized, padded bytes with
`hmac.compare_digest` against every configured entry, so the time taken says neither which
usernames exist nor how much of a password matched.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from .._errors import ConfigurationError

__all__ = ["Authenticate", "Credentials", "normalize_username"]

#: `authenticate(username, password, requested_session, requested_sequence)`: true to let the
#: client in. May be a coroutine function.
Authenticate = Callable[[str, str, str, int], bool | Awaitable[bool]]

_USERNAME_WIDTH: Final = 6
_PASSWORD_WIDTH: Final = 10


def normalize_username(username: str) -> str:
    """The key a username is known by: the spec makes usernames case-insensitive."""
    return username.strip(" ").lower()


def _field(what: str, value: str, width: int) -> bytes:
    text = value.strip(" ").lower()
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise ConfigurationError(f"a {what} must be ASCII") from None
    if len(raw) > width or not all(32 < c < 127 for c in raw):
        # The message names neither the value nor, for passwords, anything about it.
        raise ConfigurationError(f"a {what} must be 1 to {width} printable ASCII characters")
    return raw.ljust(width)


class Credentials:
    """A fixed table of usernames and passwords, checked in constant time.

    `check()` returns the username as configured (its canonical spelling) or None. A table
    that cannot be checked (a username or password that could never arrive in a Login Request,
    a username twice, no user) raises `ConfigurationError` (a `ValueError`).
    """

    __slots__ = ("_entries",)

    def __init__(self, credentials: Mapping[str, str]) -> None:
        entries: list[tuple[bytes, bytes, str]] = []
        seen: set[bytes] = set()
        for username, password in credentials.items():
            user = _field("username", username, _USERNAME_WIDTH)
            if not user.strip():
                raise ConfigurationError("a username must not be blank")
            if user in seen:
                raise ConfigurationError(
                    f"username {username!r} is configured twice (case-insensitively)"
                )
            seen.add(user)
            entries.append((user, _field("password", password, _PASSWORD_WIDTH), username))
        if not entries:
            raise ConfigurationError("credentials must name at least one user")
        self._entries = tuple(entries)

    def check(self, username: str, password: str) -> str | None:
        try:
            user = _field("username", username, _USERNAME_WIDTH)
            pw = _field("password", password, _PASSWORD_WIDTH)
        except ConfigurationError:
            # The wire layer already limits both fields to their widths in printable ASCII;
            # this is only reachable by calling check() directly.
            return None
        found: str | None = None
        # Every entry is compared in full, whatever matched before it.
        for entry_user, entry_pw, name in self._entries:
            user_ok = hmac.compare_digest(entry_user, user)
            pw_ok = hmac.compare_digest(entry_pw, pw)
            if user_ok & pw_ok:
                found = name
        return found
