"""The drop assertions on hand-made trace results: no root, no kernel."""

from __future__ import annotations

from dataclasses import replace

import pytest

from netlab.expect.drops import Drop, Untraced
from netlab.pytest_plugin.assertions import (
    DropAssertionError,
    assert_counter,
    assert_dropped,
    assert_not_dropped,
    assert_path,
)
from netlab.tracers.events import CounterDelta, DropEvent, Hop, Location, TraceResult


def drop(function: str, reason: str | None, node: str = "b", device: str = "eth0") -> DropEvent:
    return DropEvent(time=1.0, location=Location(function, 0x4BC), reason=reason, node=node, device=device)


def result(*drops: DropEvent) -> TraceResult:
    return TraceResult(tracer="test", lab="t", drops=drops)


def test_count_is_exact_and_at_least_is_a_floor() -> None:
    r = result(*[drop("__udp4_lib_rcv", "NO_SOCKET")] * 3)
    assert len(assert_dropped(r, Drop("__udp4_lib_rcv", "NO_SOCKET", "b"), count=3)) == 3
    assert_dropped(r, Drop("__udp4_lib_rcv", "NO_SOCKET"), at_least=2)
    with pytest.raises(DropAssertionError, match="expected exactly 2 drop"):
        assert_dropped(r, Drop("__udp4_lib_rcv", "NO_SOCKET"), count=2)
    with pytest.raises(DropAssertionError, match="saw 0"):
        assert_dropped(r, Drop("__udp4_lib_rcv", "NO_SOCKET", "a"))


def test_a_reason_asked_of_a_kernel_without_reasons_says_so() -> None:
    r = result(drop("__udp4_lib_rcv", None))
    assert_dropped(r, Drop("__udp4_lib_rcv", None), count=1)
    with pytest.raises(DropAssertionError, match="this kernel has no drop reasons"):
        assert_dropped(r, Drop("__udp4_lib_rcv", "NO_SOCKET"))


def test_untraced_means_nothing_traced_in_its_node() -> None:
    assert_dropped(result(drop("x", "R", node="a")), Untraced("freed by __kfree_skb", node="b"))
    with pytest.raises(DropAssertionError, match="were traced"):
        assert_dropped(result(drop("x", "R", node="b")), Untraced("freed by __kfree_skb", node="b"))


def test_untraced_within_a_layer_ignores_what_another_layer_drops_meanwhile() -> None:
    """5.10 has no reasons: a neighbour's multicast dying in IP must not pass for TCP's segment."""
    silent = Untraced("freed by __kfree_skb", node="b", within=("tcp_",))
    assert_dropped(result(drop("ip_rcv_finish_core", None, node="b")), silent)
    with pytest.raises(DropAssertionError, match=r"no traced drop in tcp_\* in node b"):
        assert_dropped(result(drop("tcp_rcv_state_process", None, node="b")), silent)


def test_not_dropped_and_counted_totals() -> None:
    r = result(drop("nft_do_chain", "NETFILTER_DROP", node="host"))
    assert_not_dropped(r, Drop("__udp4_lib_rcv", "NO_SOCKET"))
    with pytest.raises(DropAssertionError, match="expected no drop"):
        assert_not_dropped(r, Drop("nft_do_chain", "NETFILTER_DROP"))
    counted = TraceResult(tracer="bpftrace", lab="t", totals={("b", "__netif_receive_skb_core", "UNHANDLED_PROTO"): 5})
    assert_dropped(counted, Drop("__netif_receive_skb_core", "UNHANDLED_PROTO", "b"), count=5)


def test_path_is_the_devices_in_order() -> None:
    r = replace(
        result(), paths=((Hop(1.0, "net_dev_start_xmit", "a0", "a"), Hop(1.1, "netif_receive_skb", "b0", "b")),)
    )
    assert_path(r, ["a0", "b0"])
    with pytest.raises(DropAssertionError, match="no packet took the path a0 -> c0"):
        assert_path(r, ["a0", "c0"])


def test_counter_moved_by_exactly() -> None:
    r = replace(result(), counters=(CounterDelta(node="b", scope="dev:eth0", name="rx_dropped", delta=3),))
    assert_counter(r, "b", "rx_dropped", 3, scope="dev:eth0")
    with pytest.raises(DropAssertionError, match=r"to move by \+1, it moved by \+3"):
        assert_counter(r, "b", "rx_dropped", 1)
