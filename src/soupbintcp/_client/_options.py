"""What `connect_async()` and `connect()` take, normalized once for both drivers.

Layer 3 (drivers), no I/O here.
"""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypedDict, Unpack

from .._errors import LocalProtocolError
from .._session._client import ClientSession
from .._session._events import Event
from .._wire._framing import Dialect
from ._reconnect import ReconnectPolicy, reconnect_policy

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "Address",
    "AddressLike",
    "Addresses",
    "ClientConfig",
    "ConnectOptions",
    "OnStatus",
    "SessionOptions",
    "addresses",
    "ssl_context",
]

#: 50,000: uvloop reads several chunks per wake-up, so the queue fills to the mark before the
#: consumer runs; higher marks only cost memory (measured: no throughput change).
DEFAULT_MAX_QUEUE: Final = 50_000

OnStatus = Callable[[Event], None]
Address = tuple[str, int]
#: One address: `("host", port)` or `"host:port"` (`"[::1]:port"` for an IPv6 literal).
AddressLike = Address | str
#: What the clients' `address` argument takes: one address, or a sequence of them to fail
#: over between (tried in order, the next one after each lost connection).
Addresses = AddressLike | Sequence[AddressLike]


def _one(value: object) -> Address:
    if isinstance(value, str):
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise LocalProtocolError(f"an address is 'HOST:PORT', not {value!r}")
        return host.removeprefix("[").removesuffix("]"), int(port)
    if (
        isinstance(value, tuple | list)
        and len(value) >= 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    ):
        return value[0], value[1]
    raise LocalProtocolError(f"an address is (host, port) or 'HOST:PORT', not {value!r}")


def addresses(value: Addresses) -> tuple[Address, ...]:
    """The addresses a client connects to, in the order it tries them.

    >>> addresses(("a", 1)), addresses("a:1"), addresses(["a:1", ("b", 2)])
    ((('a', 1),), (('a', 1),), (('a', 1), ('b', 2)))
    """
    if isinstance(value, str) or (
        isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int)
    ):
        return (_one(value),)
    if not isinstance(value, Sequence):
        raise LocalProtocolError(f"an address is (host, port) or 'HOST:PORT', not {value!r}")
    out = tuple(_one(v) for v in value)
    if not out:
        raise LocalProtocolError("no address to connect to")
    return out


def ssl_context(value: _ssl.SSLContext | bool | None) -> _ssl.SSLContext | None:
    """The `ssl=` argument of the clients: True for the system's default trust."""
    return _ssl.create_default_context() if value is True else (value or None)


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """The login and timer options of a session, kept so that a session refused by one
    gateway (`SessionMismatch`) can be carried on by a fresh `ClientSession`."""

    username: str
    password: str
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 15.0
    login_timeout: float = 30.0
    client_heartbeat_timeout_ms: int | None = None
    dialect: Dialect = Dialect.SOUPBINTCP

    def session(self, session_id: str, sequence: int) -> ClientSession:
        return ClientSession(
            self.username,
            self.password,
            session_id=session_id,
            sequence=sequence,
            heartbeat_interval=self.heartbeat_interval,
            heartbeat_timeout=self.heartbeat_timeout,
            login_timeout=self.login_timeout,
            client_heartbeat_timeout_ms=self.client_heartbeat_timeout_ms,
            dialect=self.dialect,
        )

    def resume(self, old: ClientSession) -> ClientSession:
        """A session that carries on where `old` stopped: the same session id, the next
        expected sequence number, and `old`'s logins (so the resume drops resent messages)."""
        new = self.session(old.session_id, old.next_sequence)
        new.logins = old.logins
        return new


class ConnectOptions(TypedDict, total=False):
    """The keyword options of `connect_async()` and `connect()` (defaults in brackets).

    - `heartbeat_interval` [1.0 s]: send a Client Heartbeat after this long without sending.
    - `heartbeat_timeout` [15.0 s]: the link is dead after this long without receiving.
    - `client_heartbeat_timeout_ms` [None]: the SoupBinTCP 4.10 login field (None: 4.00).
    - `login_timeout` [30.0 s]: how long a Login Request may stay unanswered.
    - `connect_timeout` [10.0 s]: how long a TCP (and TLS) connect may take.
    - `reconnect` [False]: True or a `ReconnectPolicy`: resume lost connections (and retry a
      first login that timed out).
    - `ssl` [None]: an `SSLContext`, or True for the system's default trust.
    - `server_hostname` [the host]: the name TLS checks the certificate against.
    - `dialect` [`Dialect.SOUPBINTCP`]: or `Dialect.OMEGA`.
    - `on_status` [None]: called with every event that is not a message (Login Accepted,
      End of Session, Debug...).
    - `max_queue` [50,000]: messages queued unread before the client stops reading.
    """

    heartbeat_interval: float
    heartbeat_timeout: float
    client_heartbeat_timeout_ms: int | None
    login_timeout: float
    connect_timeout: float
    reconnect: bool | ReconnectPolicy
    ssl: _ssl.SSLContext | bool | None
    server_hostname: str | None
    dialect: Dialect
    on_status: OnStatus | None
    max_queue: int


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything a driver needs besides its session, normalized."""

    addresses: tuple[Address, ...]
    options: SessionOptions
    reconnect: ReconnectPolicy | None
    ssl: _ssl.SSLContext | None
    server_hostname: str | None
    connect_timeout: float
    max_queue: int
    on_status: OnStatus | None

    @classmethod
    def of(
        cls, address: Addresses, username: str, password: str, **kw: Unpack[ConnectOptions]
    ) -> ClientConfig:
        return cls(
            addresses(address),
            SessionOptions(
                username,
                password,
                heartbeat_interval=kw.get("heartbeat_interval", 1.0),
                heartbeat_timeout=kw.get("heartbeat_timeout", 15.0),
                login_timeout=kw.get("login_timeout", 30.0),
                client_heartbeat_timeout_ms=kw.get("client_heartbeat_timeout_ms"),
                dialect=kw.get("dialect", Dialect.SOUPBINTCP),
            ),
            reconnect_policy(kw.get("reconnect", False)),
            ssl_context(kw.get("ssl")),
            kw.get("server_hostname"),
            kw.get("connect_timeout", 10.0),
            kw.get("max_queue", DEFAULT_MAX_QUEUE),
            kw.get("on_status"),
        )
