"""A packet's headers as netlab knows them, and how they are read from its first bytes.

Below both :mod:`netlab.traffic` (which reads the frames it sent) and :mod:`netlab.tracers`
(bpftrace copies out a dropped skb's first bytes; every tracer reports a :class:`Packet`), so
neither imports the other for them. What a packet's first bytes say: addresses, ports, TTL,
TCP flags, ICMP type and netlab's marker.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, replace

from netlab import marker


@dataclass(frozen=True)
class Packet:
    """What is known about a dropped packet's headers (any field may be unknown: only tracers
    that read the packet, bpftrace, fill more than the protocol)."""

    protocol: int | None = None
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    l4: str | None = None
    marker: str | None = None
    length: int | None = None
    #: IPv4 TTL or IPv6 hop limit
    ttl: int | None = None
    #: "SYN", "SYN,ACK", ... for TCP
    tcp_flags: str | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None

    def __str__(self) -> str:
        if self.src is None:
            return f"proto {self.protocol:#06x}" if self.protocol is not None else "?"
        ports = f":{self.sport}" if self.sport is not None else ""
        dports = f":{self.dport}" if self.dport is not None else ""
        text = f"{self.l4 or ''} {self.src}{ports} > {self.dst}{dports}".strip()
        if self.tcp_flags:
            text += f" [{self.tcp_flags}]"
        if self.icmp_type is not None:
            text += f" type {self.icmp_type} code {self.icmp_code}"
        if self.ttl is not None:
            text += f" ttl {self.ttl}"
        if self.length is not None:
            text += f" len {self.length}"
        return text


def packet_of(data: bytes, protocol: int, link: bool = True, length: int | None = None) -> Packet:
    """Addresses, ports, TTL, TCP flags, ICMP type and marker from bytes starting at the MAC
    header (``link``) or, for packets that never had one (locally generated, dropped before
    transmit), the IP header; ``length`` is the skb's."""
    found = marker.find(data)
    base = Packet(protocol=protocol, marker=str(found) if found else None, length=length)
    if link:
        if len(data) < 14:
            return base
        ethertype, l3 = struct.unpack_from("!H", data, 12)[0], data[14:]
    else:
        ethertype, l3 = {0x40: 0x0800, 0x60: 0x86DD}.get(data[0] & 0xF0, protocol) if data else protocol, data
    try:
        if ethertype == 0x0800 and len(l3) >= 20:
            ihl = (l3[0] & 0x0F) * 4
            src, dst = str(ipaddress.IPv4Address(l3[12:16])), str(ipaddress.IPv4Address(l3[16:20]))
            return _transport(replace(base, src=src, dst=dst, ttl=l3[8]), l3[9], l3[ihl:])
        if ethertype == 0x86DD and len(l3) >= 40:
            src, dst = str(ipaddress.IPv6Address(l3[8:24])), str(ipaddress.IPv6Address(l3[24:40]))
            return _transport(replace(base, src=src, dst=dst, ttl=l3[7]), l3[6], l3[40:])
    except ValueError:
        pass
    return base


TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")


def _transport(pkt: Packet, proto: int, l4: bytes) -> Packet:
    """The layer-4 facts: ports, TCP flags, ICMP type and code."""
    names = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6"}
    pkt = replace(pkt, l4=names.get(proto, str(proto)))
    if proto in (6, 17) and len(l4) >= 4:
        sport, dport = struct.unpack_from("!HH", l4, 0)
        pkt = replace(pkt, sport=sport, dport=dport)
    if proto == 6 and len(l4) >= 14:
        pkt = replace(pkt, tcp_flags=",".join(n for i, n in enumerate(TCP_FLAGS) if l4[13] & (1 << i)) or "none")
    if proto in (1, 58) and len(l4) >= 2:
        pkt = replace(pkt, icmp_type=l4[0], icmp_code=l4[1])
    return pkt
