"""SoupBinTCP packets: one frozen class per packet type, each encoding and decoding itself.

Layer 1 (wire): bytes in, packets out. No state, no clock. The type byte, `frame()` and the
Sequenced Data frames without packet objects are `_encoding`'s (re-exported here).

Every packet on the wire is a 2-byte big-endian length (of what follows it), a 1-byte packet
type and a payload. Field layouts are the tables of SoupBinTCP 4.10, section 2; offsets in the
comments are offsets in the whole packet, as in the spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Final, Self

from .._errors import LocalProtocolError, RejectReason, RemoteProtocolError
from ._encoding import (
    MAX_PAYLOAD_LENGTH,
    PacketType,
    frame,
    sequenced_frame,
    sequenced_frames,
)
from ._encoding import pure_sequenced_frames as pure_sequenced_frames
from ._fields import (
    SESSION_LEN,
    ascii_field,
    numeric_field,
    parse_number,
    parse_session,
    parse_text,
    session_field,
)

__all__ = [
    "CLIENT_PACKETS",
    "LOGIN_REQUEST_PAYLOAD_400",
    "LOGIN_REQUEST_PAYLOAD_410",
    "MAX_PAYLOAD_LENGTH",
    "SERVER_PACKETS",
    "ClientHeartbeat",
    "ClientHeartbeatPacket",
    "Debug",
    "DebugPacket",
    "EndOfSession",
    "EndOfSessionPacket",
    "LoginAccepted",
    "LoginAcceptedPacket",
    "LoginReject",
    "LoginRejectedPacket",
    "LoginRequest",
    "LoginRequestPacket",
    "LogoutRequest",
    "LogoutRequestPacket",
    "Packet",
    "PacketType",
    "SequencedData",
    "SequencedDataPacket",
    "ServerHeartbeat",
    "ServerHeartbeatPacket",
    "UnsequencedData",
    "UnsequencedDataPacket",
    "decode_packet",
    "frame",
    "parse_session",
    "sequenced_frame",
    "sequenced_frames",
    "session_field",
]


LOGIN_REQUEST_PAYLOAD_400: Final = 46
LOGIN_REQUEST_PAYLOAD_410: Final = 51

_USERNAME_LEN: Final = 6
_PASSWORD_LEN: Final = 10
_SEQUENCE_LEN: Final = 20
_HEARTBEAT_TIMEOUT_LEN: Final = 5
_MAX_SEQUENCE: Final = 10**_SEQUENCE_LEN - 1
_MAX_HEARTBEAT_TIMEOUT: Final = 10**_HEARTBEAT_TIMEOUT_LEN - 1


def _expect_length(cls: type[Packet], payload: bytes, *lengths: int) -> None:
    if len(payload) not in lengths:
        want = " or ".join(str(n) for n in lengths)
        raise RemoteProtocolError(
            f"{cls.__name__.removesuffix('Packet')} payload is {len(payload)} bytes, "
            f"the spec says {want}"
        )


# --- packets -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Packet:
    """Base of all packets. `encode()` gives the whole packet, length prefix included."""

    packet_type: ClassVar[PacketType]

    def payload(self) -> bytes:
        """The packet's payload: everything after the type byte."""
        return b""

    def encode(self) -> bytes:
        """The packet as it goes on the wire: length, type and payload."""
        return frame(self.packet_type, self.payload())

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        """Build the packet from its payload (the bytes after the type byte)."""
        _expect_length(cls, payload, 0)
        return cls()


@dataclass(frozen=True, slots=True)
class DebugPacket(Packet):
    """ "+": free-form human-readable text, either direction; applications ignore it."""

    packet_type: ClassVar[PacketType] = PacketType.DEBUG
    text: str = ""

    def payload(self) -> bytes:
        try:
            return self.text.encode("ascii")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"debug text {self.text!r} is not ASCII") from None

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        # DebugPacket text is only ever logged: never fail on it.
        return cls(payload.decode("ascii", errors="replace"))


@dataclass(frozen=True, slots=True)
class LoginAcceptedPacket(Packet):
    """ "A": the session now logged into and the sequence number of the next Sequenced Data."""

    packet_type: ClassVar[PacketType] = PacketType.LOGIN_ACCEPTED
    session: str
    sequence: int

    def payload(self) -> bytes:
        # offset 3: Session, 10, left padded; offset 13: Sequence Number, 20, left padded
        return session_field(self.session) + numeric_field(
            "sequence number", self.sequence, _SEQUENCE_LEN
        )

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        _expect_length(cls, payload, SESSION_LEN + _SEQUENCE_LEN)
        return cls(
            parse_session(payload[:SESSION_LEN]),
            parse_number("sequence number", payload[SESSION_LEN:]),
        )


@dataclass(frozen=True, slots=True)
class LoginRejectedPacket(Packet):
    """ "J": the login was refused; the server closes the connection after it."""

    packet_type: ClassVar[PacketType] = PacketType.LOGIN_REJECTED
    reason: RejectReason

    def payload(self) -> bytes:
        return RejectReason(self.reason).value.encode("ascii")

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        _expect_length(cls, payload, 1)
        try:
            return cls(RejectReason(payload.decode("latin-1")))
        except ValueError:
            raise RemoteProtocolError(f"unknown login reject reason code {payload!r}") from None


@dataclass(frozen=True, slots=True)
class _DataPacket(Packet):
    """A packet whose payload is one higher-level message, any bytes."""

    data: bytes

    def payload(self) -> bytes:
        return self.data

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        return cls(payload)


@dataclass(frozen=True, slots=True)
class SequencedDataPacket(_DataPacket):
    """ "S": one sequenced message; its number is implied by counting."""

    packet_type: ClassVar[PacketType] = PacketType.SEQUENCED_DATA


