"""The spec's session as the server runs it: an id and its streams.

Layer 3 (server driver). Named `FeedSession` so that "session" means one thing per name:
`ClientSession` is a client's logical session across connections, `ServerSession` the
sans-IO machine of one connection, `FeedSession` the session a server publishes (the shared
feed, or one stream per user) until `end_session` / `start_session`.
"""

from __future__ import annotations

import asyncio
import logging

from .._errors import LocalProtocolError
from ..store import EndsSession, MessageStore
from ._auth import normalize_username
from ._config import ServerConfig, UserStoreFactory
from ._dispatch import EventDispatcher
from ._events import SessionEnding
from ._stream import Stream

__all__ = ["FeedSession"]

log = logging.getLogger("soupbintcp.server")


class FeedSession:
    """One SoupBinTCP session: its id, and either a shared feed or per-user streams."""

    __slots__ = ("_config", "_events", "_loop", "ended", "id", "shared", "user_store", "users")

    def __init__(
        self,
        config: ServerConfig,
        loop: asyncio.AbstractEventLoop,
        session_id: str,
        store: MessageStore | None,
        user_store: UserStoreFactory | None,
        events: EventDispatcher,
    ) -> None:
        self._config = config
        self._loop = loop
        self._events = events
        self.id = session_id
        self.shared = None if store is None else self._make_stream(store, None, owned=False)
        self.user_store = user_store
        self.users: dict[str, Stream] = {}
        self.ended = False
        if self.shared is not None and _recorded_ended(self.shared.store):
            # A server restarted on a journal whose session ended: the rest, then Z again.
            self.ended = True
            self.shared.end()

    def __repr__(self) -> str:
        return f"<FeedSession {self.id!r}{' ended' if self.ended else ''}>"

    def streams(self) -> list[Stream]:
        out = list(self.users.values())
        if self.shared is not None:
            out.append(self.shared)
        return out

    def stream(self, user: str | None, *, closing: bool) -> Stream:
        """The shared feed (`user` None), or `user`'s own stream (made from `user_store`
        the first time; ended at once if the session or the server is)."""
        if user is None:
            if self.shared is None:
                raise LocalProtocolError("this server has per-user streams: name the user")
            return self.shared
        if self.user_store is None:
            raise LocalProtocolError("this server has one shared feed, not per-user streams")
        key = normalize_username(user)
        stream = self.users.get(key)
        if stream is None:
            store = self.user_store(key)
            if store.session_id is not None and store.session_id != self.id:
                raise LocalProtocolError(
                    f"the store for user {key!r} records session {store.session_id!r}, "
                    f"not {self.id!r}"
                )
            stream = self._make_stream(store, key, owned=True)
            if self.ended or closing or _recorded_ended(store):
                stream.end()
            self.users[key] = stream
        return stream

    def _make_stream(self, store: MessageStore, user: str | None, *, owned: bool) -> Stream:
        return Stream(self._config, self._loop, store, user, owned=owned, events=self._events,
                      session_id=self.id)  # fmt: skip

    def stream_for_login(self, username: str, *, closing: bool) -> Stream:
        """The stream a client logged in as `username` follows."""
        if self.shared is not None:
            return self.shared
        return self.stream(username, closing=closing)

    def end(self) -> None:
        """Flush the stores, then End of Session on every stream (once)."""
        if self.ended:
            return
        streams = self.streams()
        for stream in streams:
            stream.flush_now()
        self.ended = True
        for stream in streams:
            store = stream.store
            if isinstance(store, EndsSession) and not store.session_ended:
                try:  # so that a restarted server does not serve the session as open
                    store.end_session()
                except Exception:
                    log.exception("recording the end of the session in %r failed", store)
            stream.end()
        head = self.shared.head if self.shared is not None else 0
        self._events.emit(SessionEnding(session=self.id, head=head))


def _recorded_ended(store: MessageStore) -> bool:
    return isinstance(store, EndsSession) and store.session_ended
