"""IPv6 neighbour discovery refusing what RFC 4861 says a node must not accept.

routed3; the client sends neighbour solicitations to r1 (2001:db8:1::1) that are wrong in one
way each, built by scapy and sent from c-r1.
"""

from __future__ import annotations

from typing import Any

import pytest
from expected import since_6_12
from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
from scapy.layers.l2 import Ether

from netlab.testing import Lab, TraceFactory, Traffic, assert_dropped, by_kernel

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
