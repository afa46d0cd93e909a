"""IPv4 fragments that never make a whole datagram: reassembly gives up, or refuses a copy.

veth-two-ns; ns1 sends the first 1200-byte fragment of a 3000-byte UDP datagram (IP id 77)
straight to ns2, built by scapy.
"""

from __future__ import annotations

from typing import Any

import pytest
from expected import since_6_12
from scapy.layers.inet import ICMP, IP, UDP, fragment
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from netlab.testing import Lab, TraceFactory, Traffic, assert_dropped, by_kernel, until

pytestmark = pytest.mark.netlab_topology("veth-two-ns")
#: reassembly's own reasons came in 6.12's cycle; 6.1 frees the same fragments as NOT_SPECIFIED
EXPECT = {
    "timeout": by_kernel(since_6_12("ip_expire", "FRAG_REASM_TIMEOUT", "ns2")),
    "duplicate": by_kernel(since_6_12("ip_defrag", "DUP_FRAG", "ns2")),
    "too-far": by_kernel(since_6_12("inet_frag_rbtree_purge", "FRAG_TOO_FAR", "ns2")),
}


def fragments(traffic: Traffic, ident: int) -> list[Any]:
    """The three fragments of one datagram, framed for ns2."""
    datagram = IP(src="198.51.100.1", dst="198.51.100.2", id=ident) / UDP(sport=40000, dport=9) / Raw(b"x" * 3000)
    frame = Ether(src=traffic.mac("ns1", "veth1"), dst=traffic.mac("ns2", "veth2"))
    return [frame / part for part in fragment(datagram, fragsize=1200)]  # type: ignore[no-untyped-call]


def test_a_datagram_missing_fragments_times_out(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """Only the first fragment arrives: the reassembly queue waits net.ipv4.ipfrag_time (set to
    1 s here, 30 by default), then ip_expire frees what it holds (FRAG_REASM_TIMEOUT from 6.1)."""
    ns2 = netlab_lab.node("ns2")
    ns2.run(["sysctl", "-qw", "net.ipv4.ipfrag_time=1"], check=True)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", fragments(netlab_traffic, 77)[:1])
        assert until(lambda: reassembly_timeouts(ns2) >= 1, 5)
    assert_dropped(t.result, EXPECT["timeout"], count=1)


def test_a_fragment_sent_twice_is_dropped_as_a_duplicate(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """The first two fragments, each twice: reassembly keeps one copy of each and drops the
    other (DUP_FRAG from 6.1) while it waits for the third."""
    first, second, _third = fragments(netlab_traffic, 78)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", [first, first, second, second])
    assert_dropped(t.result, EXPECT["duplicate"], count=2)


def test_a_fragment_that_arrives_after_too_many_others_restarts_its_datagram(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """A datagram's first fragment, then 35 fragmented pings from the same sender (70 fragments),
    then its second fragment: more than net.ipv4.ipfrag_max_dist (64) of that sender's fragments
    came in between, so reassembly assumes the first belongs to an older datagram of a reused id,
    and frees it (FRAG_TOO_FAR from 6.12) to start over from the second."""
    first, second, _third = fragments(netlab_traffic, 90)
    frame = Ether(src=netlab_traffic.mac("ns1", "veth1"), dst=netlab_traffic.mac("ns2", "veth2"))
    pings = [
        frame / part
        for n in range(35)
        for part in fragment(  # type: ignore[no-untyped-call]
            IP(src="198.51.100.1", dst="198.51.100.2", id=1000 + n) / ICMP(id=7, seq=n) / Raw(b"p" * 1600),
            fragsize=1200,
        )
    ]
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", [first, *pings, second])
    assert_dropped(t.result, EXPECT["too-far"], count=1)


def reassembly_timeouts(node: Any) -> int:
    """The node's Ip ReasmTimeout counter (its own /proc/net/snmp)."""
    rows = [line.split() for line in node.run(["cat", "/proc/net/snmp"], check=True).stdout.splitlines()]
    names, values = [r for r in rows if r and r[0] == "Ip:"][:2]
    return int(dict(zip(names[1:], values[1:], strict=True))["ReasmTimeout"])
