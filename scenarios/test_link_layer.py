"""Frames the link layer refuses: 802.3/STP, unknown ethertypes, MAC control, bad source MACs,
frames for another host, and a bridge port that STP has not opened yet."""

from __future__ import annotations

from typing import Any

import pytest
from expected import NO_REASONS, located
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from netlab.testing import Drop, Lab, TraceFactory, Traffic, assert_counter, assert_dropped, by_kernel, get_tracer


def bridge_ingress(reason: str, node: str) -> dict[str, Drop]:
    """The bridge's own ingress checks got reasons in 6.18's cycle (MAC_IEEE_MAC_CONTROL,
    MAC_INVALID_SOURCE, BRIDGE_INGRESS_STP_STATE); 6.1 and 6.12 drop as NOT_SPECIFIED."""
    return {
        NO_REASONS: Drop("br_handle_frame", None, node),
        "5.17-6.17": Drop("br_handle_frame", "NOT_SPECIFIED", node),
        ">=6.18": Drop("br_handle_frame", reason, node),
    }


EXPECT = {
    "stp": by_kernel(located("stp_pdu_rcv", "NOT_SPECIFIED", "ns-calm2")),
    "pause": by_kernel(bridge_ingress("MAC_IEEE_MAC_CONTROL", "host")),
    "bad_source_mac": by_kernel(bridge_ingress("MAC_INVALID_SOURCE", "host")),
    "otherhost": by_kernel(located("ip_rcv_core", "OTHERHOST", "ns-calm2")),
    "stp_state": by_kernel(bridge_ingress("BRIDGE_INGRESS_STP_STATE", "sw")),
}


UNHANDLED_802_3 = by_kernel(located("__netif_receive_skb_core", "UNHANDLED_PROTO", "ns2"))


def counters(lab: Lab) -> Any:
    return get_tracer("counters").start(lab)


