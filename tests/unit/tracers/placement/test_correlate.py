"""A drop placed on a node and device of the lab: path decoding and the correlator."""

from __future__ import annotations

import json
from pathlib import Path

from netlab.model.loader import load
from netlab.model.topology import Topology
from netlab.plan.planner import layout
from netlab.tracers.backends import tracefs
from netlab.tracers.decode.records import Record, parse_stream
from netlab.tracers.events import devices
from netlab.tracers.placement.attribution import LabMap, decode, last_hop
from netlab.tracers.placement.correlate import Correlator

RECORDED = Path(__file__).resolve().parents[3] / "data" / "recorded"


def test_path_decoding_resolves_repeated_names() -> None:
    """Every node has an eth0: a multi-hop path still places each hop; a one-hop one cannot."""
    topo, _ = load("routed3")
    text = json.dumps(topo.model_dump(mode="json"))
    for old, new in (
        ("c-r1", "eth0"),
        ("r1-c", "eth0"),
        ("r1-r2", "eth1"),
        ("r2-r1", "eth0"),
        ("r2-s", "eth1"),
        ("s-r2", "eth0"),
    ):
        text = text.replace(f'"{old}"', f'"{new}"').replace(f':{old}"', f':{new}"')
    m = LabMap.of(layout("routed3", Topology.model_validate(json.loads(text), strict=False)))
    hops = [
        ("net_dev_start_xmit", "eth0"),
        ("netif_rx", "eth0"),
        ("netif_receive_skb", "eth0"),
        ("net_dev_start_xmit", "eth1"),
        ("netif_rx", "eth0"),
        ("netif_receive_skb", "eth0"),
    ]
    (only,) = decode(m, hops)
    assert only[0] == ("client", "eth0") and only[-1] == ("r2", "eth0")
    assert last_hop(m, hops[:1]) == "ambiguous"  # eth0 alone could be any node
    assert last_hop(m, hops[:2]) == "ambiguous"  # client->r1 or r1->client: names cannot tell


def test_correlator_infers_the_bridge_and_attributes_drops() -> None:
    topo, _ = load("bridge3")
    records = sorted(parse_stream((RECORDED / "tracefs-bridge3.txt").read_text().splitlines()), key=lambda r: r.time)
    c = Correlator(LabMap.of(layout("bridge3", topo)), [], "tracefs")
    c.feed(records)
    assert any(devices(p) == ["calmveth1", "calmveth1_peer", "calmbr", "calmveth2_peer", "calmveth2"] for p in c.paths)
    udp = [d for d in c.drops if d.base == "__udp4_lib_rcv"]
    assert udp and udp[0].node == "ns-calm2" and udp[0].reason == "NO_SOCKET"
    assert udp[0].stack[0] == "__udp4_lib_rcv"


def test_a_path_another_lab_explains_needs_our_process_context() -> None:
    topo, _ = load("bridge3")
    records = sorted(parse_stream((RECORDED / "tracefs-bridge3.txt").read_text().splitlines()), key=lambda r: r.time)
    for r in records:
        r.context = (None, False)  # not our process, not in our namespaces
    c = Correlator(LabMap.of(layout("bridge3", topo)), [LabMap.of(layout("bridge3-other", topo))], "tracefs")
    c.feed(records)
    assert c.drops == [] and c.ambiguous > 0
    # kept placed as this lab would place them, for what netlab sent to settle
    assert c.contested and {d.node for d in c.contested if d.base == "__udp4_lib_rcv"} == {"ns-calm2"}
    for r in records:
        r.context = (None, True)  # the tracing process drove the traffic
    c2 = Correlator(LabMap.of(layout("bridge3", topo)), [LabMap.of(layout("bridge3-other", topo))], "tracefs")
    c2.feed(records)
    assert c2.drops and c2.ambiguous == 0


def test_another_labs_packet_on_a_recycled_address_is_not_ours() -> None:
    """Our ICMP reply's free went unseen (a deferred free), its skb address was reused by a SYN
    of another lab that dies there: the SYN's own hops start a new path, so the drop is not ours
    even though our own process drove both labs (the CI failure this guards against)."""
    topo, _ = load("bridge3")
    other, _ = load("veth-two-ns")

    def rec(t: float, event: str, **fields: str) -> Record:
        return Record(t, 0, 1, "pytest", event, {"skbaddr": "0xffff1", **fields}, context=(None, True))

    records = [
        rec(1.0, "net_dev_start_xmit", name="calmveth2"),
        rec(1.1, "netif_rx", name="calmveth2_peer"),
        rec(1.2, "net_dev_start_xmit", name="calmveth1_peer"),
        rec(1.3, "netif_receive_skb", name="calmveth1"),  # ...and then freed without a tracepoint
        rec(2.0, "net_dev_start_xmit", name="veth1"),
        rec(2.1, "netif_receive_skb", name="veth2"),
        rec(2.2, "kfree_skb", location="tcp_v4_rcv+0x1", reason="NO_SOCKET", protocol="2048"),
    ]
    c = Correlator(LabMap.of(layout("bridge3", topo)), [LabMap.of(layout("veth-two-ns", other))], "tracefs")
    c.feed(records)
    assert c.drops == [] and c.unattributed == 1
    theirs = Correlator(LabMap.of(layout("veth-two-ns", other)), [LabMap.of(layout("bridge3", topo))], "tracefs")
    theirs.feed(records)
    assert [(d.node, d.device) for d in theirs.drops] == [("ns2", "veth2")]
    # which needs the kernel to pass the other lab's path events to our trace
    flt = tracefs.name_filter(LabMap.of(layout("bridge3", topo)), [LabMap.of(layout("veth-two-ns", other))])
    assert flt is not None and 'name == "veth1"' in flt and 'name == "calmveth1"' in flt
    without = Correlator(LabMap.of(layout("bridge3", topo)), [LabMap.of(layout("veth-two-ns", other))], "tracefs")
    without.feed(r for r in records if r.fields.get("name") not in ("veth1", "veth2"))
    assert [d.node for d in without.drops] == ["ns-calm1"]  # what a filter of our names alone gave


def test_a_device_the_plan_did_not_make_is_placed_once_seen_live() -> None:
    """A tunnel a scenario adds with ``ip link add`` is unknown to the topology: the path ends
    on it only once the live link dump has named it, and then on the node that has it."""
    topo, _ = load("overlay")
    m = LabMap.of(layout("overlay", topo))
    hops = [("net_dev_queue", "vx9"), ("net_dev_start_xmit", "vx9")]
    assert last_hop(m, hops) is None
    m.add_live("h1", ["lo", "ul1", "vx1", "vx9"])
    m.add_live("h1", ["vx9"])
    assert m.by_name["vx9"] == [("h1", "vx9")]
    assert m.by_name["ul1"] == [("h1", "ul1")]
    assert last_hop(m, hops) == ("h1", "vx9")
