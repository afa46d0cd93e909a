"""What ip_rcv and friends refuse when a packet arrives at a host (veth-two-ns: no bridge in
between, so the receiving host's own checks are the ones that fire)."""

from __future__ import annotations

from typing import Any

import pytest
from expected import NO_REASONS, located
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from netlab.testing import Drop, Lab, TraceFactory, Traffic, assert_dropped, by_kernel


def martian(reason: str) -> dict[str, Drop]:
    """ip_route_input's martian checks got their own reasons in 6.18's cycle (IP_LOCAL_SOURCE,
    IP_INVALID_SOURCE, IP_INVALID_DEST); 6.1 and 6.12 free the packet as NOT_SPECIFIED."""
    return {
        NO_REASONS: Drop("ip_rcv_finish_core", None, "ns2"),
        "5.17-6.17": Drop("ip_rcv_finish_core", "NOT_SPECIFIED", "ns2"),
        ">=6.18": Drop("ip_rcv_finish_core", reason, "ns2"),
    }


EXPECT = {
    "ip-csum": by_kernel(located("ip_rcv_core", "IP_CSUM", "ns2")),
    "ihl": by_kernel(located("ip_rcv_core", "IP_INHDR", "ns2")),
    "tot-len": by_kernel(located("ip_rcv_core", "PKT_TOO_SMALL", "ns2")),
    "local_source": by_kernel(martian("IP_LOCAL_SOURCE")),
    "invalid_source": by_kernel(martian("IP_INVALID_SOURCE")),
    "invalid_dest": by_kernel(martian("IP_INVALID_DEST")),
    "noproto": by_kernel(located("ip_local_deliver_finish", "IP_NOPROTO", "ns2")),
    "l2_multicast": by_kernel(located("ip_rcv_finish_core", "UNICAST_IN_L2_MULTICAST", "ns2")),
    "ipv6_disabled": by_kernel(located("ip6_rcv_core", "IPV6DISABLED", "ns2")),
    # a martian destination, freed as NOT_SPECIFIED, until IP_LOCALNET in 6.18's cycle
    "localnet": by_kernel(martian("IP_LOCALNET")),
}
pytestmark = pytest.mark.netlab_topology("veth-two-ns")


def to_ns2(traffic: Any, dst_mac: str | None = None) -> Any:
    return Ether(src=traffic.mac("ns1", "veth1"), dst=dst_mac or traffic.mac("ns2", "veth2"))


@pytest.mark.parametrize(
    "bad",
    ["ip-csum", "ihl", "tot-len"],
    ids=["bad-header-checksum", "header-length-below-5", "total-length-beyond-frame"],
)
def test_malformed_ipv4_headers(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory, bad: str) -> None:
    """ip_rcv_core checks every IPv4 header before anything else looks at it: a wrong header
    checksum is IP_CSUM, a header length under 5 words IP_INHDR, and a total length longer
    than the frame PKT_TOO_SMALL (the packet was truncated on the way)."""
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns1", "veth1", "udp", dst="198.51.100.2", bad=bad, count=2)
    assert_dropped(t.result, EXPECT[bad], count=2)


def test_packet_from_my_own_address_is_a_martian(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """A packet arriving from outside with one of the host's own addresses as its source is
    spoofed or looped: the route lookup refuses it (IP_LOCAL_SOURCE)."""
    pkt = to_ns2(netlab_traffic) / IP(src="198.51.100.2", dst="198.51.100.2") / UDP(dport=9) / Raw(b"x" * 20)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", [pkt] * 2)
    assert_dropped(t.result, EXPECT["local_source"], count=2)


def test_multicast_source_address_is_invalid(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """No packet may come *from* a multicast or broadcast address (IP_INVALID_SOURCE)."""
    pkt = to_ns2(netlab_traffic) / IP(src="224.0.0.9", dst="198.51.100.2") / UDP(dport=9) / Raw(b"x" * 20)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", [pkt] * 2)
    assert_dropped(t.result, EXPECT["invalid_source"], count=2)


def test_destination_0_0_0_0_is_invalid(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """0.0.0.0 is never a destination on the wire (IP_INVALID_DEST)."""
    pkt = to_ns2(netlab_traffic) / IP(src="198.51.100.1", dst="0.0.0.0") / UDP(dport=9) / Raw(b"x" * 20)  # noqa: S104
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", [pkt] * 2)
    assert_dropped(t.result, EXPECT["invalid_dest"], count=2)


def test_unknown_ip_protocol(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """IP protocol 253 (experimental) has no handler in the host: it answers with ICMP
    protocol unreachable and drops the packet (IP_NOPROTO)."""
    pkt = to_ns2(netlab_traffic) / IP(src="198.51.100.1", dst="198.51.100.2", proto=253) / Raw(b"x" * 20)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", [pkt] * 2)
    assert_dropped(t.result, EXPECT["noproto"], count=2)


def test_unicast_ip_in_a_broadcast_frame(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """With net.ipv4.conf.all.drop_unicast_in_l2_multicast=1 (RFC 1122 says hosts should), a
    unicast IP packet in a broadcast Ethernet frame is dropped (UNICAST_IN_L2_MULTICAST)."""
    netlab_lab.node("ns2").run(["sysctl", "-qw", "net.ipv4.conf.all.drop_unicast_in_l2_multicast=1"], check=True)
    pkt = (
        to_ns2(netlab_traffic, "ff:ff:ff:ff:ff:ff")
        / IP(src="198.51.100.1", dst="198.51.100.2")
        / UDP(dport=9)
        / Raw(b"x" * 20)
    )
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", [pkt] * 2)
    assert_dropped(t.result, EXPECT["l2_multicast"], count=2)


def test_ipv6_to_a_host_with_ipv6_disabled(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """The lab disables IPv6 (ipv6: false): an IPv6 packet arriving anyway is dropped at the
    door of the IPv6 stack (IPV6DISABLED), which is why IPv6-off labs keep traces quiet."""
    pkt = to_ns2(netlab_traffic) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(dport=9) / Raw(b"x" * 20)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", [pkt] * 2)
    assert_dropped(t.result, EXPECT["ipv6_disabled"], count=2)


def test_a_packet_to_127_0_0_1_from_the_wire(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """127.0.0.0/8 belongs to the host's loopback: a packet for 127.0.0.1 arriving on veth2 is
    refused by the route lookup unless net.ipv4.conf.*.route_localnet allows it (IP_LOCALNET
    from 6.18; a martian destination, NOT_SPECIFIED, before)."""
    pkt = to_ns2(netlab_traffic) / IP(src="198.51.100.1", dst="127.0.0.1") / UDP(dport=9) / Raw(b"x" * 20)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", [pkt] * 2)
    assert_dropped(t.result, EXPECT["localnet"], count=2)
