"""tc on a node's receive side: a classifier on the clsact ingress hook that drops what it sees.

The classifier is cls_bpf with a one-instruction classic BPF program (``ret #2``, TC_ACT_SHOT)
in direct-action mode: no action module is needed, so the same filter works on Debian's
kernels (cls_bpf a module, loaded on demand) and on kernels built without gact or matchall.
veth-two-ns: ns1's veth1 sends to ns2's veth2.
"""

from __future__ import annotations

import pytest
from expected import NO_REASONS, located

from netlab.testing import Drop, Lab, TraceFactory, Traffic, assert_dropped, by_kernel

pytestmark = pytest.mark.netlab_topology("veth-two-ns")

#: cBPF "ret #2": every packet classified TC_ACT_SHOT
SHOOT_EVERYTHING = ["bpf", "bytecode", "1,6 0 0 2,", "da"]


def test_a_tc_ingress_filter_that_shoots_everything(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """ns2's veth2 gets a clsact qdisc and an ingress filter that returns TC_ACT_SHOT: each
    datagram from ns1 is dropped as it arrives, before IP sees it, in the receive core
    (sch_handle_ingress is inlined there): TC_INGRESS, on ns2's veth2. ns1 is told ns2's MAC
    beforehand, so no ARP request is what the filter drops."""
    ns2 = netlab_lab.node("ns2")
    netlab_lab.node("ns1").run(
        ["ip", "neigh", "replace", "198.51.100.2", "lladdr", netlab_traffic.mac("ns2", "veth2"), "dev", "veth1"],
        check=True,
    )
    ns2.run(["tc", "qdisc", "add", "dev", "veth2", "clsact"], check=True)
    ns2.run(["tc", "filter", "add", "dev", "veth2", "ingress", *SHOOT_EVERYTHING], check=True)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns1", "veth1", "udp", dst="198.51.100.2", dport=9, count=3)
    hits = assert_dropped(t.result, by_kernel(located("__netif_receive_skb_core", "TC_INGRESS", "ns2")), count=3)
    assert {d.device for d in hits} == {"veth2"}, t.result.drops


#: cBPF "ret #-1": every packet matches, and the gact action answers TC_ACT_RECLASSIFY, which
#: starts the filters over (a direct-action classifier may not return it itself)
RECLASSIFY_EVERYTHING = ["bpf", "bytecode", "1,6 0 0 4294967295,", "action", "reclassify"]


def test_a_filter_that_reclassifies_forever(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """An ingress filter that answers "classify again" to every packet: tcf_classify gives up
    after four rounds and the packet is shot (TC_RECLASSIFY_LOOP from 6.12; 6.1 calls it
    TC_INGRESS, as any ingress verdict to drop), on ns2's veth2."""
    ns2 = netlab_lab.node("ns2")
    netlab_lab.node("ns1").run(
        ["ip", "neigh", "replace", "198.51.100.2", "lladdr", netlab_traffic.mac("ns2", "veth2"), "dev", "veth1"],
        check=True,
    )
    ns2.run(["tc", "qdisc", "add", "dev", "veth2", "clsact"], check=True)
    added = ns2.run(["tc", "filter", "add", "dev", "veth2", "ingress", *RECLASSIFY_EVERYTHING])
    if added.returncode and "action module" in added.stderr:  # a kernel without act_gact (CONFIG_NET_ACT_GACT)
        pytest.skip(f"this kernel has no gact action: tc says {added.stderr.strip()!r}")
    assert added.returncode == 0, added.stderr
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns1", "veth1", "udp", dst="198.51.100.2", dport=9, count=3)
    expect = {
        NO_REASONS: Drop("__netif_receive_skb_core", None, "ns2"),
        "5.17-6.11": Drop("__netif_receive_skb_core", "TC_INGRESS", "ns2"),
        ">=6.12": Drop("__netif_receive_skb_core", "TC_RECLASSIFY_LOOP", "ns2"),
    }
    hits = assert_dropped(t.result, by_kernel(expect), count=3)
    assert {d.device for d in hits} == {"veth2"}, t.result.drops
