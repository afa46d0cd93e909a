"""bridge3: bridged IPv4 goes through iptables because of br_netfilter."""

from __future__ import annotations

import pytest
from expected import NO_REASONS, udp

from netlab.testing import Drop, Lab, TraceFactory, Traffic, assert_dropped, assert_not_dropped, by_kernel

# Where netfilter's verdict frees the packet moved: nf_hook_slow before 6.x reasons reached
# nf_tables, nft_do_chain since (the 6.1 row is what the matrix measured on Debian's 6.1).
NETFILTER = by_kernel(
    {
        NO_REASONS: Drop("nf_hook_slow", None, node="host"),
        "5.17-6.11": Drop("nf_hook_slow", "NETFILTER_DROP", node="host"),
        ">=6.12": Drop("nft_do_chain", "NETFILTER_DROP", node="host"),
    }
)
# Up to 6.1 br_netfilter answered a bad IP header with a verdict and the bridge freed the frame
# (br_handle_frame, NOT_SPECIFIED from 5.17); by 6.12 br_nf_pre_routing frees it itself, IP_INHDR.
BRIDGE_IP_CHECK = by_kernel(
    {
        NO_REASONS: Drop("br_handle_frame", None, node="host"),
        "5.17-6.11": Drop("br_handle_frame", "NOT_SPECIFIED", node="host"),
        ">=6.12": Drop("br_nf_pre_routing", "IP_INHDR", node="host"),
    }
)


def delete_accept_rule(lab: Lab) -> None:
    lab.node("host").run(["iptables", "-w", "-D", "FORWARD", "-i", "calmbr", "-j", "ACCEPT"], check=True)


@pytest.mark.netlab_topology("bridge3")
def test_forward_policy_drop_kills_bridged_traffic(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """With bridge-nf-call-iptables=1 a bridged IPv4 packet traverses the FORWARD chain of the
    host's iptables. On a host whose FORWARD policy is DROP (as with container rules), without
    an ACCEPT for the bridge it dies in nf_tables: NETFILTER_DROP in nft_do_chain, on host.
    The event does not say which rule: the chain's policy counter does, and each drop is named
    by it."""
    delete_accept_rule(netlab_lab)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns-calm1", "calmveth1", "udp", dst="198.51.100.2", dport=9999, count=3)
    assert_dropped(t.result, NETFILTER, count=3)
    assert_dropped(t.result, Drop(None, None, node="host", rule="filter/FORWARD policy DROP"), count=3)


@pytest.mark.netlab_topology("bridge3")
def test_forward_accept_rule_lets_it_through(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """`-A FORWARD -i calmbr -j ACCEPT` is what makes bridge3 work: the packet reaches ns-calm2
    (where UDP to a closed port ends in NO_SOCKET, proof that it arrived)."""
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns-calm1", "calmveth1", "udp", dst="198.51.100.2", dport=9999, count=3)
    assert_not_dropped(t.result, NETFILTER)
    assert_dropped(t.result, udp("NO_SOCKET", "ns-calm2"), count=3)


@pytest.mark.netlab_topology("bridge3")
def test_without_bridge_nf_call_iptables_the_policy_does_not_apply(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """Set net.bridge.bridge-nf-call-iptables=0 on host and bridged frames bypass iptables:
    the DROP policy no longer matters, with or without the ACCEPT rule."""
    delete_accept_rule(netlab_lab)
    netlab_lab.node("host").run(["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"], check=True)
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns-calm1", "calmveth1", "udp", dst="198.51.100.2", dport=9999, count=3)
    assert_not_dropped(t.result, NETFILTER)
    assert_dropped(t.result, udp("NO_SOCKET", "ns-calm2"), count=3)


@pytest.mark.netlab_topology("bridge3")
def test_br_netfilter_checks_ip_headers_on_the_bridge(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """Because br_netfilter hands bridged IPv4 to the IP hooks, it first validates the IP header
    as a router would; a bad header checksum is dropped on the bridge itself (IP_INHDR in
    br_nf_pre_routing), before it ever reaches the destination host. Up to 6.1 the check
    only returned a verdict and br_handle_frame freed the frame, without a reason."""
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns-calm1", "calmveth1", "udp", dst="198.51.100.2", bad="ip-csum", count=2)
    assert_dropped(t.result, BRIDGE_IP_CHECK, count=2)