@pytest.mark.netlab_topology("bridge3")
def test_stp_bpdus_reach_the_host_and_die_in_stp(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """A switch's 802.3 STP BPDUs (LLC, ethertype field < 0x600) flooded by a bridge with STP
    off reach ns-calm2, whose kernel hands them to the built-in LLC/STP code; stp_pdu_rcv frees
    them because no bridge there runs STP. The LLC handler took them, so rx_dropped does not
    move (on kernels without LLC they died in __netif_receive_skb_core and rx_dropped grew)."""
    count = counters(netlab_lab)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns-calm1", "calmveth1", "stp", count=4)
    assert_dropped(t.result, EXPECT["stp"], count=4)
    assert_counter(count.stop(), "ns-calm2", "rx_dropped", 0, scope="dev:calmveth2")


@pytest.mark.netlab_topology("veth-two-ns")
def test_unknown_ethertype_is_unhandled_and_counted(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """A frame whose ethertype no protocol handler registered (0x88b5, the local experimental
    one) is dropped at the end of __netif_receive_skb_core with UNHANDLED_PROTO, and each one
    bumps the device's rx_dropped: the seeds' "rx_dropped grows by one every second" symptom.
    (While a packet socket such as tcpdump is open on the device, the tap counts as a delivery
    and rx_dropped stops moving.)"""
    count = counters(netlab_lab)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns1", "veth1", "ethertype", ethertype=0x88B5, count=5)
    assert_dropped(t.result, UNHANDLED_802_3, count=5)
    assert_counter(count.stop(), "ns2", "rx_dropped", 5, scope="dev:veth2")


@pytest.mark.netlab_topology("bridge3")
def test_pause_frames_are_never_bridged(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """802.3x PAUSE frames (to 01:80:c2:00:00:01) are for the link partner only; a Linux bridge
    drops them on ingress, whatever group_fwd_mask says (bit 1 cannot be set)."""
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns-calm1", "calmveth1", "pause", count=3)
    assert_dropped(t.result, EXPECT["pause"], count=3)


@pytest.mark.netlab_topology("bridge3")
def test_frames_with_a_multicast_source_mac_are_refused(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """A source MAC must be a valid unicast address: the bridge will not learn or forward a
    frame from 01:00:5e:00:00:01 (or from 00:00:00:00:00:00)."""
    frame = (
        Ether(src="01:00:5e:00:00:01", dst=netlab_traffic.mac("ns-calm2", "calmveth2"))
        / IP(src="198.51.100.1", dst="198.51.100.2")
        / UDP(dport=9)
    )
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns-calm1", "calmveth1", [frame] * 2)
    assert_dropped(t.result, EXPECT["bad_source_mac"], count=2)


@pytest.mark.netlab_topology("bridge3")
def test_ip_for_another_hosts_mac_is_otherhost(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """The bridge floods a frame for an unknown MAC to every port; ns-calm2 receives it with
    pkt_type OTHERHOST and IP drops it at once, even though the IP address is its own."""
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns-calm1", "calmveth1", "udp", dst="198.51.100.2", dst_mac="02:00:00:00:00:99", count=2)
    assert_dropped(t.result, EXPECT["otherhost"], count=2)


@pytest.mark.netlab_topology("bridge-stp")
def test_a_port_stp_has_not_opened_drops_frames(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """With STP on, a new port listens and learns for 2 x forward_delay before it forwards; data
    frames arriving meanwhile are dropped by the bridge with BRIDGE_INGRESS_STP_STATE."""
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("a", "a-sw", "udp", dst="198.51.100.2", dst_mac=netlab_traffic.mac("b", "b-sw"), count=2)
    assert_dropped(t.result, EXPECT["stp_state"], count=2)


def llc_handler_registered() -> bool:
    """Is a protocol handler registered for 802.2 LLC frames (``llc_rcv`` in /proc/net/ptype)?

    Built-in LLC (the development kernel) always has one. On Debian's kernels LLC is a module
    that the bridge module pulls in: before any bridge exists, 802.3 frames have no handler.
    """
    try:
        return any(line.split()[0] == "0004" for line in open("/proc/net/ptype").read().splitlines()[1:])
    except (OSError, IndexError):
        return False


SEED_FRAMES = {
    # LLC SAP 0x42: STP's own handler takes it, whether or not a bridge runs STP here
    "stp-bpdu": (bytes.fromhex("424203") + bytes(35), "stp"),
    # LLC SAP 0xE0 (IPX over LLC): LLC is there, but no SAP is registered for it
    "llc-unknown-sap": (bytes.fromhex("e0e003") + bytes(43), "llc"),
    # "raw 802.3" (Novell): the payload starts 0xFFFF, which no kernel has a handler for
    "raw-802.3": (bytes.fromhex("ffff") + bytes(44), "novell"),
}
LLC_DROP = {
    "stp": by_kernel(located("stp_pdu_rcv", "NOT_SPECIFIED", "ns2")),
    "llc": by_kernel(located("llc_rcv", "NOT_SPECIFIED", "ns2")),
}


@pytest.mark.netlab_topology("veth-two-ns")
@pytest.mark.parametrize("kind", list(SEED_FRAMES))
def test_802_3_frames_and_the_llc_handler(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory, kind: str
) -> None:
    """The seeds' case. 802.3 frames (a length, not an ethertype, after the MAC addresses) go
    to whatever handler is registered for 802.2 LLC. With one (LLC built in, or loaded by the
    bridge module), LLC takes the frame: an STP BPDU dies in STP's code, an unknown SAP in
    llc_rcv, and rx_dropped does not move. Without one, or for "raw 802.3" frames that no
    kernel handles, the frame dies at the end of __netif_receive_skb_core and rx_dropped grows
    by one per frame: the counter the seeds saw climbing after a kernel upgrade that left LLC
    out. Kernels before 5.17 show the same locations with no reason."""
    payload, handler = SEED_FRAMES[kind]
    dst = netlab_traffic.mac("ns2", "veth2")
    src = netlab_traffic.mac("ns1", "veth1")
    frame = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", ""))
    frame += len(payload).to_bytes(2, "big") + payload
    handled = handler != "novell" and llc_handler_registered()
    count = counters(netlab_lab)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", [frame] * 3)
    assert_dropped(t.result, LLC_DROP[handler] if handled else UNHANDLED_802_3, count=3)
    assert_counter(count.stop(), "ns2", "rx_dropped", 0 if handled else 3, scope="dev:veth2")
