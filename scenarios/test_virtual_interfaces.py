"""VLANs, a VLAN-filtering bridge, a dummy, VXLAN and macvlan: the interfaces a lab stacks on
its veths. Each kind is a module on Debian's kernels (8021q, dummy, vxlan, macvlan) and bridge
VLAN filtering a build option; where a kernel lacks one, the lab refuses to come up with the
kernel's reason and the scenario is skipped with it."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from expected import NO_REASONS, located, since_6_12, udp
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from netlab.testing import Drop, Lab, TraceFactory, Traffic, assert_dropped, by_kernel

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


def vxlan(traffic: Traffic, inner: Packet, *, flags: int = 0x08, vni: int = 42, tos: int = 0) -> Packet:
    """A VXLAN packet from h1's underlay address to h2's, carrying ``inner``."""
    return (
        Ether(src=traffic.mac("h1", "ul1"), dst=traffic.mac("h2", "ul2"))
        / IP(src="192.0.2.1", dst="192.0.2.2", tos=tos)
        / UDP(sport=40000, dport=4789)
        / Raw(struct.pack("!BxxxI", flags, vni << 8) + bytes(inner))
    )


def inner(src: str = "02:00:00:00:01:01", tos: int = 0) -> Packet:
    """A frame from vx1's MAC (or ``src``) to vx2's, with a datagram for a closed port."""
    return (
        Ether(src=src, dst="02:00:00:00:02:02")
        / IP(src="198.51.100.1", dst="198.51.100.2", tos=tos)
        / UDP(dport=9)
        / Raw(b"x")
    )


#: name -> (the packet h1 sends h2's underlay, a command h2 runs first, the reason vxlan_rcv gives)
REFUSED: dict[str, tuple[Callable[[Traffic], Packet], list[str] | None, str]] = {
    "vni-flag-clear": (lambda t: vxlan(t, inner(), flags=0x00), None, "VXLAN_INVALID_HDR"),
    "unknown-vni": (lambda t: vxlan(t, inner(), vni=77), None, "VXLAN_VNI_NOT_FOUND"),
    # RFC 6040: congestion marked outside (CE) over an inner packet that is not ECN-capable
    "ce-outside-not-ect-inside": (lambda t: vxlan(t, inner(tos=0), tos=0x03), None, "IP_TUNNEL_ECN"),
    # a frame from the receiving device's own MAC: a loop, or its own multicast coming back
    "from-its-own-mac": (lambda t: vxlan(t, inner(src="02:00:00:00:02:02")), None, "LOCAL_MAC"),
    # learning would move a static FDB entry (the MAC lives behind 192.0.2.99) to 192.0.2.1
    "moves-a-static-entry": (
        lambda t: vxlan(t, inner(src="02:00:00:00:01:77")),
        ["bridge", "fdb", "add", "02:00:00:00:01:77", "dev", "vx2", "dst", "192.0.2.99", "static"],
        "VXLAN_ENTRY_EXISTS",
    ),
}


@pytest.mark.netlab_topology("overlay")
@pytest.mark.parametrize("case", list(REFUSED))
def test_vxlan_refuses_what_is_not_its_own(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory, case: str
) -> None:
    """UDP to port 4789 on h2's underlay is VXLAN's, and vxlan_rcv refuses: a header whose I
    flag (a valid VNI) is clear (VXLAN_INVALID_HDR); a VNI no vxlan device of h2 carries
    (VXLAN_VNI_NOT_FOUND); an outer header marked congested (CE) around an inner packet that
    cannot carry the mark (IP_TUNNEL_ECN, RFC 6040's decapsulation rule); an inner frame from
    vx2's own MAC (LOCAL_MAC); and one whose source MAC a static FDB entry puts behind another
    remote (VXLAN_ENTRY_EXISTS: learning may not move it). 6.1 frees each as NOT_SPECIFIED."""
    build, first, reason = REFUSED[case]
    if first:
        netlab_lab.node("h2").run(first, check=True)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("h1", "ul1", [build(netlab_traffic)] * 3)
    assert_dropped(t.result, by_kernel(since_6_12("vxlan_rcv", reason, "h2")), count=3)


@pytest.mark.netlab_topology("overlay")
@pytest.mark.parametrize(
    "kind",
    [
        (["id", "9", "local", "192.0.2.1", "dev", "ul1"], since_6_12("vxlan_xmit", "NO_TX_TARGET", "h1")),
        (["external"], since_6_12("vxlan_xmit", "TUNNEL_TXINFO", "h1")),
        # the route lookup's reason came a cycle later: 6.12 still says NOT_SPECIFIED there
        (
            ["id", "9", "remote", "203.0.113.99"],
            {
                NO_REASONS: Drop("vxlan_xmit_one", None, "h1"),
                "5.17-6.12": Drop("vxlan_xmit_one", "NOT_SPECIFIED", "h1"),
                ">=6.13": Drop("vxlan_xmit_one", "IP_OUTNOROUTES", "h1"),
            },
        ),
    ],
    ids=["no-remote", "external", "unroutable-remote"],
)
def test_a_vxlan_with_nowhere_to_send_drops_on_its_own_transmit(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory, kind: tuple[list[str], dict[str, Drop]]
) -> None:
    """vx9, added to h1 by the scenario itself (placement follows devices the topology did
    not plan), has no remote, no group and no FDB entry: a frame sent on it has no tunnel end
    to go to (NO_TX_TARGET). In collect-metadata mode (``external``, as Cilium and OVS use it)
    the destination must come with each packet from tc or BPF; a frame without it is dropped
    (TUNNEL_TXINFO); both in vxlan_xmit. With a remote no route leads to, the route lookup
    for the outer packet fails (IP_OUTNOROUTES, in vxlan_xmit_one). All on vx9's transmit;
    6.1 frees them as NOT_SPECIFIED."""
    mode, expected = kind
    h1 = netlab_lab.node("h1")
    # its own UDP port: vx1 has 4789
    h1.run(["ip", "link", "add", "vx9", "type", "vxlan", *mode, "dstport", "4790"], check=True)
    h1.run(["ip", "link", "set", "vx9", "up"], check=True)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("h1", "vx9", "udp", dst="198.51.100.9", dst_mac="02:00:00:00:09:09", dport=9, count=3)
    hits = assert_dropped(t.result, by_kernel(expected), count=3)
    assert {d.device for d in hits} <= {"vx9"}, t.result.drops
