"""Packet recipes: the frames the project exists to send, built with scapy.

Each recipe turns a :class:`FrameSpec` into ``count`` frames, every one carrying a marker
(run id + sequence number) in its payload. Malformations (``bad``) are applied to the built
bytes, and when one header field is broken on purpose the IPv4 header checksum is recomputed,
so the kernel fails exactly the check the user asked for and not an earlier one:

* ``ip-csum``: wrong IPv4 header checksum             (IP_CSUM)
* ``l4-csum``: wrong UDP/TCP/ICMP checksum            (UDP_CSUM, TCP_CSUM, ...)
* ``ihl``: IPv4 header length 4 (< 5)                 (IP_INHDR)
* ``tot-len``: IPv4 total length larger than the frame (PKT_TOO_SMALL)
* ``truncated``: frame cut inside the IP header        (PKT_TOO_SMALL / IP_INHDR)
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import LLC, STP, Dot3, Ether
from scapy.packet import Raw
from scapy.utils import checksum

from netlab.errors import NetlabError
from netlab.marker import Marker

STP_MAC = "01:80:c2:00:00:00"
PAUSE_MAC = "01:80:c2:00:00:01"
BROADCAST = "ff:ff:ff:ff:ff:ff"
MALFORMATIONS = ("ip-csum", "l4-csum", "ihl", "tot-len", "truncated")


@dataclass(frozen=True)
class FrameSpec:
    """Everything a recipe needs; addresses already resolved."""

    src_mac: str
    run: int
    count: int = 1
    dst_mac: str | None = None
    src_ip: str | None = None
    dst_ip: str | None = None
    sport: int = 40000
    dport: int = 9999
    ethertype: int = 0x88B5
    ttl: int = 64
    tcp_flags: str = "S"
    payload: int = 0
    bad: str | None = None


def _payload(spec: FrameSpec, seq: int, minimum: int = 0) -> bytes:
    data = Marker(spec.run, seq).encode()
    return data + bytes(max(spec.payload, minimum) - len(data)) if max(spec.payload, minimum) > len(data) else data


def _stp(spec: FrameSpec, seq: int, *, rstp: bool = False) -> bytes:

    bpdu = STP(version=2, bpdutype=0x02, bpduflags=0x3C) if rstp else STP()
    extra = b"\x00" if rstp else b""  # RSTP: version 1 length
    frame = Dot3(dst=spec.dst_mac or STP_MAC, src=spec.src_mac) / LLC(dsap=0x42, ssap=0x42, ctrl=3) / bpdu
    return bytes(frame / Raw(extra + _payload(spec, seq)))


def _ethertype(spec: FrameSpec, seq: int) -> bytes:

    return bytes(
        Ether(dst=spec.dst_mac or BROADCAST, src=spec.src_mac, type=spec.ethertype) / Raw(_payload(spec, seq, 46))
    )


def _pause(spec: FrameSpec, seq: int) -> bytes:

    body = struct.pack("!HH", 0x0001, 0xFFFF) + _payload(spec, seq, 42)
    return bytes(Ether(dst=spec.dst_mac or PAUSE_MAC, src=spec.src_mac, type=0x8808) / Raw(body))


def _ip(spec: FrameSpec) -> Any:  # scapy layers are untyped

    if spec.dst_ip is None:
        raise NetlabError("this recipe needs --dst ADDRESS")
    if ipaddress.ip_address(spec.dst_ip).version == 6:
        return IPv6(src=spec.src_ip, dst=spec.dst_ip, hlim=spec.ttl)
    return IP(src=spec.src_ip, dst=spec.dst_ip, ttl=spec.ttl)


def _ether(spec: FrameSpec) -> Any:

    if spec.dst_mac is None:
        raise NetlabError("no destination MAC for this frame (pass --dst-mac)")
    return Ether(dst=spec.dst_mac, src=spec.src_mac)


def _udp(spec: FrameSpec, seq: int) -> bytes:

    return bytes(_ether(spec) / _ip(spec) / UDP(sport=spec.sport, dport=spec.dport) / Raw(_payload(spec, seq)))


def _icmp(spec: FrameSpec, seq: int) -> bytes:

    ip = _ip(spec)
    echo = (
        ICMPv6EchoRequest(id=spec.run & 0xFFFF, seq=seq)
        if spec.dst_ip and ":" in spec.dst_ip
        else ICMP(type=8, id=spec.run & 0xFFFF, seq=seq & 0xFFFF)
    )
    return bytes(_ether(spec) / ip / echo / Raw(_payload(spec, seq)))


def _tcp(spec: FrameSpec, seq: int) -> bytes:

    segment = TCP(sport=spec.sport, dport=spec.dport, flags=spec.tcp_flags, seq=(spec.run + seq) & 0xFFFFFFFF)
    return bytes(_ether(spec) / _ip(spec) / segment / Raw(_payload(spec, seq)))


@dataclass(frozen=True)
class Recipe:
    """A named way to build frames."""

    name: str
    build: Callable[[FrameSpec, int], bytes]
    needs_ip: bool
    summary: str


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("stp", _stp, False, "802.3/LLC/STP configuration BPDU to 01:80:c2:00:00:00"),
        Recipe("rstp", lambda s, i: _stp(s, i, rstp=True), False, "802.3/LLC/RSTP BPDU (version 2)"),
        Recipe("ethertype", _ethertype, False, "Ethernet II frame with any ethertype (--ethertype), broadcast"),
        Recipe("pause", _pause, False, "802.3x MAC control PAUSE frame to 01:80:c2:00:00:01"),
        Recipe("udp", _udp, True, "UDP datagram (IPv4 or IPv6 by --dst)"),
        Recipe("icmp", _icmp, True, "ICMP / ICMPv6 echo request"),
        Recipe("tcp-syn", _tcp, True, "TCP segment, SYN unless --tcp-flags says otherwise"),
    )
}


def recipe(name: str) -> Recipe:
    """The recipe called ``name``; the error lists the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise NetlabError(f"unknown recipe '{name}' (known: {', '.join(RECIPES)})") from None


