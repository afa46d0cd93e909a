"""VLANs, a VLAN-filtering bridge, a dummy, VXLAN and macvlan: the interfaces a lab stacks on
its veths. Each kind is a module on Debian's kernels (8021q, dummy, vxlan, macvlan) and bridge
VLAN filtering a build option; where a kernel lacks one, the lab refuses to come up with the
kernel's reason and the scenario is skipped with it."""

from __future__ import annotations

import struct

import pytest
from expected import located, since_6_12, udp
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from netlab.testing import Lab, TraceFactory, Traffic, assert_dropped, by_kernel

OTHERHOST = by_kernel(located("ip_rcv_core", "OTHERHOST", "h1"))


@pytest.mark.netlab_topology("vlans")
def test_a_vlan_filtering_bridge_keeps_vlans_apart(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """h2 and h3 share a subnet, but the switch puts h2's port in VLAN 10 and h3's in VLAN 20.
    h2's frames cross the trunk tagged 10 and reach h1's v10; h3's, even sent straight to h1's
    MAC, cross it tagged 20, and h1 has no VLAN 20 interface: the kernel marks the frame as
    another host's (a tag no vlan device claims) and IP drops it as OTHERHOST. The dummy's
    address behind h1 is reachable from h2 through v10."""
    assert netlab_traffic.ping("h2", "198.51.100.1", count=2).received == 2
    assert netlab_traffic.ping("h2", "203.0.113.1", count=2).received == 2
    h1_mac = netlab_traffic.mac("h1", "v10")
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("h2", "eth2", "udp", dst="198.51.100.1", dport=9, count=2)
        netlab_traffic.inject("h3", "eth3", "udp", dst="198.51.100.1", dst_mac=h1_mac, dport=9, count=3)
    assert_dropped(t.result, udp("NO_SOCKET", "h1"), count=2)
    assert_dropped(t.result, OTHERHOST, count=3)


@pytest.mark.netlab_topology("vlans")
def test_frames_sent_from_a_vlan_interface_leave_tagged(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """A frame injected on h1's v10 gets its 802.1Q tag from the vlan device, crosses the trunk
    in VLAN 10 and leaves the access port untagged to h2, where UDP to a closed port ends it."""
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("h1", "v10", "udp", dst="198.51.100.2", dport=9, count=2)
    assert_dropped(t.result, udp("NO_SOCKET", "h2"), count=2)


@pytest.mark.netlab_topology("overlay")
def test_vxlan_carries_frames_between_its_ends(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """A frame sent on h1's vx1 is wrapped in UDP to port 4789, crosses the underlay veth and
    is unwrapped by h2's vx2; the tracer follows it to h2, where UDP to a closed port ends it."""
    assert netlab_traffic.ping("h1", "198.51.100.2", count=2).received == 2
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("h1", "vx1", "udp", dst="198.51.100.2", dport=9, count=3)
    assert_dropped(t.result, udp("NO_SOCKET", "h2"), count=3)
    # the hop it was last seen on is the tunnel end, not the underlay it arrived by
    where = {(d.node, d.device) for d in t.result.drops if d.function in ("__udp4_lib_rcv", "udp_rcv")}
    assert where == {("h2", "vx2")}, t.result.drops


@pytest.mark.netlab_topology("overlay")
def test_a_macvlan_is_a_second_host_on_its_parents_wire(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """h2's mv2 sits on the same veth as h2's own ul2 but has a MAC and address of its own:
    h1 reaches both over one wire, and a datagram for mv2's closed port dies in h2."""
    assert netlab_traffic.ping("h1", "192.0.2.12", count=2).received == 2
    assert netlab_traffic.ping("h1", "192.0.2.2", count=2).received == 2
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("h1", "ul1", "udp", dst="192.0.2.12", dport=9, count=2)
    assert_dropped(t.result, udp("NO_SOCKET", "h2"), count=2)


@pytest.mark.netlab_topology("overlay")
@pytest.mark.parametrize(
    "header",
    [(0x00, 42, "VXLAN_INVALID_HDR"), (0x08, 77, "VXLAN_VNI_NOT_FOUND")],
    ids=["vni-flag-clear", "unknown-vni"],
)
def test_vxlan_refuses_what_is_not_its_own(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory, header: tuple[int, int, str]
) -> None:
    """UDP to port 4789 on h2's underlay is VXLAN's: a header whose I flag (a valid VNI) is
    clear is refused (VXLAN_INVALID_HDR), and so is a VNI no vxlan device of h2 carries
    (VXLAN_VNI_NOT_FOUND), both in vxlan_rcv (6.1 frees both as NOT_SPECIFIED)."""
    flags, vni, reason = header
    inner = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:02:02") / IP(src="198.51.100.1", dst="198.51.100.2")
    frame = (
        Ether(src=netlab_traffic.mac("h1", "ul1"), dst=netlab_traffic.mac("h2", "ul2"))
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / UDP(sport=40000, dport=4789)
        / Raw(struct.pack("!BxxxI", flags, vni << 8) + bytes(inner / UDP(dport=9) / Raw(b"x")))
    )
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("h1", "ul1", [frame] * 3)
    assert_dropped(t.result, by_kernel(since_6_12("vxlan_rcv", reason, "h2")), count=3)
