"""Drops the kernel makes where no device path leads: each placed in its node, and by its rule.

Two peers' cases: the kernel selftest ``net/netfilter/br_netfilter.sh`` (broadcast pings across
a bridge whose FORWARD chain drops them: the bridge's flooded copies die in the sender's
softirq, with no path of their own) and pwru's CI case (an OUTPUT rule dropping TCP to one
port: the SYN and the TCP timer's retransmissions of it die before they have a device). Each
is asserted with the exact count the firewall's own counter gives, with each tracer that can
run: tracefs places them by the rule counters, bpftrace by the skb's device or socket.
"""

from __future__ import annotations

import sys

import pytest

from netlab.testing import Drop, Lab, TraceFactory, assert_dropped
from netlab.tracers.kernel import firewall

TRACERS = [pytest.param(name, marks=pytest.mark.netlab_tracer(name), id=name) for name in ("tracefs", "bpftrace")]


def counted(lab: Lab, node: str, text: str) -> int:
    """Packets the node's rule or policy whose text contains ``text`` has counted so far."""
    return sum(r.packets for r in firewall.read(lab.node(node)) if text in str(r))


@pytest.mark.netlab_topology("bridge3")
@pytest.mark.parametrize("tracer", TRACERS)
def test_flooded_broadcast_copies_die_on_the_bridge_host(
    netlab_lab: Lab, netlab_trace: TraceFactory, tracer: str
) -> None:
    """Broadcast pings from ns-calm1 are flooded by calmbr to ns-calm2's port; with
    bridge-nf-call-iptables and no FORWARD ACCEPT, each flooded copy dies in host's FORWARD
    policy. The copy is made and dropped in ping's own softirq, so the process context says
    ns-calm1; the host's policy counter says where it really was."""
    host = netlab_lab.node("host")
    host.run(["iptables", "-w", "-D", "FORWARD", "-i", "calmbr", "-j", "ACCEPT"], check=True)
    before = counted(netlab_lab, "host", "filter/FORWARD policy DROP")
    with netlab_trace(netlab_lab) as t:
        netlab_lab.node("ns-calm1").run(["ping", "-b", "-c", "5", "-i", "0.2", "-W", "1", "198.51.100.255"])
    policy = counted(netlab_lab, "host", "filter/FORWARD policy DROP") - before
    assert policy == 5
    assert_dropped(t.result, Drop(None, None, node="host", rule="filter/FORWARD policy DROP"), count=policy)
    assert not [d for d in t.result.drops if d.rule is None and d.reason == "NETFILTER_DROP"]


@pytest.mark.netlab_topology("bridge3")
@pytest.mark.parametrize("tracer", TRACERS)
def test_output_drop_and_the_timers_retransmission_are_the_senders(
    netlab_lab: Lab, netlab_trace: TraceFactory, tracer: str
) -> None:
    """An OUTPUT rule in ns-calm1 drops TCP to port 8080: connect() sends a SYN that dies
    before routing gives it a device, and the TCP timer retransmits it a second later, from
    softirq context. Both are ns-calm1's drops, named by the rule."""
    calm1 = netlab_lab.node("ns-calm1")
    calm1.run(["iptables", "-w", "-A", "OUTPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"], check=True)
    connect = "import socket; s = socket.socket(); s.settimeout(2.5); s.connect_ex(('198.51.100.2', 8080))"
    with netlab_trace(netlab_lab) as t:
        calm1.run([sys.executable, "-c", connect], timeout=30)
    hits = counted(netlab_lab, "ns-calm1", "--dport 8080")
    assert hits >= 2
    assert_dropped(t.result, Drop(None, None, node="ns-calm1", rule="--dport 8080 -j DROP"), count=hits)
