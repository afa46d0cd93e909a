"""nftables rulesets of the lab's own: each netfilter drop named by the exact rule.

The trace asks the kernel itself which rule decided (nftrace: netlab adds a table of its own to
each node with nftables for the length of the trace, whose only rule marks packets for
tracing). Each drop then carries the rule as ``nft -a list ruleset`` prints it: family, table,
chain, handle and text. Topology ``nftables``: an inet table on b, a netdev table on c's
ingress, an ip and an ip6 table on d, an inet table that commands (``exec:``) gave a, and a
bridge-family table on the switch h.
"""

from __future__ import annotations

import contextlib
import re
import socket

import pytest
from expected import NO_REASONS

from netlab.testing import Drop, Lab, TraceFactory, Traffic, assert_dropped, by_kernel

pytestmark = pytest.mark.netlab_topology("nftables")


def verdict(node: str) -> dict[str, Drop]:
    """Where a netfilter DROP verdict frees the packet (see test_bridge_netfilter): nf_hook_slow
    up to 6.11, nft_do_chain since."""
    return {
        NO_REASONS: Drop("nf_hook_slow", None, node),
        "5.17-6.11": Drop("nf_hook_slow", "NETFILTER_DROP", node),
        ">=6.12": Drop("nft_do_chain", "NETFILTER_DROP", node),
    }


def rule(family: str, table: str, chain: str, text: str) -> re.Pattern[str]:
    """A rule as a drop names it; the counter's figures are whatever they are when listed."""
    text = re.escape(text).replace("counter", r"counter packets \d+ bytes \d+")
    return re.compile(rf"{family} {table} {chain} handle \d+: {text}")


#: id -> (node, destination port, datagrams, the rule that drops them)
RULES = {
    "inet-with-counter": ("b", "198.51.100.2", 7777, 3, rule("inet", "filt", "inp", "udp dport 7777 counter drop")),
    "inet-without-counter": ("b", "198.51.100.2", 7778, 2, rule("inet", "filt", "inp", "udp dport 7778 drop")),
    "netdev-ingress": ("c", "198.51.100.3", 7779, 2, rule("netdev", "edge", "ingress", "udp dport 7779 counter drop")),
    "ip": ("d", "198.51.100.4", 7780, 2, rule("ip", "guard", "inp", "udp dport 7780 counter drop")),
    "ip6": ("d", "2001:db8:7::4", 7781, 2, rule("ip6", "guard6", "inp", "udp dport 7781 counter drop")),
}


@pytest.mark.parametrize("case", list(RULES))
def test_each_nftables_drop_names_its_rule(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory, case: str
) -> None:
    """a sends datagrams across the switch to ports that a rule of the receiving node drops:
    b's inet input chain has two rules, one with a counter and one without (counters could not
    name the second); c drops on its device's ingress (netdev family), d in an ip-family and an
    ip6-family input chain. Each drop carries its rule, from the kernel's rule trace."""
    node, address, port, count, expected = RULES[case]
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("a", "a-h", "udp", dst=address, dport=port, count=count)
    hits = assert_dropped(t.result, by_kernel(verdict(node)), count=count)
    assert all(d.rule and expected.fullmatch(d.rule) for d in hits), [d.rule for d in hits]
    assert any("nftrace" in note for note in t.result.notes), t.result.notes


def test_a_bridge_family_rule_drops_the_flooded_copies_on_the_switch(
    netlab_lab: Lab, netlab_trace: TraceFactory
) -> None:
    """50 broadcast pings from a: the switch floods each to b, c and d, and its bridge-family
    forward chain drops every copy (``meta pkttype broadcast ip protocol icmp``). The copies are
    clones made in the sender's softirq, with no device path of their own: the rule trace puts
    all 150 on h, on the port they came in by, with the rule."""
    with netlab_trace(netlab_lab) as t:
        netlab_lab.node("a").run(["ping", "-b", "-c", "50", "-i", "0.01", "-W", "1", "198.51.100.255"])
    hits = assert_dropped(t.result, by_kernel(verdict("h")), count=150)
    expected = rule("bridge", "filter", "forward", "meta pkttype broadcast ip protocol icmp counter drop")
    assert all(d.rule and expected.fullmatch(d.rule) for d in hits), {d.rule for d in hits}
    assert {d.device for d in hits} == {"h-a"}, t.result.summary()
    assert not [d for d in t.result.unplaced if d.reason in ("NETFILTER_DROP", None)], t.result.unplaced_summary()


def test_a_rule_added_by_a_command_drops_what_its_node_sends(netlab_lab: Lab, netlab_trace: TraceFactory) -> None:
    """a's output chain comes from ``exec:`` commands run after the lab was built, not from a
    ruleset: datagrams a sends to port 7782 die there, before any device has them. With no
    device path and no process of the lab behind them (the test's own socket sends), they are
    placed on a by its rule trace, with the rule."""
    with netlab_lab.node("a").socket(socket.AF_INET, socket.SOCK_DGRAM) as sender, netlab_trace(netlab_lab) as t:
        for _ in range(3):
            with contextlib.suppress(PermissionError):  # an output chain's drop is the sender's EPERM
                sender.sendto(b"x", ("198.51.100.2", 7782))
    hits = assert_dropped(t.result, by_kernel(verdict("a")), count=3)
    expected = rule("inet", "late", "out", "udp dport 7782 drop")
    assert all(d.rule and expected.fullmatch(d.rule) for d in hits), [d.rule for d in hits]