def _fix_ipv4_checksum(frame: bytearray, ihl: int) -> None:
    frame[24:26] = b"\x00\x00"
    frame[24:26] = struct.pack("!H", checksum(bytes(frame[14 : 14 + ihl * 4])))


def malform(frame: bytes, bad: str) -> bytes:
    """Break ``frame`` (Ethernet + IP) the way ``bad`` names."""
    data = bytearray(frame)
    ethertype = struct.unpack_from("!H", data, 12)[0]
    v4 = ethertype == 0x0800
    if bad == "truncated":
        return bytes(data[: 14 + (10 if v4 else 20)])
    if bad == "l4-csum":
        ihl = (data[14] & 0x0F) * 4 if v4 else 40
        proto = data[23] if v4 else data[20]
        offset = {17: 6, 6: 16, 1: 2, 58: 2}.get(proto)
        if offset is None:
            raise NetlabError("l4-csum needs a UDP, TCP or ICMP packet")
        at = 14 + ihl + offset
        value = (struct.unpack_from("!H", data, at)[0] + 1) & 0xFFFF
        struct.pack_into("!H", data, at, value or 1)
        return bytes(data)
    if not v4:
        raise NetlabError(f"'{bad}' applies to IPv4 packets only")
    ihl = data[14] & 0x0F
    if bad == "ip-csum":
        struct.pack_into("!H", data, 24, (struct.unpack_from("!H", data, 24)[0] + 1) & 0xFFFF or 1)
    elif bad == "ihl":
        data[14] = 0x44
        _fix_ipv4_checksum(data, 4)
    elif bad == "tot-len":
        struct.pack_into("!H", data, 16, len(data) - 14 + 64)
        _fix_ipv4_checksum(data, ihl)
    else:
        raise NetlabError(f"unknown malformation '{bad}' (known: {', '.join(MALFORMATIONS)})")
    return bytes(data)


def build(name: str, spec: FrameSpec) -> list[bytes]:
    """``spec.count`` frames of recipe ``name``, markers numbered from 0."""
    r = recipe(name)
    if spec.bad and not r.needs_ip:
        raise NetlabError(f"--bad applies to IP recipes (udp, icmp, tcp-syn), not '{name}'")
    frames = [r.build(spec, seq) for seq in range(spec.count)]
    if spec.bad:
        frames = [malform(f, spec.bad) for f in frames]
    return frames