@dataclass(frozen=True, slots=True)
class UnsequencedDataPacket(_DataPacket):
    """ "U": one unsequenced message, either direction, best effort."""

    packet_type: ClassVar[PacketType] = PacketType.UNSEQUENCED_DATA


@dataclass(frozen=True, slots=True)
class ServerHeartbeatPacket(Packet):
    """ "H": the server had nothing to send for a second."""

    packet_type: ClassVar[PacketType] = PacketType.SERVER_HEARTBEAT


@dataclass(frozen=True, slots=True)
class EndOfSessionPacket(Packet):
    """ "Z": the session is over; no more messages will be in it."""

    packet_type: ClassVar[PacketType] = PacketType.END_OF_SESSION


@dataclass(frozen=True, slots=True)
class LoginRequestPacket(Packet):
    """ "L": the first packet of every connection.

    `heartbeat_timeout_ms` is the SoupBinTCP 4.10 field; `None` encodes the 4.00 packet
    (payload 46 bytes), a number the 4.10 packet (payload 51 bytes).
    """

    packet_type: ClassVar[PacketType] = PacketType.LOGIN_REQUEST
    username: str
    password: str = field(repr=False)  # never in a log line by accident
    session: str = ""
    sequence: int = 0
    heartbeat_timeout_ms: int | None = None

    def __post_init__(self) -> None:
        self.payload()  # validate eagerly: a request that cannot be encoded is not built

    def payload(self) -> bytes:
        # offset 3: Username 6 / 9: Password 10 (right padded) / 19: Requested Session 10
        # / 29: Requested Sequence Number 20 / 49: Heartbeat Timeout 5 (4.10 only)
        out = (
            ascii_field("username", self.username, _USERNAME_LEN, left_pad=False)
            + ascii_field("password", self.password, _PASSWORD_LEN, left_pad=False)
            + session_field(self.session)
            + numeric_field("requested sequence number", self.sequence, _SEQUENCE_LEN)
        )
        if self.heartbeat_timeout_ms is not None:
            out += numeric_field(
                "heartbeat timeout", self.heartbeat_timeout_ms, _HEARTBEAT_TIMEOUT_LEN
            )
        return out

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        _expect_length(cls, payload, LOGIN_REQUEST_PAYLOAD_400, LOGIN_REQUEST_PAYLOAD_410)
        timeout = None
        if len(payload) == LOGIN_REQUEST_PAYLOAD_410:
            timeout = parse_number("heartbeat timeout", payload[46:51])
        try:
            return cls(
                parse_text("username", payload[0:6]),
                parse_text("password", payload[6:16]),
                parse_session(payload[16:26]),
                parse_number("requested sequence number", payload[26:46]),
                timeout,
            )
        except LocalProtocolError as exc:  # pragma: no cover - parsing already checked fields
            raise RemoteProtocolError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class ClientHeartbeatPacket(Packet):
    """ "R": the client had nothing to send for a second."""

    packet_type: ClassVar[PacketType] = PacketType.CLIENT_HEARTBEAT


@dataclass(frozen=True, slots=True)
class LogoutRequestPacket(Packet):
    """ "O": the client asks the server to end the connection."""

    packet_type: ClassVar[PacketType] = PacketType.LOGOUT_REQUEST


#: Packets a client may receive, by type byte.
SERVER_PACKETS: Final[dict[int, type[Packet]]] = {
    cls.packet_type: cls
    for cls in (
        DebugPacket,
        LoginAcceptedPacket,
        LoginRejectedPacket,
        SequencedDataPacket,
        UnsequencedDataPacket,
        ServerHeartbeatPacket,
        EndOfSessionPacket,
    )
}
#: Packets a server may receive, by type byte.
CLIENT_PACKETS: Final[dict[int, type[Packet]]] = {
    cls.packet_type: cls
    for cls in (
        DebugPacket,
        LoginRequestPacket,
        UnsequencedDataPacket,
        ClientHeartbeatPacket,
        LogoutRequestPacket,
    )
}


def decode_packet(data: bytes, table: dict[int, type[Packet]] | None = None) -> Packet:
    """Decode exactly one whole packet (length prefix included).

    `table` restricts the accepted types (`SERVER_PACKETS` for what a client may receive,
    `CLIENT_PACKETS` for what a server may receive); by default both are accepted, with
    "U" decoded as `UnsequencedDataPacket`.
    """
    if len(data) < 3:
        raise RemoteProtocolError(f"a packet needs at least 3 bytes, got {len(data)}")
    n = (data[0] << 8) | data[1]
    if n + 2 != len(data):
        raise RemoteProtocolError(
            f"packet length field says {n} bytes follow, but {len(data) - 2} do"
        )
    cls = (table if table is not None else _ALL_PACKETS).get(data[2])
    if cls is None:
        raise RemoteProtocolError(f"unexpected packet type {bytes(data[2:3])!r} at offset 2")
    return cls.decode_payload(bytes(data[3:]))


_ALL_PACKETS: Final = {**SERVER_PACKETS, **CLIENT_PACKETS}

# The names the package's own modules were written with (before the packets were named
# `...Packet`, issue 23): kept so the layers above, and code written against 0.1, still
# import them. The public names are in `soupbintcp.lowlevel`.
Debug = DebugPacket
LoginAccepted = LoginAcceptedPacket
LoginReject = LoginRejectedPacket
SequencedData = SequencedDataPacket
UnsequencedData = UnsequencedDataPacket
ServerHeartbeat = ServerHeartbeatPacket
EndOfSession = EndOfSessionPacket
LoginRequest = LoginRequestPacket
ClientHeartbeat = ClientHeartbeatPacket
LogoutRequest = LogoutRequestPacket
