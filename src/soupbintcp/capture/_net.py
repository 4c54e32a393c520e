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

__all__ = ["TCP", "UDP", "Segment", "decode", "endpoints", "flip"]

TCP: Final = 6
UDP: Final = 17
SYN: Final = 0x02
FIN: Final = 0x01
RST: Final = 0x04
_IPV4: Final = 0x0800
_IPV6: Final = 0x86DD
_VLAN: Final = (0x8100, 0x88A8)


class Segment(NamedTuple):
    """One TCP segment or UDP datagram as captured."""

    protocol: int  # TCP or UDP
    key: bytes  # source address, destination address, source port, destination port
    sequence: int  # TCP: the segment's sequence number; UDP: 0
    flags: int  # TCP flags; UDP: 0
    payload: bytes  # what was captured of the payload
    missing: int  # payload bytes the snapshot length cut off


def _network(linktype: int, p: bytes) -> tuple[int, int]:
    """(ethertype, offset of the IP header), or (0, 0) for what is not IP."""
    if linktype == LINKTYPE_ETHERNET:
        ethertype = (p[12] << 8) | p[13]
        off = 14
        while ethertype in _VLAN and len(p) >= off + 4:
            ethertype = (p[off + 2] << 8) | p[off + 3]
            off += 4
        return ethertype, off
    if linktype == LINKTYPE_NULL:
        family = p[0] | p[3]  # host order on the capturing machine: one byte is nonzero
        return (_IPV4 if family == 2 else _IPV6 if family in (24, 28, 30) else 0), 4
    if linktype == LINKTYPE_LINUX_SLL:
        return (p[14] << 8) | p[15], 16
    if linktype == LINKTYPE_LINUX_SLL2:
        return (p[0] << 8) | p[1], 20
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        version = p[0] >> 4
        return (_IPV4 if version == 4 else _IPV6 if version == 6 else 0), 0
    return 0, 0


#: Ethernet + IPv4 in one call: EtherType, version/IHL, total length, flags/fragment offset,
#: protocol, source and destination addresses.
_ETH_IPV4: Final = struct.Struct("!12xHBxH2xHxB2x8s").unpack_from
_TCP: Final = struct.Struct("!4sIxxxxBB").unpack_from  # ports, sequence, data offset, flags
_UDP: Final = struct.Struct("!4sH").unpack_from  # ports, length


def decode(linktype: int, p: bytes) -> Segment | None:
    """The TCP segment or UDP datagram in captured frame `p`, or None."""
    try:
        if linktype == LINKTYPE_ETHERNET and len(p) >= 34:
            # The common case, one struct call for both headers.
            ethertype, vihl, total, fragment, protocol, addresses = _ETH_IPV4(p)
            if ethertype == _IPV4 and vihl >> 4 == 4:
                if fragment & 0x3FFF:
                    return None  # a fragment: more follow, or it is not the first
                l4 = 14 + (vihl & 15) * 4
                return _transport(p, protocol, addresses, l4, 14 + total)
        ethertype, off = _network(linktype, p)
        if ethertype == _IPV4:
            ihl = (p[off] & 15) * 4
            if ((p[off + 6] << 8) | p[off + 7]) & 0x3FFF:
                return None
            end = off + ((p[off + 2] << 8) | p[off + 3])
            return _transport(p, p[off + 9], p[off + 12 : off + 20], off + ihl, end)
        if ethertype == _IPV6:
            end = off + 40 + ((p[off + 4] << 8) | p[off + 5])
            return _transport(p, p[off + 6], p[off + 8 : off + 40], off + 40, end)
    except (IndexError, struct.error):
        pass  # cut inside the headers: nothing can be said about it
    return None


def _transport(p: bytes, protocol: int, addresses: bytes, l4: int, end: int) -> Segment | None:
    if protocol == TCP:
        ports, sequence, offset, flags = _TCP(p, l4)
        start = l4 + (offset >> 4) * 4
    elif protocol == UDP:
        ports, length = _UDP(p, l4)
        start = l4 + 8
        end = min(end, l4 + length)
        sequence = flags = 0
    else:
        return None
    if end < start:
        return None
    payload = p[start:end]
    return Segment(
        protocol, addresses + ports, sequence, flags, payload, end - start - len(payload)
    )


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
