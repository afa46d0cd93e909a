"""What a packet's first bytes say: addresses, ports, TTL, TCP flags, ICMP type and netlab's
marker. Read from the bytes bpftrace copies out of a dropped skb, and from the frames netlab
itself sent (:mod:`netlab.traffic.sent`)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import replace

from netlab import marker
from netlab.tracers.events import Packet


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
