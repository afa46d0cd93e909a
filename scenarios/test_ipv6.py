"""IPv6 refusing what the RFCs say a node must not accept: neighbour solicitations wrong in
one way each (RFC 4861, 6980), and extension headers it will not walk (RFC 8200).

routed3; the client sends to r1 (2001:db8:1::1), each packet built by scapy and sent from c-r1.
"""

from __future__ import annotations

from typing import Any

import pytest
from expected import NO_REASONS, since_6_12
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6ND_NS,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6NDOptUnknown,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    fragment6,
)
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from netlab.testing import Drop, Lab, TraceFactory, Traffic, assert_dropped, by_kernel

pytestmark = pytest.mark.netlab_topology("routed3")
#: ndisc_rcv's reasons came in 6.12's cycle; 6.1 frees the same messages as NOT_SPECIFIED
EXPECT = {
    reason: by_kernel(since_6_12("icmpv6_rcv", reason, "r1"))
    for reason in ("IPV6_NDISC_HOP_LIMIT", "IPV6_NDISC_BAD_CODE", "IPV6_NDISC_NS_OTHERHOST")
}


def solicitation(traffic: Traffic, *, hlim: int = 255, code: int = 0, target: str = "2001:db8:1::1") -> Any:
    """A neighbour solicitation from the client to r1 for ``target``."""
    mac = traffic.mac("client", "c-r1")
    return (
        Ether(src=mac, dst=traffic.mac("r1", "r1-c"))
        / IPv6(src="2001:db8:1::2", dst="2001:db8:1::1", hlim=hlim)
        / ICMPv6ND_NS(tgt=target, code=code)
        / ICMPv6NDOptSrcLLAddr(lladdr=mac)
    )


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"hlim": 64}, "IPV6_NDISC_HOP_LIMIT"),
        ({"code": 1}, "IPV6_NDISC_BAD_CODE"),
        ({"target": "2001:db8:1::77"}, "IPV6_NDISC_NS_OTHERHOST"),
    ],
    ids=["hop-limit-not-255", "code-not-0", "target-not-mine"],
)
def test_neighbour_solicitations_a_node_must_not_accept(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory, options: dict[str, Any], reason: str
) -> None:
    """A solicitation must arrive with hop limit 255 (proof it was not routed from afar) and
    code 0, and ask for one of the receiver's own addresses: r1's ndisc_rcv drops the others,
    each with its own reason from 6.1 (IPV6_NDISC_HOP_LIMIT, _BAD_CODE, _NS_OTHERHOST)."""
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("client", "c-r1", [solicitation(netlab_traffic, **options)] * 3)
    assert_dropped(t.result, EXPECT[reason], count=3)


#: icmpv6_notify's and ndisc_rcv's own reasons came in 6.12's cycle
EXTENSION = {
    "unwalkable": by_kernel(since_6_12("icmpv6_rcv", "IPV6_BAD_EXTHDR", "r1")),
    "bad-options": by_kernel(since_6_12("icmpv6_rcv", "IPV6_NDISC_BAD_OPTIONS", "r1")),
    "fragmented": by_kernel(since_6_12("icmpv6_rcv", "IPV6_NDISC_FRAG", "r1")),
}


def to_r1(traffic: Traffic, payload: Any) -> Any:
    """``payload`` (IPv6's next headers) from the client to r1, framed for r1-c."""
    frame = Ether(src=traffic.mac("client", "c-r1"), dst=traffic.mac("r1", "r1-c"))
    return frame / IPv6(src="2001:db8:1::2", dst="2001:db8:1::1") / payload


def test_an_icmp_error_about_a_packet_whose_headers_cannot_be_walked(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """An ICMPv6 error tells its receiver which of its packets failed, by quoting it; r1 walks
    the quoted packet's extension headers to find whose error it is (icmpv6_notify). A quoted
    header that says "no next header" ends the walk with nothing found, and the error is
    dropped (IPV6_BAD_EXTHDR from 6.12)."""
    quoted = IPv6(src="2001:db8:1::1", dst="2001:db8:3::2", nh=59) / Raw(b"\0" * 8)
    # the client's router solicitations (one every 4 s after its link came up) die in r1's
    # icmpv6_rcv too, indistinguishable from these where the kernel has no reasons
    netlab_lab.node("client").run(["sysctl", "-qw", "net.ipv6.conf.c-r1.router_solicitations=0"], check=True)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("client", "c-r1", [to_r1(netlab_traffic, ICMPv6DestUnreach(code=4) / quoted)] * 3)
    assert_dropped(t.result, EXTENSION["unwalkable"], count=3)


def test_a_solicitation_with_an_option_of_length_zero(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """An ND option's length counts 8-byte units and is never 0 (RFC 4861 4.6: the receiver
    must discard the message): r1's ndisc_recv_ns cannot parse the options and drops it."""
    broken = solicitation(netlab_traffic) / ICMPv6NDOptUnknown(type=250, len=0, data=b"\0" * 6)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("client", "c-r1", [broken] * 3)
    assert_dropped(t.result, EXTENSION["bad-options"], count=3)


def test_a_solicitation_that_came_in_fragments(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """Neighbour discovery must not be fragmented (RFC 6980): r1 reassembles the solicitation,
    and ndisc_rcv drops it because it was (net.ipv6.conf.*.suppress_frag_ndisc, on by default)."""
    mac = netlab_traffic.mac("client", "c-r1")
    whole = (
        IPv6(src="2001:db8:1::2", dst="2001:db8:1::1", hlim=255)
        / IPv6ExtHdrFragment(id=7)
        / ICMPv6ND_NS(tgt="2001:db8:1::1")
        / ICMPv6NDOptSrcLLAddr(lladdr=mac)
        / ICMPv6NDOptUnknown(type=250, len=20, data=b"\0" * 158)  # room for two fragments
    )
    frame = Ether(src=mac, dst=netlab_traffic.mac("r1", "r1-c"))
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("client", "c-r1", [frame / part for part in fragment6(whole, 120)])  # type: ignore[no-untyped-call]
    assert_dropped(t.result, EXTENSION["fragmented"], count=1)


def test_more_extension_headers_than_a_node_walks(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """Sixteen empty destination-options headers before a UDP datagram to a closed port. From
    7.2 (and 6.18's stable updates) a node walks at most 12 extension headers and drops the
    packet in ip6_protocol_deliver_rcu, inlined in ip6_input_finish (IPV6_TOO_MANY_EXTHDRS);
    older kernels walk them all and UDP finds no socket."""
    chained: Any = UDP(sport=40000, dport=9)
    for _ in range(16):
        chained = IPv6ExtHdrDestOpt() / chained
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("client", "c-r1", [to_r1(netlab_traffic, chained)] * 3)
    expect = by_kernel(
        {
            NO_REASONS: Drop("__udp6_lib_rcv", None, "r1"),
            "5.17-6.17": Drop("__udp6_lib_rcv", "NO_SOCKET", "r1"),
            ">=6.18": Drop("ip6_input_finish", "IPV6_TOO_MANY_EXTHDRS", "r1"),
        }
    )
    assert_dropped(t.result, expect, count=3)
