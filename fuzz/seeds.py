"""Hand-written seed inputs for each target: valid streams and sessions in the targets' input
languages. `python -m fuzz.seeds` (re)writes them as fuzz/corpus/<target>/seed-<name>.

Every packet type appears; logins of both lengths; runs of sequenced data; the Omega empty S.
"""

from __future__ import annotations

from typing import Final

from soupbintcp import RejectReason
from soupbintcp.lowlevel import (
    ClientHeartbeatPacket,
    DebugPacket,
    EndOfSessionPacket,
    LoginAcceptedPacket,
    LoginRejectedPacket,
    LoginRequestPacket,
    LogoutRequestPacket,
    SequencedDataPacket,
    ServerHeartbeatPacket,
    UnsequencedDataPacket,
)

from ._common import CORPUS

__all__ = ["TARGETS", "seeds", "write"]

TARGETS: Final = ("fuzz_decoder", "fuzz_client_session", "fuzz_server_session")

_A1: Final = LoginAcceptedPacket("SESSION1", 1).encode()
_L400: Final = LoginRequestPacket("user", "secret", "", 1).encode()
_L410: Final = LoginRequestPacket("user", "secret", "SESSION1", 1, 2500).encode()
_S: Final = b"".join(SequencedDataPacket(bytes([i]) * i).encode() for i in range(1, 6))
_S_EMPTY: Final = SequencedDataPacket(b"").encode()
_SERVER_ALL: Final = (
    DebugPacket("hello").encode()
    + _A1
    + _S
    + UnsequencedDataPacket(b"u1").encode()
    + ServerHeartbeatPacket().encode()
    + SequencedDataPacket(b"x" * 300).encode()
    + EndOfSessionPacket().encode()
)
_CLIENT_ALL: Final = (
    _L410
    + DebugPacket("hi").encode()
    + UnsequencedDataPacket(b"order").encode()
    + ClientHeartbeatPacket().encode()
    + LogoutRequestPacket().encode()
)


def _feed(raw: bytes) -> bytes:
    """Session-target operations that feed `raw` as it is (op 0, up to 255 bytes each)."""
    out = b""
    for i in range(0, len(raw), 255):
        part = raw[i : i + 255]
        out += bytes((0, len(part))) + part
    return out


def _decoder(cfg: int, sizes: bytes, stream: bytes) -> bytes:
    return bytes((cfg, len(sizes))) + sizes + stream


# fuzz_decoder cfg: bit 0 server, bit 1 Omega, bits 2-4 cap index, bits 5-6 batch mode.
_SERVER, _OMEGA, _BATCH, _DRAIN = 1, 2, 1 << 5, 2 << 5
# client cfg: bit 0 Omega, bits 1-2 sequence (1, 0, 2, 1000), bit 3 session "SESSION1",
# bit 4 4.10 login (reads one byte of timeout / 40 ms), bit 5 log in first.
_C_OMEGA, _C_SEQ0, _C_SESSION, _C_410, _C_LOGIN = 1, 2, 8, 16, 32
# client ops
_ADVANCE, _TIMER, _TO_TIMER, _LOGIN, _UNSEQ, _DEBUG, _LOGOUT, _LOST, _ALIVE = range(6, 15)
_S_RUN, _SPLIT = 4, 5
# server cfg: bit 0 Omega, bits 1-3 cap index, bit 4 login 4.00 + accept first.
_SRV_OMEGA, _SRV_LOGIN = 1, 16
# server ops
_SV_ADVANCE, _SV_TIMER, _SV_TO_TIMER, _ACCEPT, _REJECT, _SEQ, _MANY, _SENT = range(5, 13)
_SV_UNSEQ, _NO_MORE, _SV_DEBUG, _END, _SV_LOST = range(13, 18)


