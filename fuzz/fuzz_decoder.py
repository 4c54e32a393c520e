"""Fuzz target: `PacketDecoder`, both roles, both dialects, any chunking.

Input layout: byte 0 picks the role, the dialect, the length cap and the API mix; byte 1 says
how many chunk-size bytes follow; the rest is the stream. The rule: decoding either hands out
packets or raises `RemoteProtocolError`, and what comes out does not depend on the chunking.

Run: `python -m fuzz.fuzz_decoder fuzz/corpus/fuzz_decoder` (libFuzzer options after it).
"""

from __future__ import annotations

from typing import Final

from soupbintcp import Dialect, LocalProtocolError, RemoteProtocolError
from soupbintcp._wire._packets import CLIENT_PACKETS, SERVER_PACKETS
from soupbintcp.lowlevel import Packet, PacketDecoder, Role, SequencedDataPacket, decode_packet

from ._common import run

__all__ = ["check", "decode_all"]

_CAPS: Final = (0xFFFF, 0xFFFF, 1, 4, 31, 52, 100, 0xFFFE)
_OMEGA_FORBIDDEN: Final = frozenset(b"UZ")

Outcome = tuple[list[Packet], str | None]


def _table(role: Role, dialect: Dialect) -> frozenset[int]:
    types = frozenset(SERVER_PACKETS if role is Role.SERVER else CLIENT_PACKETS)
    if role is Role.SERVER and dialect is Dialect.OMEGA:
        types -= _OMEGA_FORBIDDEN
    return types


def decode_all(
    stream: bytes,
    role: Role,
    dialect: Dialect,
    cap: int,
    sizes: list[int],
    batch_mode: int,
) -> Outcome:
    """Packets decoded from `stream` fed in chunks of `sizes` (cycled; [] = one chunk), and
    the message of the error that stopped decoding, if one did. Checks the decoder's own
    promises on the way."""
    decoder = PacketDecoder(role, dialect=dialect, max_packet_length=cap)
    table = SERVER_PACKETS if role is Role.SERVER else CLIENT_PACKETS
    allowed = _table(role, dialect)
    packets: list[Packet] = []
    fed = 0
    i = 0
    use_batch = batch_mode != 0 and role is Role.SERVER
    while fed < len(stream):
        size = sizes[i % len(sizes)] if sizes else len(stream)
        i += 1
        decoder.feed(stream[fed : fed + size])
        fed = min(len(stream), fed + size)
        assert decoder.offset + decoder.buffered == fed, "offset + buffered != bytes fed"
        try:
            while True:
                if use_batch:
                    start = decoder.offset
                    payloads = decoder.next_sequenced_payloads()
                    for payload in payloads:
                        if dialect is Dialect.OMEGA:
                            assert payload, "Omega: an empty S must not be in the batch"
                        assert len(payload) + 1 <= cap, "batch payload over the cap"
                        packets.append(SequencedDataPacket(payload))
                    consumed = sum(len(p) + 3 for p in payloads)
                    assert decoder.offset == start + consumed, "batch consumed wrong bytes"
                    if batch_mode == 2 and payloads:
                        continue  # drain the batch path before a single packet
                start = decoder.offset
                packet = decoder.next_packet()
                if packet is None:
                    assert decoder.offset == start, "None but bytes consumed"
                    break
                end = decoder.offset
                assert packet.packet_type in allowed, f"{packet!r} is not legal from {role}"
                raw = stream[start:end]
                assert len(raw) <= cap + 2, "packet over the cap"
                whole = decode_packet(raw, table)
                assert whole == packet, f"decode_packet({raw!r}) = {whole!r} != {packet!r}"
                try:
                    encoded = packet.encode()
                except LocalProtocolError:
                    pass  # e.g. Debug text with non-ASCII bytes, replaced on decode
                else:
                    assert decode_packet(encoded, table) == packet, f"{packet!r} round trip"
                packets.append(packet)
        except RemoteProtocolError as exc:
            return packets, _fault_sticks(decoder, exc)
        # After the decoder asks for more, what it holds is less than one packet.
        assert decoder.buffered < cap + 2, f"holding {decoder.buffered} bytes of a packet"
    return packets, None


def _fault_sticks(decoder: PacketDecoder, fault: RemoteProtocolError) -> str:
    """The offending bytes stay unconsumed: the decoder raises the same fault again."""
    offset = decoder.offset
    again: str | None = None
    try:
        decoder.next_packet()
    except RemoteProtocolError as second:
        again = str(second)
    assert again == str(fault), "a second call did not raise the same fault"
    assert decoder.offset == offset
    return again


def check(data: bytes) -> None:
    if len(data) < 2:
        return
    cfg = data[0]
    role = Role.SERVER if cfg & 1 else Role.CLIENT
    dialect = Dialect.OMEGA if cfg & 2 else Dialect.SOUPBINTCP
    cap = _CAPS[(cfg >> 2) & 7]
    batch_mode = (cfg >> 5) % 3
    k = data[1] % 8
    sizes = [b % 64 + 1 if b < 192 else b * 8 for b in data[2 : 2 + k]]
    stream = data[2 + k :]
    whole = decode_all(stream, role, dialect, cap, [], 0)
    chunked = decode_all(stream, role, dialect, cap, sizes, batch_mode)
    assert chunked == whole, f"chunking changed the result: {chunked!r} != {whole!r}"


def main() -> None:
    run(check)


if __name__ == "__main__":
    main()
