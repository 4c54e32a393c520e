"""Answering a Login Request: authenticate, pick the session and stream, then accept or reject.

Layer 3 (server driver). The check is the configured `credentials` table (constant time,
see `_auth`) or the application's `authenticate`, which may be a coroutine function: then
the answer waits for it in a task, cancelled if the connection closes first. An exception
from `authenticate` or `user_store` is the application's bug and closes that client alone.
Repeated failures from one address for one user wait their turn first (`_throttle`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from .._errors import RejectReason
from .._wire._packets import LoginRequest
from ._auth import normalize_username
from ._context import ServerContext

if TYPE_CHECKING:
    from ._protocol import ServerProtocol

__all__ = ["Login"]


class Login:
    """One Login Request of one connection, until it is answered."""

    __slots__ = ("_conn", "_ctx", "_request", "_task", "_user", "waiting")

    def __init__(self, conn: ServerProtocol, ctx: ServerContext, request: LoginRequest) -> None:
        self._conn = conn
        self._ctx = ctx
        self._request = request
        self._task: asyncio.Task[None] | None = None
        self._user = normalize_username(request.username)
        #: Held back by the throttle (repeated failures from this address for this user).
        self.waiting = False

    def start(self) -> None:
        conn = self._conn
        conn.connection.username = self._request.username  # the one it asked for, meanwhile
        ctx = self._ctx
        wait = ctx.throttle.wait(conn.connection.address[0], self._user, ctx.loop.time())
        if wait is None:
            conn.close(
                "login_throttled",
                "login not checked: too many failed logins for this user from this address",
                logging.WARNING,
                abort=True,
            )
        elif wait > 0:
            self.waiting = True
            self._task = ctx.loop.create_task(self._after(wait))
        else:
            self._check()

    async def _after(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._task = None
        self.waiting = False
        self._check()

    def _check(self) -> None:
        request = self._request
        config = self._ctx.config
        try:
            if config.credentials is not None:
                # The configured spelling of the username, or None.
                self._decided(config.credentials.check(request.username, request.password))
                return
            assert config.authenticate is not None
            verdict = config.authenticate(
                request.username, request.password, request.session, request.sequence
            )
        except Exception:
            self._conn.handler_failed("authenticate")
            return
        if inspect.isawaitable(verdict):
            self._task = self._ctx.loop.create_task(self._later(verdict))
        else:
            self._decided(request.username if verdict else None)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _later(self, verdict: Awaitable[bool]) -> None:
        try:
            allowed = await verdict
        except asyncio.CancelledError:
            raise
        except Exception:
            self._conn.handler_failed("authenticate")
            return
        finally:
            self._task = None
        self._decided(self._request.username if allowed else None)

    def _decided(self, username: str | None) -> None:
        """Answer the Login Request of a client known as `username` (None: not authorized)."""
        conn = self._conn
        if conn.closed:
            return
        ctx = self._ctx
        source = conn.connection.address[0]
        if username is None:
            ctx.throttle.failed(source, self._user, ctx.loop.time())
            conn.reject_login(RejectReason.NOT_AUTHORIZED, "not authorized")
            return
        ctx.throttle.succeeded(source, self._user)
        request = self._request
        session = ctx.session
        if ctx.refusing is not None:
            conn.reject_login(RejectReason.SESSION_NOT_AVAILABLE, ctx.refusing)
            return
        if request.session and request.session != session.id:
            conn.reject_login(
                RejectReason.SESSION_NOT_AVAILABLE,
                f"session {request.session!r} not available (current session {session.id!r})",
            )
            return
        try:
            stream = session.stream_for_login(username, closing=ctx.admission.closing)
            stream.deliver()  # the head is now everything durable
        except Exception:
            conn.handler_failed("opening the stream (user_store or the store)")
            return
        head = stream.head
        sequence = request.sequence
        if sequence == 0 or sequence > head + 1:
            sequence = head + 1
        elif sequence < stream.first_sequence:
            # A journal that starts later (a capture that joined the session late) has
            # nothing before its first message: the client is told where it starts.
            sequence = stream.first_sequence
        conn.accept_login(username, session.id, stream, sequence, request.sequence)