def seeds() -> dict[str, dict[str, bytes]]:
    decoder = {
        "server-all-types": _decoder(_SERVER, b"", _SERVER_ALL),
        "server-all-types-chunked": _decoder(_SERVER | _BATCH, b"\x00\x04\x02", _SERVER_ALL),
        "server-batch-drain": _decoder(_SERVER | _DRAIN, b"\x07", _A1 + _S * 4),
        "server-reject": _decoder(
            _SERVER, b"\x01", LoginRejectedPacket(RejectReason("S")).encode()
        ),
        "omega-empty-s": _decoder(
            _SERVER | _OMEGA | _BATCH, b"\x02\x05", _A1 + _S + _S_EMPTY + _S + _S_EMPTY
        ),
        "omega-capped": _decoder(_SERVER | _OMEGA | (6 << 2), b"\x03", _A1 + _S + _S_EMPTY),
        "client-login-400": _decoder(0, b"", _L400),
        "client-login-410-chunked": _decoder(0, b"\x00\x01\x09", _CLIENT_ALL),
        "client-capped": _decoder(
            5 << 2, b"\x05", _L410 + UnsequencedDataPacket(b"x" * 60).encode()
        ),
        "client-omega": _decoder(_OMEGA, b"\x02", _L400 + ClientHeartbeatPacket().encode()),
    }
    client = {
        "stream": bytes((_C_LOGIN, 0)) + _feed(_SERVER_ALL[8:]),
        "debug-then-accept": bytes((_C_LOGIN, 0)) + _feed(_SERVER_ALL),
        "omega": bytes((_C_OMEGA | _C_LOGIN, 0)) + _feed(_A1 + _S + _S_EMPTY + _S + _S_EMPTY),
        "rejected": bytes((_C_LOGIN, 0)) + _feed(LoginRejectedPacket(RejectReason("A")).encode()),
        "login-410": bytes((_C_410 | _C_LOGIN, 0, 50)) + _feed(_A1 + _S),
        "resume-duplicates": bytes((_C_LOGIN, 0))
        + _feed(_A1 + _S)
        + bytes((_LOST, _LOGIN))
        + _feed(LoginAcceptedPacket("SESSION1", 3).encode() + _S),
        "resume-gap": bytes((_C_LOGIN | _C_SESSION, 0))
        + _feed(_A1 + _S[:8])
        + bytes((_LOST, _LOGIN))
        + _feed(LoginAcceptedPacket("SESSION1", 9).encode()),
        "resume-other-session": bytes((_C_LOGIN, 0))
        + _feed(_A1)
        + bytes((_LOST, _LOGIN))
        + _feed(LoginAcceptedPacket("OTHER", 1).encode()),
        "sequence-0": bytes((_C_LOGIN | _C_SEQ0, 0))
        + _feed(LoginAcceptedPacket("SESSION1", 70).encode() + _S),
        "s-run-split": bytes((_C_LOGIN, 0))
        + _feed(_A1)
        + bytes((_S_RUN, 20) + (3, 0x61, 0x62, 0x63) * 20)
        + bytes((_SPLIT, 2, 9, 2)),
        "heartbeats": bytes((_C_LOGIN, 0x05))
        + _feed(_A1)
        + bytes((_ADVANCE, 12, _TIMER, _TO_TIMER, _TO_TIMER, _UNSEQ, 2, 0x61, 0x62))
        + bytes((_TO_TIMER, _ALIVE, _TO_TIMER, _TO_TIMER, _TO_TIMER, _TO_TIMER)),
        "heartbeat-timeout": bytes((_C_LOGIN, 0x08)) + _feed(_A1) + bytes((_TO_TIMER,) * 8),
        "login-timeout": bytes((_C_LOGIN, 0x30, _TO_TIMER, _LOGIN, _TO_TIMER)),
        "logout": bytes((_C_LOGIN, 0))
        + _feed(_A1 + _S)
        + bytes((_DEBUG, 3, 0x61, 0x62, 0x63, _LOGOUT))
        + _feed(_S + EndOfSessionPacket().encode())
        + bytes((_LOST, _LOGIN)),
    }
    # op 1, kind 0: a Login Request 4.00 built field by field ("user", "secret", blank, "1");
    # op 1, kind 2: LoginRequest("user", "secret", "", 1, 2500) built by the library.
    login_fields = bytes((1, 0, 0, 0, 0, 1, 3, 1, 0, 1))
    login_410 = bytes((1, 2, 0, 1, 3))
    server = {
        "full": bytes((_SRV_LOGIN, 0, 0, 0))
        + bytes((_SEQ, 3, 0x61, 0x62, 0x63, _MANY, 3, 1, 0x61, 2, 0x62, 0x63, 0, _SENT, 4))
        + bytes((_SV_UNSEQ, 1, 0x75, _SV_DEBUG, 2, 0x68, 0x69))
        + _feed(UnsequencedDataPacket(b"order").encode() + ClientHeartbeatPacket().encode())
        + _feed(DebugPacket("x").encode())
        + bytes((_END,))
        + _feed(LogoutRequestPacket().encode()),
        "login-410": bytes((0, 0)) + _feed(_L410) + bytes((_ACCEPT, 0, 0) + (_SV_TO_TIMER,) * 3),
        "login-400-fields": bytes((0, 0)) + login_fields + bytes((_ACCEPT, 1, 4, 0, 9)),
        "login-410-built": bytes((0, 0)) + login_410 + bytes((_ACCEPT, 0, 0, _SEQ, 0)),
        "reject": bytes((0, 0)) + _feed(_L400) + bytes((_REJECT, 1, _SV_LOST)),
        "omega": bytes((_SRV_OMEGA | _SRV_LOGIN, 0, 0, 0))
        + bytes((_SEQ, 1, 0x61, _NO_MORE, _SV_UNSEQ, 0, _END)),
        "capped": bytes((3 << 1, 0))
        + _feed(_L410)
        + bytes((_ACCEPT, 0, 0))
        + _feed(
            UnsequencedDataPacket(b"y" * 10).encode() + UnsequencedDataPacket(b"z" * 60).encode()
        ),
        "login-timeout": bytes((0, 0x10, _SV_ADVANCE, 100, _SV_TIMER)),
        "heartbeat-timeout": bytes((_SRV_LOGIN, 0x04, 0, 0))
        + bytes((_SV_TO_TIMER,) * 4)
        + _feed(ClientHeartbeatPacket().encode())
        + bytes((_SV_TO_TIMER,) * 4),
        "pipelined": bytes((0, 0)) + _feed(_L400 + UnsequencedDataPacket(b"early").encode()),
    }
    return {"fuzz_decoder": decoder, "fuzz_client_session": client, "fuzz_server_session": server}


def write() -> None:
    for target, named in seeds().items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in named.items():
            (folder / f"seed-{name}").write_bytes(data)


if __name__ == "__main__":
    write()
