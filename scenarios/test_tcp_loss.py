"""TCP over a lossy path: the flow completes, the losses show up as retransmissions."""

from __future__ import annotations

import pytest
from expected import NO_REASONS

from netlab.testing import (
    Drop,
    Lab,
    TraceFactory,
    Traffic,
    assert_dropped,
    by_kernel,
    get_tracer,
    lose_every_nth_tcp_packet,
)

# see test_bridge_netfilter: the verdict's drop moved from nf_hook_slow to nft_do_chain
LOSS = by_kernel(
    {
        NO_REASONS: Drop("nf_hook_slow", None, "host"),
        "5.17-6.11": Drop("nf_hook_slow", "NETFILTER_DROP", "host"),
        ">=6.12": Drop("nft_do_chain", "NETFILTER_DROP", "host"),
    }
)


@pytest.mark.netlab_topology("bridge3")
def test_tcp_recovers_from_random_loss(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """An iptables `statistic` rule on the bridge host drops every 20th TCP packet it forwards
    (deterministic: with GSO a 2 MiB flow is only a few dozen large packets, and a random 5 %
    would sometimes drop none). TCP notices the gaps (duplicate ACKs, SACK, timeouts) and retransmits until every
    byte is there: the flow completes and verifies, the sender's TCP_INFO counts the
    retransmissions, and each loss is a NETFILTER_DROP on host (in nft_do_chain from 6.12; in
    nf_hook_slow before, and without a reason before 5.17)."""
    rule = lose_every_nth_tcp_packet(netlab_lab.node("host"), 20)
    counters = get_tracer("counters").start(netlab_lab)
    with netlab_trace(netlab_lab) as t:
        result = netlab_traffic.flow("ns-calm1", "ns-calm2", 2 << 20, timeout=60)
    moved = counters.stop()
    assert result.verified
    assert result.retransmissions > 0
    losses = assert_dropped(t.result, LOSS, at_least=1)
    # named by the rule whose counter moved: the statistic rule, first in FORWARD
    assert {d.rule for d in losses} == {f"filter/FORWARD rule 1: {rule}"}
    assert moved.counter("ns-calm1", "RetransSegs", "snmp:Tcp") >= 1
    rule_hits = sum(c.delta for c in moved.counters if c.node == "host" and "statistic" in c.name)
    # every packet the rule dropped is accounted for: attributed here, or reported as ambiguous
    # (a retransmission sent from a TCP timer while another lab with these device names is up)
    assert len(losses) <= rule_hits <= len(losses) + t.result.ambiguous + t.result.lost
