"""A failed check's own packets: where they died, with the rule and the explain command."""

from __future__ import annotations

from netlab.headers import Packet
from netlab.tracers.events import DropEvent, Location, TraceResult
from netlab.workshop.died import SHOWN, where_it_died


def drop(node: str, function: str, reason: str | None, *, rule: str | None = None, dst: str | None = None) -> DropEvent:
    return DropEvent(
        0.0, Location(function), reason, node, "eth0", Packet(src=None if dst is None else "x", dst=dst), rule=rule
    )


def test_names_node_device_function_reason_rule_and_the_explain_command() -> None:
    policy = "filter/FORWARD policy DROP"
    result = TraceResult("tracefs", "bridge3", drops=(drop("host", "nft_do_chain", "NETFILTER_DROP", rule=policy),) * 2)
    assert where_it_died(result) == [
        "died: node host, device eth0, in nft_do_chain, reason NETFILTER_DROP (2 packets)",
        f"  dropped by {policy}",
        "why: netlab explain NETFILTER_DROP",
    ]


def test_most_frequent_place_first_and_the_rest_counted() -> None:
    drops = [drop(f"n{i}", "f", "R") for i in range(SHOWN + 2) for _ in range(i + 1)]
    lines = where_it_died(TraceResult("tracefs", "lab", drops=tuple(drops)))
    assert lines[0].startswith(f"died: node n{SHOWN + 1},")
    assert lines[-2] == "... and 3 more elsewhere (netlab trace shows them all)"
    assert lines[-1] == "why: netlab explain R"


def test_drops_of_other_traffic_are_left_out_when_the_tracer_read_addresses() -> None:
    mine, other = drop("a", "f", "MINE", dst="198.51.100.2"), drop("a", "g", "OTHER", dst="203.0.113.9")
    unread = drop("a", "h", "UNREAD")
    lines = where_it_died(TraceResult("bpftrace", "lab", drops=(mine, other, unread)), frozenset({"198.51.100.2"}))
    assert "why: netlab explain MINE UNREAD" in lines and not any("OTHER" in ln for ln in lines)


def test_a_kernel_without_reasons_still_names_the_function() -> None:
    lines = where_it_died(TraceResult("tracefs", "lab", drops=(drop("a", "ip_rcv_core", None),)))
    assert lines == [
        "died: node a, device eth0, in ip_rcv_core, reason unknown (kernel has no drop reasons) (1 packet)"
    ]


def test_nothing_to_say_without_drops() -> None:
    assert where_it_died(TraceResult("tracefs", "lab")) == []
