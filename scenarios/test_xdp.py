"""XDP on a node's receive side: a program that answers every frame with one verdict.

The program is two instructions, loaded by netlab itself (``node.xdp(ifname, action)``, no
compiler), attached in generic mode so that the veth runs it on the socket buffer, where the
stack frees what it drops. veth-two-ns: ns1's veth1 sends to ns2's veth2.
"""

from __future__ import annotations

import pytest
from expected import NO_REASONS

from netlab.testing import Drop, Lab, TraceFactory, Traffic, assert_dropped, assert_not_dropped, by_kernel

pytestmark = pytest.mark.netlab_topology("veth-two-ns")

#: verdict -> where and why the stack frees the frame (5.10 frees a dropped frame in
#: netif_receive_generic_xdp, and has do_xdp_generic inlined in the receive core)
EXPECT = {
    # XDP_DROP is the program's own decision: the kernel gives no reason for it
    "drop": {
        NO_REASONS: Drop("netif_receive_generic_xdp", None, "ns2"),
        ">=5.17": Drop("do_xdp_generic", "NOT_SPECIFIED", "ns2"),
    },
    # XDP_REDIRECT without a target the program chose: the redirect fails (XDP from 5.19)
    "redirect": {
        NO_REASONS: Drop("__netif_receive_skb_core", None, "ns2"),
        ">=5.17": Drop("do_xdp_generic", "XDP", "ns2"),
    },
}


@pytest.mark.parametrize("action", list(EXPECT))
def test_an_xdp_program_that_answers_every_frame_alike(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory, action: str
) -> None:
    """ns2's veth2 answers every frame with XDP_DROP, or with XDP_REDIRECT to nowhere: either
    way the frame dies in do_xdp_generic before the stack sees it, the drop without a reason,
    the failed redirect as XDP. Taken off, the same datagrams reach UDP."""
    ns2 = netlab_lab.node("ns2")
    netlab_lab.node("ns1").run(
        ["ip", "neigh", "replace", "198.51.100.2", "lladdr", netlab_traffic.mac("ns2", "veth2"), "dev", "veth1"],
        check=True,
    )
    expect = by_kernel(EXPECT[action])
    ns2.xdp("veth2", action)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns1", "veth1", "udp", dst="198.51.100.2", dport=9, count=3)
    hits = assert_dropped(t.result, expect, count=3)
    assert {d.device for d in hits} == {"veth2"}, t.result.drops
    ns2.xdp("veth2", None)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns1", "veth1", "udp", dst="198.51.100.2", dport=9, count=3)
    assert_not_dropped(t.result, expect)
