"""The seeds' three variants of two endpoints: same namespace, two namespaces, a bridge."""

from __future__ import annotations

import pytest

from netlab.testing import Lab, TraceFactory, TraceOptions, Traffic, assert_path, get_tracer
from netlab.tracers.backends.ftrace import SEED_003_WALK, FtraceSession, contains_in_order, seed_name, walk


@pytest.mark.netlab_topology("veth-same-ns")
def test_both_veth_ends_in_one_namespace_use_lo(netlab_lab: Lab, netlab_trace: TraceFactory) -> None:
    """Both addresses belong to ns1, so the kernel routes 198.51.100.2 through the local table:
    the packet goes out and back in through lo, never touching veth1 or veth2."""
    with netlab_trace(netlab_lab) as t:
        netlab_lab.node("ns1").run(["ping", "-c1", "-W1", "-I", "198.51.100.1", "198.51.100.2"], check=True)
    assert_path(t.result, ["lo"])
    assert not [p for p in t.result.paths if any(h.device in ("veth1", "veth2") for h in p)]


@pytest.mark.netlab_topology("veth-two-ns")
def test_veth_ends_in_two_namespaces_go_straight_across(netlab_lab: Lab, netlab_trace: TraceFactory) -> None:
    """veth_xmit in ns1 hands the skb to the peer in ns2 (netif_rx, then
    __netif_receive_skb_core on the backlog): one hop, no lo, no routing in between."""
    with netlab_trace(netlab_lab) as t:
        netlab_lab.node("ns1").run(["ping", "-c1", "-W1", "198.51.100.2"], check=True)
    assert_path(t.result, ["veth1", "veth2"])
    assert_path(t.result, ["veth2", "veth1"])  # and the reply the same way back


@pytest.mark.netlab_topology("bridge3")
def test_bridged_path_through_calmbr(netlab_lab: Lab, netlab_trace: TraceFactory) -> None:
    """The seeds' walk: veth_xmit on calmveth1, the peer calmveth1_peer receives, the bridge
    calmbr forwards (br_handle_frame -> br_forward, no tracepoint of its own: inferred from
    entering one port and leaving another), calmveth2_peer transmits, calmveth2 receives."""
    with netlab_trace(netlab_lab) as t:
        netlab_lab.node("ns-calm1").run(["ping", "-c1", "-W1", "198.51.100.2"], check=True)
    assert_path(t.result, ["calmveth1", "calmveth1_peer", "calmbr", "calmveth2_peer", "calmveth2"])


@pytest.mark.netlab_topology("bridge3")
def test_tcp_segment_walks_across_bridge3_function_by_function(netlab_lab: Lab, netlab_traffic: Traffic) -> None:
    """Seed 003 followed a TCP segment with function_graph by hand: tcp_sendmsg builds it,
    __ip_queue_xmit routes it, dev_queue_xmit hands it to veth_xmit, which passes it to the
    peer with netif_rx; the backlog (usually drained in the sender's own softirq; on a busy
    CPU another task's softirq may drain it first, seen on 5.10 under TCG, so the walk is then
    followed on that CPU) delivers it to
    __netif_receive_skb_core on calmveth1_peer, a bridge port, so br_handle_frame takes it
    and br_forward sends it out of calmveth2_peer (dev_queue_xmit, veth_xmit, netif_rx
    again); in ns-calm2 it is an IP packet for us (ip_rcv), TCP's (tcp_v4_rcv), queued for
    the socket (tcp_queue_rcv). The same walk on every kernel, under the names each has."""
    tracer = get_tracer("ftrace")
    found = tracer.probe()
    if not found.usable:
        pytest.skip(f"no function tracer here: {found.detail}")
    session = tracer.start(netlab_lab, TraceOptions(graph=True))
    assert isinstance(session, FtraceSession)
    try:
        netlab_traffic.flow("ns-calm1", "ns-calm2", 4096, timeout=120)
    finally:
        result = session.stop()
    traced = {seed_name(f) for f in session.functions}
    assert {"tcp_sendmsg", "veth_xmit", "br_handle_frame", "ip_rcv", "tcp_v4_rcv"} <= traced
    wanted = [f for f in SEED_003_WALK if f in traced]  # tcp_queue_rcv may be inlined
    walks = {f"pid {pid}": walk(result.calls, pid=pid) for pid in {c.pid for c in result.calls}}
    walks |= {f"cpu {cpu}": walk(result.calls, cpu=cpu) for cpu in {c.cpu for c in result.calls}}
    assert any(contains_in_order(w, wanted) for w in walks.values()), walks
