"""Naming and placing netfilter drops from traced verdicts (no lab: events given)."""

from __future__ import annotations

import struct
from typing import Any

from pyroute2.netlink.nfnetlink.nftsocket import (
    NFT_MSG_DELTABLE,
    NFT_MSG_NEWCHAIN,
    NFT_MSG_NEWRULE,
    NFT_MSG_NEWTABLE,
    nft_chain_msg,
    nft_rule_msg,
    nft_table_msg,
)

from netlab.findings.draft import Draft
from netlab.tracers.events import DropEvent, Location
from netlab.tracers.kernel.nftables import FAMILIES, Ruleset, TraceEvent
from netlab.tracing.nftrace import PRIORITY, TABLE, is_iptables, name, place, tracing_tables

RULESET = Ruleset(
    rules={
        ("inet", "filt", "inp", 2): "udp dport 7777 counter drop",
        ("inet", "filt", "inp", 3): "udp dport 7778 drop",
    },
    policies={},
)


def verdict(handle: int, table: str = "filt", chain: str = "inp", family: str = "inet", iif: int = 7) -> TraceEvent:
    return TraceEvent(1, family, table, chain, "rule", handle, 0, iif=iif)


def drop(t: float, node: str | None = "b", device: str | None = "b-h") -> DropEvent:
    return DropEvent(t, Location("nft_do_chain"), "NETFILTER_DROP", node, device)


def test_drops_are_paired_with_the_verdicts_in_order() -> None:
    result = Draft(drops=[drop(3.0), drop(1.0), drop(2.0), drop(4.0), drop(5.0)])
    name(result, {"b": [verdict(2), verdict(2), verdict(2), verdict(3), verdict(3)]}, lambda _n: RULESET, 0)
    by_time = sorted(result.drops, key=lambda d: d.time)
    assert [d.rule for d in by_time] == 3 * ["inet filt inp handle 2: udp dport 7777 counter drop"] + 2 * [
        "inet filt inp handle 3: udp dport 7778 drop"
    ]
    assert "5 netfilter drops named by the kernel's rule trace (nftrace)" in result.notes


def test_numbers_that_do_not_fit_name_nothing_unless_one_rule_made_every_verdict() -> None:
    mixed = Draft(drops=[drop(1.0), drop(2.0)])
    name(mixed, {"b": [verdict(2), verdict(3), verdict(3)]}, lambda _n: RULESET, 1)
    assert all(d.rule is None for d in mixed.drops)
    assert mixed.notes == [
        "node b: 3 DROP verdicts traced for 2 netfilter drops (1 trace messages lost): rules named by counters only"
    ]
    one = Draft(drops=[drop(1.0), drop(2.0)])
    name(one, {"b": [verdict(2)] * 3}, lambda _n: RULESET, 0)
    assert {d.rule for d in one.drops} == {"inet filt inp handle 2: udp dport 7777 counter drop"}


def test_iptables_nft_tables_are_left_to_the_counters() -> None:
    result = Draft(drops=[drop(1.0)])
    name(result, {"b": [verdict(4, table="filter", chain="FORWARD", family="ip")]}, lambda _n: RULESET, 0)
    assert result.drops[0].rule is None and not result.notes
    assert is_iptables(verdict(4, table="filter", chain="FORWARD", family="ip"))
    assert not is_iptables(verdict(4, table="filter", chain="forward", family="bridge"))


def test_copies_without_a_path_go_to_the_node_whose_verdicts_account_for_them() -> None:
    result = Draft(
        drops=[drop(1.0, node="a", device=None)],
        unplaced=[drop(2.0, None, None), drop(3.0, None, None)],
        unattributed=2,
    )
    place(result, {"h": [verdict(2, iif=5)] * 3, "b": []}, lambda node, events: f"{node}-port{events[0].iif}")
    assert {(d.node, d.device) for d in result.drops} == {("h", "h-port5")}
    assert not result.unplaced and result.unattributed == 0
    assert result.notes[0].startswith("3 netfilter drops without a device path placed in node h")


def test_no_single_node_accounting_for_them_moves_nothing() -> None:
    result = Draft(unplaced=[drop(2.0, None, None)], unattributed=1)
    place(result, {"h": [verdict(2)] * 2, "b": [verdict(2)]}, lambda node, events: None)
    assert len(result.unplaced) == 1 and not result.drops


def decoded(raw: bytes) -> tuple[int, Any]:
    """(NFT_MSG_* kind, the message decoded by its pyroute2 class)."""
    kind = struct.unpack_from("H", raw, 4)[0] & 0xFF
    cls = {NFT_MSG_NEWTABLE: nft_table_msg, NFT_MSG_DELTABLE: nft_table_msg, NFT_MSG_NEWCHAIN: nft_chain_msg}
    msg = cls.get(kind, nft_rule_msg)(raw)
    msg.decode()
    return kind, msg


def test_the_tracing_table_marks_at_the_start_of_every_hook_a_ruleset_uses() -> None:
    messages = [decoded(raw) for raw in tracing_tables({"inet", "bridge", "netdev"}, {"c-h"})]
    kinds = [kind for kind, _msg in messages]
    # a table a crashed trace left behind goes first, in the same transaction: made, deleted, made
    assert kinds[:9] == [NFT_MSG_NEWTABLE] * 3 + [NFT_MSG_DELTABLE] * 3 + [NFT_MSG_NEWTABLE] * 3
    chains = [msg for kind, msg in messages if kind == NFT_MSG_NEWCHAIN]
    hooks = {
        (FAMILIES[c["nfgen_family"]], c.get_attr("NFTA_CHAIN_NAME")): c.get_attr("NFTA_CHAIN_HOOK") for c in chains
    }
    assert set(hooks) == {("inet", "pre"), ("inet", "out"), ("bridge", "pre"), ("bridge", "out"), ("netdev", "in0")}
    assert {h.get_attr("NFTA_HOOK_PRIORITY") for h in hooks.values()} == {PRIORITY}
    assert hooks[("netdev", "in0")].get_attr("NFTA_HOOK_DEV") == "c-h"
    assert hooks[("inet", "out")].get_attr("NFTA_HOOK_HOOKNUM") == 3  # NF_INET_LOCAL_OUT
    rules = [msg for kind, msg in messages if kind == NFT_MSG_NEWRULE]
    assert len(rules) == 5
    assert all(m.get_attr("NFTA_RULE_TABLE") == TABLE for _k, m in messages if _k == NFT_MSG_NEWRULE)
    names = [e.get_attr("NFTA_EXPR_NAME") for e in rules[0].get_attr("NFTA_RULE_EXPRESSIONS")]
    assert names == ["immediate", "meta"]
    assert not [k for k, _m in (decoded(r) for r in tracing_tables({"netdev"}, set())) if k == NFT_MSG_NEWRULE]
