"""The seeds' three variants of two endpoints: same namespace, two namespaces, a bridge."""

from __future__ import annotations

from typing import Any

import pytest

from netlab.lab import Lab
from netlab.pytest_plugin.assertions import assert_path


@pytest.mark.netlab_topology("veth-same-ns")
def test_both_veth_ends_in_one_namespace_use_lo(netlab_lab: Lab, netlab_trace: Any) -> None:
    """Both addresses belong to ns1, so the kernel routes 198.51.100.2 through the local table:
    the packet goes out and back in through lo, never touching veth1 or veth2."""
    with netlab_trace(netlab_lab) as t:
        netlab_lab.node("ns1").run(["ping", "-c1", "-W1", "-I", "198.51.100.1", "198.51.100.2"], check=True)
    assert_path(t.result, ["lo"])
    assert not [p for p in t.result.paths if any(h.device in ("veth1", "veth2") for h in p)]


@pytest.mark.netlab_topology("veth-two-ns")
def test_veth_ends_in_two_namespaces_go_straight_across(netlab_lab: Lab, netlab_trace: Any) -> None:
    """veth_xmit in ns1 hands the skb to the peer in ns2 (netif_rx, then
    __netif_receive_skb_core on the backlog): one hop, no lo, no routing in between."""
    with netlab_trace(netlab_lab) as t:
        netlab_lab.node("ns1").run(["ping", "-c1", "-W1", "198.51.100.2"], check=True)
    assert_path(t.result, ["veth1", "veth2"])
    assert_path(t.result, ["veth2", "veth1"])  # and the reply the same way back


@pytest.mark.netlab_topology("bridge3")
def test_bridged_path_through_calmbr(netlab_lab: Lab, netlab_trace: Any) -> None:
    """The seeds' walk: veth_xmit on calmveth1, the peer calmveth1_peer receives, the bridge
    calmbr forwards (br_handle_frame -> br_forward, no tracepoint of its own: inferred from
    entering one port and leaving another), calmveth2_peer transmits, calmveth2 receives."""
    with netlab_trace(netlab_lab) as t:
        netlab_lab.node("ns-calm1").run(["ping", "-c1", "-W1", "198.51.100.2"], check=True)
    assert_path(t.result, ["calmveth1", "calmveth1_peer", "calmbr", "calmveth2_peer", "calmveth2"])
