"""Fuzz target: `ClientSession` driven by a sequence of operations read from the input.

Byte 0 and 1 configure the session; then each operation is one byte (its kind) and the bytes
it consumes: feed raw bytes, feed a well-formed or malformed server packet, advance time, run
the timer, call login / send / logout, lose the connection. The rule: every call either works
or raises the error its contract names (`ProtocolError`s, `SequenceGap`, `SessionTimeout` from
the timer), and the session keeps its own promises (contiguous sequence numbers, ERROR sticks).

Run: `python -m fuzz.fuzz_client_session fuzz/corpus/fuzz_client_session`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from soupbintcp import (
    ClientState,
    Dialect,
    LocalProtocolError,
    ProtocolError,
    SequenceGap,
    SessionTimeout,
)
from soupbintcp._session._events import EVENT_TYPES, Event
from soupbintcp.lowlevel import (
    ClientSession,
    LoginAcceptedPacket,
    NoMoreMessages,
    SequencedMessages,
)

from ._common import MAX_OPS, Reader, run

__all__ = ["check", "server_packet"]

_HEARTBEAT: Final = b"\x00\x01R"
_SESSIONS: Final = ("", "SESSION1", "OTHER", "S", "SESSION1  ")
_TYPES: Final = b"+AJSUHZLROX"


def _wire(ptype: int, payload: bytes = b"") -> bytes:
    return (len(payload) + 1).to_bytes(2, "big") + bytes((ptype,)) + payload


def server_packet(r: Reader) -> bytes:
    """One packet a server could send, well-formed or not, chosen by the input."""
    kind = r.byte() % 14
    if kind == 0:  # Login Accepted, possibly padded oddly or numbered 0
        session = r.choice(("SESSION1", "OTHER", "", "S"))
        seq = r.number((1, 2, 3, 0, 5, 100))
        return _wire(ord("A"), session.rjust(10).encode() + str(seq).rjust(20).encode())
    if kind == 1:
        return _wire(ord("J"), r.choice((b"A", b"S", b"X", b"")))
    if kind in (2, 3, 4):  # Sequenced Data, the common case
        return _wire(ord("S"), r.take(r.byte() % 40))
    if kind == 5:
        return _wire(ord("S"))
    if kind == 6:
        return _wire(ord("U"), r.take(r.byte() % 40))
    if kind == 7:
        return _wire(ord("H"))
    if kind == 8:
        return _wire(ord("Z"))
    if kind == 9:
        return _wire(ord("+"), r.take(r.byte() % 20))
    if kind == 10:  # a type byte from anywhere, with any payload
        return _wire(_TYPES[r.byte() % len(_TYPES)], r.take(r.byte() % 60))
    if kind == 11:  # Login Accepted with a mangled field
        payload = bytearray(b"  SESSION1" + b"1".rjust(20))
        if payload:
            payload[r.byte() % len(payload)] = r.byte()
        return _wire(ord("A"), bytes(payload))
    if kind == 12:
        return b"\x00\x00"
    return _wire(ord("S"), b"")[: r.byte() % 3]  # a torn header


class _Checker:
    """Runs one operation at a time, checking each call against its contract."""

    def __init__(self, client: ClientSession) -> None:
        self.client = client
        self.now = 0.0
        # The sequence number the next SequencedMessages must start at, once known.
        self.expect_next: int | None = client.next_sequence or None
        self.accepted = 0  # Login Accepted events seen

    def events(self, events: list[Event]) -> None:
        client = self.client
        for event in events:
            assert isinstance(event, EVENT_TYPES), f"not an event: {event!r}"
            if isinstance(event, LoginAcceptedPacket):
                # Counting starts at the server's number when the client asked for "only new
                # messages", or on the first login for a number beyond the end of the session
                # (the server answers lower); otherwise it goes on where it stopped, across
                # any reconnect.
                if self.expect_next is None or (
                    not self.accepted and event.sequence < self.expect_next
                ):
                    self.expect_next = event.sequence
                self.accepted += 1
            if isinstance(event, SequencedMessages):
                assert event.messages, "an empty SequencedMessages"
                if self.expect_next is not None:
                    assert event.first_sequence == self.expect_next, (
                        f"sequence jumped: {event.first_sequence} after {self.expect_next}"
                    )
                self.expect_next = event.next_sequence
            if isinstance(event, NoMoreMessages) and self.expect_next is not None:
                assert event.sequence == self.expect_next
        if self.expect_next is not None and client.state is not ClientState.ERROR:
            assert client.next_sequence == self.expect_next or client.next_sequence == 0

    def receive(self, data: bytes) -> None:
        client = self.client
        state = client.state
        try:
            events = client.receive_data(data, self.now)
        except (ProtocolError, SequenceGap) as exc:
            self.receive_failed(exc, state)
            return
        self.events(events)
        if client.state is ClientState.ERROR:
            assert events, "ERROR entered silently"
            assert client.error is not None

    def call(self, op: int, r: Reader) -> None:
        client = self.client
        if op == 0:
            self.receive(r.take(r.byte()))
        elif op in (1, 2, 3):
            self.receive(server_packet(r))
        elif op == 4:  # a run of Sequenced Data, for the batch path
            self.receive(b"".join(_wire(ord("S"), r.take(r.byte() % 8)) for _ in range(r.byte())))
        elif op == 5:  # one packet split at a chosen byte
            raw = server_packet(r)
            cut = r.byte() % (len(raw) + 1)
            self.receive(raw[:cut])
            self.receive(raw[cut:])
        elif op == 6:
            self.now += r.byte() / 16
        elif op == 7:
            self.timer()
        elif op == 8:
            due = client.next_timer()
            if due is not None and due > self.now:
                self.now = due
            self.timer()
        elif op == 9:
            self.send(lambda: client.login(self.now))
        elif op == 10:
            self.send(lambda: client.send_unsequenced(r.take(r.byte()), self.now))
        elif op == 11:
            text = r.take(r.byte() % 16).decode("latin-1")
            self.send(lambda: client.send_debug(text, self.now))
        elif op == 12:
            self.send(lambda: client.logout(self.now))
        elif op == 13:
            client.connection_lost()
        else:
            client.peer_alive(self.now)
        due = client.next_timer()
        assert due is None or isinstance(due, float)
        if client.state is ClientState.ERROR:
            assert due is None
            assert client.error is not None

    def receive_failed(self, exc: ProtocolError | SequenceGap, state: ClientState) -> None:
        client = self.client
        if isinstance(exc, LocalProtocolError) and client.error is not exc:
            # Data in a state with no connection: refused, nothing changes.
            assert client.state is state
            return
        assert client.state is ClientState.ERROR, f"raised {exc!r} in {client.state}"
        assert client.error is exc

    def timer(self) -> None:
        client = self.client
        try:
            out = client.handle_timer(self.now)
        except SessionTimeout:
            assert client.state is ClientState.DISCONNECTED
            return
        assert out in (b"", _HEARTBEAT), f"handle_timer returned {out!r}"
        due = client.next_timer()
        assert due is None or due > self.now, f"next timer {due} not after {self.now}"

    def send(self, call: Callable[[], bytes]) -> None:
        client = self.client
        state = client.state
        try:
            out = call()
        except (ProtocolError, SequenceGap) as exc:
            self.send_failed(exc, state)
            return
        assert isinstance(out, bytes)
        assert client.error is None

    def send_failed(self, exc: ProtocolError | SequenceGap, state: ClientState) -> None:
        client = self.client
        if client.error is not None:
            assert exc is client.error, "an ERROR session raised a new error"
        else:
            assert isinstance(exc, LocalProtocolError), f"{exc!r} from a send"
            assert client.state is state, "a refused call changed the state"


def check(data: bytes) -> None:
    r = Reader(data)
    cfg = r.byte()
    timing = r.byte()
    dialect = Dialect.OMEGA if cfg & 1 else Dialect.SOUPBINTCP
    sequence = (1, 0, 2, 1000)[(cfg >> 1) & 3]
    session_id = _SESSIONS[(cfg >> 3) % 2]
    heartbeat_ms = None if dialect is Dialect.OMEGA or not cfg & 0x10 else r.byte() * 40
    client = ClientSession(
        "user",
        "secret",
        session_id=session_id,
        sequence=sequence,
        heartbeat_interval=(1.0, 0.5, 2.0, 0.25)[timing & 3],
        heartbeat_timeout=(15.0, 3.0, 1.0, 0.5)[(timing >> 2) & 3],
        login_timeout=(30.0, 5.0, 1.0, 0.125)[(timing >> 4) & 3],
        client_heartbeat_timeout_ms=heartbeat_ms,
        dialect=dialect,
    )
    checker = _Checker(client)
    if cfg & 0x20:  # most interesting inputs start logged in
        checker.call(9, r)
    ops = 0
    while not r.done and ops < MAX_OPS:
        checker.call(r.byte() % 15, r)
        ops += 1


def main() -> None:
    run(check)


if __name__ == "__main__":
    main()
