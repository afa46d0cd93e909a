"""nf_tables over netlink on the real kernel: netlab's tracing tables as nft reads them back,
one transaction (all or nothing), and rule counters equal to iptables-save's."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_NEWRULE, nft_rule_msg

from netlab.runtime import netns, nftables
from netlab.tracers.kernel import firewall
from netlab.tracing.nftrace import CREATE, MARK, TABLE, hooked_devices, removal, tracing_tables

NS = "netlab-test-nft"


def nft(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", NS, "nft", *argv], input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def node() -> Iterator[str]:
    netns.create(NS)
    try:
        subprocess.run(["ip", "-n", NS, "link", "add", "d0", "type", "veth", "peer", "name", "d1"], check=True)
        yield NS
    finally:
        netns.remove(NS)


def test_the_tracing_tables_are_what_nft_would_have_loaded(node: str) -> None:
    nft("-f", "-", stdin='table netdev edge {\n chain in { type filter hook ingress device "d0" priority 0; }\n}\n')
    assert hooked_devices(node) == {"d0"}
    nftables.apply(node, tracing_tables({"inet", "bridge", "netdev"}, {"d0"}))
    listed = nft("list", "table", "inet", TABLE)
    assert "type filter hook prerouting priority -2147483647; policy accept;" in listed
    assert "type filter hook output priority -2147483647; policy accept;" in listed
    assert listed.count("meta nftrace set 1") == 2
    netdev = nft("list", "table", "netdev", TABLE)
    assert 'hook ingress device "d0" priority -2147483647' in netdev and "meta nftrace set 1" in netdev
    assert hooked_devices(node) == {"d0"}  # netlab's own chains are not counted
    # loaded again over what a crashed trace left: replaced, not doubled
    nftables.apply(node, tracing_tables({"inet"}, set()))
    assert nft("list", "table", "inet", TABLE).count("meta nftrace set 1") == 2
    nftables.apply(node, removal({"inet", "bridge", "netdev"}))
    assert TABLE not in nft("list", "tables")
    assert "table netdev edge" in nft("list", "tables")


def test_a_refused_transaction_changes_nothing_and_says_why(node: str) -> None:
    stray = [("NFTA_RULE_TABLE", TABLE), ("NFTA_RULE_CHAIN", "nosuch"), ("NFTA_RULE_EXPRESSIONS", MARK)]
    changes = [*tracing_tables({"inet"}, set()), nftables.message(nft_rule_msg, NFT_MSG_NEWRULE, 1, stray, CREATE)]
    with pytest.raises(FileNotFoundError) as refused:
        nftables.apply(node, changes)
    assert refused.value.strerror
    assert TABLE not in nft("list", "tables")  # the tables before the refused rule went too
    with pytest.raises(FileNotFoundError):  # deleting what is not there
        nftables.apply(node, removal({"inet"}))


def test_rule_counters_are_iptables_saves_by_place(node: str) -> None:
    def run(*argv: str) -> str:
        return subprocess.run(["ip", "netns", "exec", NS, *argv], capture_output=True, text=True, check=True).stdout

    run("iptables", "-w", "-A", "OUTPUT", "-p", "icmp", "-j", "ACCEPT")
    run("iptables", "-w", "-A", "OUTPUT", "-p", "icmp", "-j", "DROP")
    run("iptables", "-w", "-P", "OUTPUT", "DROP")
    run("ip", "link", "set", "lo", "up")
    run("ping", "-c", "2", "-i", "0.01", "-W", "1", "127.0.0.1")
    counted = {("ip", c.table, c.chain, c.index): c.packets for c in nftables.counters(node, 2)}
    saved = firewall.parse_save(run("iptables-save", "-c"))
    # iptables-nft makes a builtin chain when a rule first needs it; iptables-save prints all
    assert counted.items() <= firewall.positions(saved).items() and ("ip", "filter", "INPUT", None) not in counted
    assert counted[("ip", "filter", "OUTPUT", 1)] == 4  # two echo requests and their replies
    assert [c.policy for c in nftables.counters(node, 2) if c.chain == "OUTPUT"] == ["DROP", None, None]
    assert nftables.counters(node, 10) == []  # no ip6 table
