"""routed3: routers refusing to forward, and a next hop that never answers."""

from __future__ import annotations

import socket

import pytest
from expected import NO_REASONS, located
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from netlab.testing import Drop, Lab, TraceFactory, Traffic, assert_dropped, assert_path, by_kernel, until

EXPECT = {
    "rpfilter": by_kernel(located("ip_rcv_finish_core", "IP_RPFILTER", "r1")),
    "no_route": by_kernel(located("ip_error", "IP_INNOROUTES", "r1")),
    "not_forwarding": by_kernel(located("ip_error", "IP_INADDRERRORS", "r1")),
    # bpftrace only: no device has seen the packet, so only a tracer that reads the skb places it
    "neigh_failed": by_kernel(
        {NO_REASONS: Drop("neigh_invalidate", None, "client"), ">=5.17": Drop(None, "NEIGH_FAILED", "client")}
    ),
}
pytestmark = pytest.mark.netlab_topology("routed3")
TOO_BIG = {
    4: by_kernel(located("ip_forward", "PKT_TOO_BIG", "r1")),
    6: by_kernel(located("ip6_forward", "PKT_TOO_BIG", "r1")),
}
# bpftrace only (see neigh_failed)
QUEUE_FULL = by_kernel(located("__neigh_event_send", "NEIGH_QUEUEFULL", "client"))


def test_strict_reverse_path_filter(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """With rp_filter=1 (strict), r1 accepts a packet only if its route back to the source
    leaves through the interface the packet came in on. A packet claiming to come from the
    server's subnet but arriving from the client side is dropped (IP_RPFILTER)."""
    netlab_lab.node("r1").run(
        ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.r1-c.rp_filter=1"], check=True
    )
    pkt = (
        Ether(src=netlab_traffic.mac("client", "c-r1"), dst=netlab_traffic.mac("r1", "r1-c"))
        / IP(src="203.0.113.77", dst="203.0.113.2")
        / UDP(dport=9)
        / Raw(b"x" * 20)
    )
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("client", "c-r1", [pkt] * 2)
    assert_dropped(t.result, EXPECT["rpfilter"], count=2)


def test_router_without_a_route(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """r1 has no route (and no default) to 192.0.2.0/24: it sends ICMP net unreachable back
    and drops the packet in ip_error (IP_INNOROUTES)."""
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject(
            "client", "c-r1", "udp", dst="192.0.2.1", dst_mac=netlab_traffic.mac("r1", "r1-c"), count=2
        )
    assert_dropped(t.result, EXPECT["no_route"], count=2)


def test_host_that_does_not_forward(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """With net.ipv4.ip_forward=0, r1 is a host: a packet for someone else that reaches it
    is an address error (IP_INADDRERRORS in ip_error)."""
    netlab_lab.node("r1").run(["sysctl", "-qw", "net.ipv4.ip_forward=0"], check=True)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("client", "c-r1", "udp", dst="203.0.113.2", count=2)
    assert_dropped(t.result, EXPECT["not_forwarding"], count=2)


@pytest.mark.netlab_tracer("bpftrace")
def test_next_hop_that_never_answers_arp(netlab_lab: Lab, netlab_trace: TraceFactory) -> None:
    """A route via 198.51.100.99, an address nobody has: packets wait in the neighbour queue
    while ARP asks, and when ARP gives up they are dropped (NEIGH_FAILED). The drop happens in
    a timer, long after the sender returned, with no device path behind it: only a tracer that
    reads the skb's device (bpftrace) can say which node it was in."""
    client = netlab_lab.node("client")
    for knob in ("mcast_solicit=1", "ucast_solicit=0", "app_solicit=0", "retrans_time_ms=100"):
        client.run(["sysctl", "-qw", f"net.ipv4.neigh.c-r1.{knob}"], check=True)
    client.run(["ip", "route", "add", "198.18.0.0/15", "via", "198.51.100.99"], check=True)
    with netlab_trace(netlab_lab) as t:
        client.run(["ping", "-c", "2", "-i", "0.2", "-W", "1", "198.18.0.1"])
        assert until(lambda: "FAILED" in client.run(["ip", "neigh", "show", "198.51.100.99"]).stdout, 5)
    assert_dropped(t.result, EXPECT["neigh_failed"], at_least=1)


def test_path_across_two_routers(netlab_lab: Lab, netlab_trace: TraceFactory) -> None:
    """A ping from client to server crosses both routers: each veth pair is one hop, and each
    router receives on one interface and transmits on the other."""
    with netlab_trace(netlab_lab) as t:
        netlab_lab.node("client").run(["ping", "-c1", "-W1", "203.0.113.2"], check=True)
    assert_path(t.result, ["c-r1", "r1-c", "r1-r2", "r2-r1", "r2-s", "s-r2"])


@pytest.mark.parametrize("version", [4, 6], ids=["ipv4", "ipv6"])
def test_a_packet_bigger_than_the_next_links_mtu_with_dont_fragment(
    netlab_lab: Lab, netlab_trace: TraceFactory, version: int
) -> None:
    """r1's link to r2 has an MTU of 1280; the client's ping of 1400 bytes may not be
    fragmented (IPv4 DF, and IPv6 routers never fragment): r1 answers "fragmentation
    needed" / "packet too big" and drops it (PKT_TOO_BIG). The client learns the path MTU, so
    its second ping fails at home, without a packet."""
    netlab_lab.node("r1").run(["ip", "link", "set", "r1-r2", "mtu", "1280"], check=True)
    target = "203.0.113.2" if version == 4 else "2001:db8:3::2"
    with netlab_trace(netlab_lab) as t:
        netlab_lab.node("client").run(["ping", f"-{version}", "-M", "do", "-c", "2", "-s", "1400", "-W", "1", target])
    assert_dropped(t.result, TOO_BIG[version], at_least=1)


@pytest.mark.netlab_tracer("bpftrace")
def test_a_full_neighbour_queue_drops_what_waits_for_arp(netlab_lab: Lab, netlab_trace: TraceFactory) -> None:
    """The client's route to 198.18.0.0/15 goes via 198.51.100.99, which nobody has. Packets
    wait in the neighbour entry's queue while ARP asks; with unres_qlen 1 only one waits, and
    each further one is dropped on the spot (NEIGH_QUEUEFULL). Those drops happen before any
    device sees the packet: bpftrace, which reads the skb's device, places them on the client."""
    client = netlab_lab.node("client")
    for knob in ("mcast_solicit=3", "ucast_solicit=0", "app_solicit=0", "retrans_time_ms=300", "unres_qlen=1"):
        client.run(["sysctl", "-qw", f"net.ipv4.neigh.c-r1.{knob}"], check=True)
    client.run(["ip", "route", "add", "198.18.0.0/15", "via", "198.51.100.99"], check=True)
    with netlab_trace(netlab_lab) as t, client.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(5):
            sender.sendto(b"x" * 100, ("198.18.0.1", 9))
    assert_dropped(t.result, QUEUE_FULL, at_least=3)
