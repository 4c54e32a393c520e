"""Fuzz target: `ServerSession` driven by a sequence of operations read from the input.

Bytes 0 and 1 configure the session; then each operation is one byte (its kind) and the bytes
it consumes: feed raw bytes, feed a well-formed or malformed client packet, advance time, run
the timer, accept / reject, send sequenced / unsequenced / debug / end of session, lose the
connection. The rule: every call either works or raises the error its contract names
(`ProtocolError`s, `SessionTimeout` from the timer), and what the server sends is valid wire.

Run: `python -m fuzz.fuzz_server_session fuzz/corpus/fuzz_server_session`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from soupbintcp import Dialect, LocalProtocolError, ProtocolError, RejectReason, SessionTimeout
from soupbintcp._session._events import EVENT_TYPES
from soupbintcp.lowlevel import (
    LoginAcceptedPacket,
    LoginRequestPacket,
    PacketDecoder,
    Role,
    SequencedDataPacket,
    ServerConnectionState,
    ServerState,
)

from ._common import MAX_OPS, Reader, run

__all__ = ["check", "client_packet"]

_HEARTBEAT: Final = b"\x00\x01H"
_CAPS: Final = (0xFFFF, 0xFFFF, 0xFFFF, 54, 49, 20, 3, 1)
_TYPES: Final = b"+LUROASHZJX"
_FIELD_CHARS: Final = b"ab1 Z9 \x00\xff~!"


def _wire(ptype: int, payload: bytes = b"") -> bytes:
    return (len(payload) + 1).to_bytes(2, "big") + bytes((ptype,)) + payload


def _field(r: Reader, width: int, *, left: bool) -> bytes:
    """A login field: usually well-formed text or digits, sometimes not."""
    kind = r.byte() % 4
    raw: bytes
    if kind == 0:
        raw = r.choice((b"user", b"secret", b"", b"SESSION1", b"abcdef"))[:width]
    elif kind == 1:
        raw = str(r.u16()).encode()[:width]
    elif kind == 2:
        raw = bytes(_FIELD_CHARS[b % len(_FIELD_CHARS)] for b in r.take(r.byte() % (width + 1)))
    else:
        raw = b" " * width
    return raw.rjust(width) if left else raw.ljust(width)


def client_packet(r: Reader) -> bytes:
    """One packet a client could send, well-formed or not, chosen by the input."""
    kind = r.byte() % 12
    if kind in (0, 1):  # Login Request, 4.00 or 4.10
        payload = (
            _field(r, 6, left=False)
            + _field(r, 10, left=False)
            + _field(r, 10, left=True)
            + _field(r, 20, left=True)
        )
        if kind == 1:
            payload += _field(r, 5, left=True)
        return _wire(ord("L"), payload)
    if kind == 2:
        return LoginRequestPacket(
            "user", "secret", "", r.u16(), r.choice((None, 0, 1, 2500))
        ).encode()
    if kind in (3, 4):
        return _wire(ord("U"), r.take(r.byte() % 40))
    if kind == 5:
        return _wire(ord("R"))
    if kind == 6:
        return _wire(ord("O"))
    if kind == 7:
        return _wire(ord("+"), r.take(r.byte() % 20))
    if kind == 8:  # a type byte from anywhere, with any payload
        return _wire(_TYPES[r.byte() % len(_TYPES)], r.take(r.byte() % 60))
    if kind == 9:  # Login Request with one byte mangled or a wrong length
        mangled = bytearray(LoginRequestPacket("user", "secret", "S", 1, 1000).payload())
        mangled[r.byte() % len(mangled)] = r.byte()
        return _wire(ord("L"), bytes(mangled[: 46 + r.byte() % 8]))
    if kind == 10:
        return b"\x00\x00"
    return _wire(ord("R"))[: r.byte() % 3]  # a torn header


class _Checker:
    """Runs one operation at a time, checking each call against its contract."""

    def __init__(self, server: ServerConnectionState) -> None:
        self.server = server
        self.now = 0.0
        self.sent = PacketDecoder(Role.SERVER, dialect=server.dialect)

    def receive(self, data: bytes) -> None:
        server = self.server
        state = server.state
        try:
            events = server.receive_data(data, self.now)
        except ProtocolError as exc:
            self.receive_failed(exc, state)
            return
        for event in events:
            assert isinstance(event, EVENT_TYPES), f"not an event: {event!r}"
            if isinstance(event, LoginRequestPacket):
                assert server.login_request is event or server.state is ServerState.ERROR
        if server.state is ServerState.ERROR:
            assert events, "ERROR entered silently"

    def receive_failed(self, exc: ProtocolError, state: ServerState) -> None:
        server = self.server
        if isinstance(exc, LocalProtocolError) and server.error is not exc:
            assert server.state is state  # data after close: refused, nothing changes
            return
        assert server.state is ServerState.ERROR, f"raised {exc!r} in {server.state}"
        assert server.error is exc

    def send_failed(self, exc: ProtocolError, state: ServerState, before: int) -> None:
        server = self.server
        if server.error is not None:
            assert exc is server.error, "an ERROR session raised a new error"
        else:
            assert isinstance(exc, LocalProtocolError), f"{exc!r} from a send"
            assert server.state is state, "a refused call changed the state"
            assert server.next_sequence == before, "a refused call moved next_sequence"

    def send(
        self, call: Callable[[], bytes], *, sequenced: int = 0, omega_empty: bool = False
    ) -> bytes:
        """Make a call that returns bytes to send; check the bytes decode as server packets
        and that `next_sequence` moved by the number of messages sent."""
        server = self.server
        state = server.state
        before = server.next_sequence
        try:
            out = call()
        except ProtocolError as exc:
            self.send_failed(exc, state, before)
            return b""
        assert server.error is None
        self.sent.feed(out)
        count = 0
        while (packet := self.sent.next_packet()) is not None:
            if isinstance(packet, LoginAcceptedPacket):
                assert packet.sequence == server.next_sequence
                assert packet.session == server.session_id
                count = 0
                continue
            if isinstance(packet, SequencedDataPacket) and (
                packet.data or server.dialect is not Dialect.OMEGA
            ):
                count += 1
        assert self.sent.buffered == 0, "a call returned part of a packet"
        # Omega: an empty message is "no more messages" on the wire, which the client does not
        # count; the server must refuse to send it as a message.
        assert not omega_empty, "Omega: an empty message went out as a counted message"
        if state is ServerState.LOGGED_IN:
            assert server.next_sequence == before + max(count, sequenced)
        return out

    def call(self, op: int, r: Reader) -> None:
        server = self.server
        now = self.now
        if op == 0:
            self.receive(r.take(r.byte()))
        elif op in (1, 2, 3):
            self.receive(client_packet(r))
        elif op == 4:  # one packet split at a chosen byte
            raw = client_packet(r)
            cut = r.byte() % (len(raw) + 1)
            self.receive(raw[:cut])
            self.receive(raw[cut:])
        elif op == 5:
            self.now += r.byte() / 16
        elif op == 6:
            self.timer()
        elif op == 7:
            due = server.next_timer()
            if due is not None and due > self.now:
                self.now = due
            self.timer()
        elif op == 8:
            session = r.choice(("SESSION1", "", "S", "BAD ID", "TOOLONGSESSION", "é"))
            sequence = r.number((1, 2, 0, 1000))
            self.send(lambda: server.accept(session, sequence, now))
        elif op == 9:
            reason = r.choice(tuple(RejectReason))
            self.send(lambda: server.reject(reason, now))
        elif op == 10:
            data = r.take(r.byte() % 40)
            omega_empty = not data and server.dialect is Dialect.OMEGA
            self.send(lambda: server.send_sequenced(data, now), omega_empty=omega_empty)
        elif op == 11:
            batch = [r.take(r.byte() % 8) for _ in range(r.byte() % 20)]
            omega_empty = not all(batch) and server.dialect is Dialect.OMEGA
            self.send(lambda: server.send_sequenced_many(batch, now), omega_empty=omega_empty)
        elif op == 12:
            count = r.byte() % 5

            def sent() -> bytes:
                server.sequenced_sent(count, now)
                return b""

            self.send(sent, sequenced=count)
        elif op == 13:
            data = r.take(r.byte() % 40)
            self.send(lambda: server.send_unsequenced(data, now))
        elif op == 14:
            self.send(lambda: server.send_no_more_messages(now))
        elif op == 15:
            text = r.take(r.byte() % 16).decode("latin-1")
            self.send(lambda: server.send_debug(text, now))
        elif op == 16:
            self.send(lambda: server.end_session(now))
        else:
            server.connection_lost()
        due = server.next_timer()
        assert due is None or isinstance(due, float)
        if server.state is ServerState.ERROR:
            assert due is None
            assert server.error is not None

    def timer(self) -> None:
        server = self.server
        try:
            out = server.handle_timer(self.now)
        except SessionTimeout:
            assert server.state is ServerState.CLOSED
            return
        assert out in (b"", _HEARTBEAT), f"handle_timer returned {out!r}"
        due = server.next_timer()
        assert due is None or due > self.now, f"next timer {due} not after {self.now}"


def check(data: bytes) -> None:
    r = Reader(data)
    cfg = r.byte()
    timing = r.byte()
    dialect = Dialect.OMEGA if cfg & 1 else Dialect.SOUPBINTCP
    server = ServerConnectionState(
        0.0,
        heartbeat_interval=(1.0, 0.5, 2.0, 0.25)[timing & 3],
        client_heartbeat_timeout=(15.0, 3.0, 1.0, 0.5)[(timing >> 2) & 3],
        login_timeout=(30.0, 5.0, 1.0, 0.125)[(timing >> 4) & 3],
        dialect=dialect,
        max_packet_length=_CAPS[(cfg >> 1) & 7],
    )
    checker = _Checker(server)
    if cfg & 0x10:  # most interesting inputs start with a login
        checker.receive(LoginRequestPacket("user", "secret", "", 1).encode())
        checker.call(8, r)
    ops = 0
    while not r.done and ops < MAX_OPS:
        checker.call(r.byte() % 18, r)
        ops += 1


def main() -> None:
    run(check)


if __name__ == "__main__":
    main()
