"""The sending side: what a node's own queueing discipline and tc drop before the wire.

A packet a node sends is handed to its device (``net:net_dev_queue``), passes tc egress and the
qdisc, and only then reaches the driver (``net:net_dev_start_xmit``). A drop in between has no
receive path behind it; the device event before the qdisc is what places it on the sending
node and device. veth-two-ns: ns1's veth1 sends to ns2's veth2.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from expected import NO_REASONS, located

from netlab.errors import KernelFeatureError
from netlab.testing import Drop, Lab, TraceFactory, Traffic, assert_dropped, by_kernel

pytestmark = pytest.mark.netlab_topology("veth-two-ns")

#: where a full qdisc's drop is freed: the qdisc puts it on a to-free list that __dev_queue_xmit
#: frees, through kfree_skb_list (5.10) or kfree_skb_list_reason (6.1), which the tracepoint names
#: as the place; 6.12 names __dev_queue_xmit itself, and 7.x frees the list in a helper of its own
QDISC = by_kernel(
    {
        NO_REASONS: Drop("kfree_skb_list", None, "ns1"),
        "5.17-6.11": Drop("kfree_skb_list_reason", "QDISC_DROP", "ns1"),
        "6.12-7.1": Drop("__dev_queue_xmit", "QDISC_DROP", "ns1"),
        ">=7.2": Drop("__tcf_kfree_skb_list", "QDISC_DROP", "ns1"),
    }
)


def send_udp(lab: Lab, count: int, size: int = 1000) -> None:
    """``count`` datagrams from a UDP socket of ns1 to ns2's port 9, as fast as it sends."""
    with lab.node("ns1").socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(count):
            sender.sendto(b"x" * size, ("198.51.100.2", 9))


def by_tracer(*names: str) -> list[Any]:
    return [pytest.param(n, marks=pytest.mark.netlab_tracer(n), id=n) for n in names]


@pytest.mark.parametrize("tracer", by_tracer("tracefs", "perf", "bpftrace"))
def test_a_full_egress_qdisc_drops_on_the_senders_device(
    netlab_lab: Lab, netlab_trace: TraceFactory, tracer: str
) -> None:
    """A token bucket of one packet's size (tbf, 1 Mbit/s) on ns1's veth1 lets the first
    datagram of a burst of 200 through and drops nearly all the others as they are enqueued
    (QDISC_DROP from 5.17): each placed on ns1 and veth1, the device that sent it, by every
    tracer that attributes drops, and none left unplaced. UDP does not retry: a send the qdisc
    refused is gone."""
    ns1 = netlab_lab.node("ns1")
    bucket = ["rate", "1mbit", "burst", "1600", "limit", "1600"]
    added = ns1.run(["tc", "qdisc", "add", "dev", "veth1", "root", "tbf", *bucket])
    if added.returncode:
        pytest.skip(f"this kernel has no tbf qdisc: {added.stderr.strip()}")
    try:
        with netlab_trace(netlab_lab) as t:
            send_udp(netlab_lab, 200)
    except KernelFeatureError as exc:
        pytest.skip(f"{tracer} could not start here: {exc}")
    drops = assert_dropped(t.result, QDISC, at_least=150)
    assert {d.device for d in drops} == {"veth1"}, t.result.summary()
    assert not t.result.unplaced, t.result.unplaced_summary()


@pytest.mark.parametrize("tracer", by_tracer("tracefs", "bpftrace"))
def test_a_tc_egress_filter_drops_before_the_device_is_named(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory, tracer: str
) -> None:
    """A clsact egress filter on ns1's veth1 that returns TC_ACT_SHOT (cls_bpf, ``ret #2``):
    each datagram ns1 sends is dropped in __dev_queue_xmit (TC_EGRESS from 5.17). tc egress
    runs before ``net:net_dev_queue`` fires, so no path tracepoint has seen the packet: tracefs
    leaves the drops unplaced (asserted, so a kernel that moves the tracepoint shows up), and
    bpftrace, which reads the skb's device at the drop, places them on ns1 and veth1. ns1 is
    told ns2's MAC first, so no ARP request is what tc drops."""
    ns1 = netlab_lab.node("ns1")
    mac = netlab_traffic.mac("ns2", "veth2")
    ns1.run(["ip", "neigh", "replace", "198.51.100.2", "lladdr", mac, "dev", "veth1"], check=True)
    ns1.run(["tc", "qdisc", "add", "dev", "veth1", "clsact"], check=True)
    ns1.run(["tc", "filter", "add", "dev", "veth1", "egress", "bpf", "bytecode", "1,6 0 0 2,", "da"], check=True)
    try:
        with netlab_trace(netlab_lab) as t:
            send_udp(netlab_lab, 3, size=100)
    except KernelFeatureError as exc:
        pytest.skip(f"{tracer} could not start here: {exc}")
    if tracer == "tracefs":
        reason = by_kernel({NO_REASONS: None, ">=5.17": "TC_EGRESS"})
        assert t.result.unplaced_summary() == [("__dev_queue_xmit", reason, 3)], t.result.unplaced_summary()
        assert not [d for d in t.result.drops if d.base == "__dev_queue_xmit"], t.result.summary()
        return
    drops = assert_dropped(t.result, by_kernel(located("__dev_queue_xmit", "TC_EGRESS", "ns1")), count=3)
    assert {d.device for d in drops} == {"veth1"}, t.result.summary()
