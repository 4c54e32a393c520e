"""The first login of an order client: retried when the link is lost during it.

Layer 4 (order client): what both drivers (`_client`, `_blocking`) share about logging in.
"""

from __future__ import annotations

from .._client import ReconnectPolicy
from .._errors import ConnectionLost, SessionTimeout

__all__ = ["first_login_retry"]

#: First logins tried when the link is lost during the login and no policy says how often.
_FIRST_LOGIN_ATTEMPTS = 10


def first_login_retry(exc: BaseException, attempt: int, reconnect: object) -> float | None:
    """Seconds to wait before trying the first login again, or None to give up.

    The SoupBinTCP clients retry a lost link once logged in, not during the first login;
    a program restarted after a crash must not die of a link cut during its login. Only a
    link lost (or timed out) after connecting is retried: a refused connection fails at once.
    """
    if not isinstance(exc, ConnectionLost | SessionTimeout) or not reconnect:
        return None
    policy = reconnect if isinstance(reconnect, ReconnectPolicy) else ReconnectPolicy()
    limit = policy.max_attempts if policy.max_attempts is not None else _FIRST_LOGIN_ATTEMPTS
    return None if attempt + 1 >= limit else policy.delay(attempt)
