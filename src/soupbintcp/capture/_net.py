"""From a captured frame to the TCP segment or UDP datagram it carries.

Layer 3 (captures), stdlib only. `decode(linktype, packet)` peels the link layer (Ethernet
with or without VLAN tags, Linux cooked, BSD loopback, raw IP), IPv4 or IPv6, and TCP or
UDP; it returns None for anything else (ARP, ICMP, IP fragments). The flow is named by one
`bytes` key, source address + destination address + source port + destination port, which
`endpoints` turns back into text. A snapshot length that cut the packet shows as payload
shorter than the IP header says: `missing` counts the bytes the capture lacks.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Final, NamedTuple

from ._files import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)

__all__ = [
    "ACK",
    "RST",
    "SYN",
    "TCP",
    "UDP",
    "Segment",
    "SegmentTuple",
    "decode",
    "endpoints",
    "flip",
]

TCP: Final = 6
UDP: Final = 17
SYN: Final = 0x02
FIN: Final = 0x01
RST: Final = 0x04
ACK: Final = 0x10
_IPV4: Final = 0x0800
_IPV6: Final = 0x86DD


class Segment(NamedTuple):
    """One TCP segment or UDP datagram as captured (what `decode` returns, as a plain tuple)."""

    protocol: int  # TCP or UDP
    key: bytes  # source address, destination address, source port, destination port
    sequence: int  # TCP: the segment's sequence number; UDP: 0
    flags: int  # TCP flags; UDP: 0
    payload: bytes  # what was captured of the payload
    missing: int  # payload bytes the snapshot length cut off


#: (protocol, key, sequence, flags, payload, missing): a `Segment`'s fields in a plain tuple,
#: which costs a third of a NamedTuple to make (a capture makes one per packet).
SegmentTuple = tuple[int, bytes, int, int, bytes, int]

_IPV4_HEADER: Final = struct.Struct("!BxHxxHxB2x8s").unpack_from  # v/IHL, length, fragment...
_TCP: Final = struct.Struct("!4sIxxxxBB").unpack_from  # ports, sequence, data offset, flags
_UDP: Final = struct.Struct("!4sH").unpack_from  # ports, length


def decode(linktype: int, p: bytes) -> SegmentTuple | None:
    """The TCP segment or UDP datagram in captured frame `p`, or None: not IP, not TCP or
    UDP, an IP fragment, or headers that the capture cut or that are malformed (an IPv4
    header under 20 bytes, a TCP header under 20, a UDP length under 8).

    The compiled twin (`_speedups._core.capture_decode`) follows this line by line; the
    tests hold the two to the same answers on random and hostile frames."""
    n = len(p)
    # The link layer: the EtherType (or its equivalent) and where the IP header starts.
    if linktype == LINKTYPE_ETHERNET:
        if n < 14:
            return None
        ethertype = (p[12] << 8) | p[13]
        off = 14
        while (ethertype == 0x8100 or ethertype == 0x88A8) and n >= off + 4:
            ethertype = (p[off + 2] << 8) | p[off + 3]
            off += 4
    elif linktype == LINKTYPE_NULL:
        if n < 4:
            return None
        family = p[0] | p[3]  # host order on the capturing machine: one byte is nonzero
        ethertype = _IPV4 if family == 2 else _IPV6 if family in (24, 28, 30) else 0
        off = 4
    elif linktype == LINKTYPE_LINUX_SLL:
        if n < 16:
            return None
        ethertype = (p[14] << 8) | p[15]
        off = 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        if n < 20:
            return None
        ethertype = (p[0] << 8) | p[1]
        off = 20
    elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if n < 1:
            return None
        version = p[0] >> 4
        ethertype = _IPV4 if version == 4 else _IPV6 if version == 6 else 0
        off = 0
    else:
        return None
    # IP: the transport protocol, the addresses, where the transport header starts and
    # where the IP packet ends (the capture may hold less: a snapshot length).
    if ethertype == _IPV4:
        if n < off + 20:
            return None
        vihl, total, fragment, protocol, addresses = _IPV4_HEADER(p, off)
        ihl = (vihl & 15) * 4
        if ihl < 20 or fragment & 0x3FFF:
            return None  # malformed; or a fragment: more follow, or it is not the first
        l4 = off + ihl
        end = off + total
    elif ethertype == _IPV6:
        if n < off + 40:
            return None
        end = off + 40 + ((p[off + 4] << 8) | p[off + 5])
        protocol = p[off + 6]
        addresses = p[off + 8 : off + 40]
        l4 = off + 40
    else:
        return None
    if protocol == TCP:
        if n < l4 + 14:
            return None
        ports, sequence, offset, flags = _TCP(p, l4)
        if offset < 0x50:
            return None  # a data offset under 5 words: not a TCP header
        start = l4 + (offset >> 4) * 4
    elif protocol == UDP:
        if n < l4 + 6:
            return None
        ports, length = _UDP(p, l4)
        start = l4 + 8
        if l4 + length < end:
            end = l4 + length
        sequence = flags = 0
    else:
        return None
    if end < start:
        return None
    payload = p[start:end]
    return (protocol, addresses + ports, sequence, flags, payload, end - start - len(payload))


def flip(key: bytes) -> bytes:
    """The key of the other direction of the same flow."""
    half = (len(key) - 4) // 2
    return key[half : 2 * half] + key[:half] + key[-2:] + key[-4:-2]


def endpoints(key: bytes) -> tuple[str, str]:
    """("source:port", "destination:port") of a flow key."""
    half = (len(key) - 4) // 2
    src = ipaddress.ip_address(key[:half])
    dst = ipaddress.ip_address(key[half : 2 * half])
    fmt = "{}:{}" if half == 4 else "[{}]:{}"
    return (
        fmt.format(src, int.from_bytes(key[-4:-2], "big")),
        fmt.format(dst, int.from_bytes(key[-2:], "big")),
    )
