"""nf_tables as the kernel tells it: rule traces (NFT_MSG_TRACE) and the ruleset's text.

A packet marked ``meta nftrace set 1`` is traced through every chain it meets in its namespace:
for each rule that decides something, the kernel multicasts a message naming the table, chain,
rule handle and verdict (``nft monitor trace`` prints the same). That is the exact rule, where
counters can only say which counter moved. The rule's text comes from ``nft -a list ruleset``,
whose every rule line ends in ``# handle N``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink import nla
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES, nfgen_msg
from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_TRACE

#: nfgenmsg's family of a table (NFPROTO_*), as nft names it
FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}
#: the netlink message type of a rule trace
TRACE_TYPE = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE
TYPES = {1: "policy", 2: "return", 3: "rule"}
NF_VERDICT_MASK = 0xFF
NF_DROP = 0


def _signed(value: int | None) -> int | None:
    """A verdict as the kernel means it: a be32 that is negative for NFT_CONTINUE, NFT_JUMP..."""
    return None if value is None else value - (1 << 32) if value >= 1 << 31 else value


class nft_trace_msg(nfgen_msg):  # type: ignore[misc]  # noqa: N801 -- named as pyroute2 names its messages
    """NFT_MSG_TRACE, which pyroute2 names but has no message class for: its attributes (enum
    nft_trace_attributes, include/uapi/linux/netfilter/nf_tables.h) on pyroute2's base."""

    prefix = "NFTA_TRACE_"
    nla_map = (
        ("NFTA_TRACE_UNSPEC", "none"),
        ("NFTA_TRACE_TABLE", "asciiz"),
        ("NFTA_TRACE_CHAIN", "asciiz"),
        ("NFTA_TRACE_RULE_HANDLE", "be64"),
        ("NFTA_TRACE_TYPE", "be32"),
        ("NFTA_TRACE_VERDICT", "verdict"),
        ("NFTA_TRACE_ID", "be32"),
        ("NFTA_TRACE_LL_HEADER", "cdata"),
        ("NFTA_TRACE_NETWORK_HEADER", "cdata"),
        ("NFTA_TRACE_TRANSPORT_HEADER", "cdata"),
        ("NFTA_TRACE_IIF", "be32"),
        ("NFTA_TRACE_IIFTYPE", "be16"),
        ("NFTA_TRACE_OIF", "be32"),
        ("NFTA_TRACE_OIFTYPE", "be16"),
        ("NFTA_TRACE_MARK", "be32"),
        ("NFTA_TRACE_NFPROTO", "be32"),
        ("NFTA_TRACE_POLICY", "be32"),
        ("NFTA_TRACE_PAD", "hex"),
    )

    class verdict(nla):  # type: ignore[misc]  # noqa: N801
        prefix = "NFTA_VERDICT_"
        nla_map = (("NFTA_VERDICT_UNSPEC", "none"), ("NFTA_VERDICT_CODE", "be32"), ("NFTA_VERDICT_CHAIN", "asciiz"))


@dataclass(frozen=True)
class TraceEvent:
    """One step of a traced packet: a rule that gave a verdict, or a chain's policy."""

    id: int
    family: str
    table: str
    chain: str
    kind: str  # "rule", "policy", "return"
    handle: int | None
    verdict: int | None
    iif: int | None = None
    oif: int | None = None
    network: bytes = b""
    transport: bytes = b""

    @property
    def drops(self) -> bool:
        """The packet ends here (NF_DROP, with or without an errno above the mask; reject too)."""
        return self.verdict is not None and self.verdict >= 0 and self.verdict & NF_VERDICT_MASK == NF_DROP

    @property
    def chain_key(self) -> tuple[str, str, str]:
        return self.family, self.table, self.chain


def parse_trace(raw: bytes) -> TraceEvent | None:
    """One NFT_MSG_TRACE message (header included); None when it is not a rule or policy step."""
    msg: Any = nft_trace_msg(raw)
    try:
        msg.decode()
    except Exception:  # noqa: BLE001 -- pyroute2 raises what it raises on a short message
        return None
    kind = TYPES.get(msg.get_attr("NFTA_TRACE_TYPE") or 0)
    if kind is None:
        return None
    if kind == "policy":
        verdict = _signed(msg.get_attr("NFTA_TRACE_POLICY"))
    else:
        nested = msg.get_attr("NFTA_TRACE_VERDICT")
        verdict = _signed(nested.get_attr("NFTA_VERDICT_CODE")) if nested is not None else None
    family = msg["nfgen_family"]
    return TraceEvent(
        id=msg.get_attr("NFTA_TRACE_ID") or 0,
        family=FAMILIES.get(family, str(family)),
        table=msg.get_attr("NFTA_TRACE_TABLE") or "",
        chain=msg.get_attr("NFTA_TRACE_CHAIN") or "",
        kind=kind,
        handle=msg.get_attr("NFTA_TRACE_RULE_HANDLE"),
        verdict=verdict,
        iif=msg.get_attr("NFTA_TRACE_IIF"),
        oif=msg.get_attr("NFTA_TRACE_OIF"),
        network=msg.get_attr("NFTA_TRACE_NETWORK_HEADER") or b"",
        transport=msg.get_attr("NFTA_TRACE_TRANSPORT_HEADER") or b"",
    )


@dataclass
class Ruleset:
    """What ``nft -a list ruleset`` says of a namespace: each rule's text by (family, table,
    chain, handle) and each base chain's policy."""

    rules: dict[tuple[str, str, str, int], str]
    policies: dict[tuple[str, str, str], str]

    def describe(self, event: TraceEvent) -> str:
        """The rule (or policy) a trace step names, as the ruleset prints it."""
        family, table, chain = event.chain_key
        if event.kind == "policy":
            return f"{family} {table} {chain} policy {self.policies.get(event.chain_key, 'drop')}"
        text = self.rules.get((family, table, chain, event.handle or 0), "(rule gone from the ruleset)")
        return f"{family} {table} {chain} handle {event.handle}: {text}"


_TABLE = re.compile(r"^table (\S+) (\S+) \{")
_CHAIN = re.compile(r"^chain (\S+) \{")
_HANDLE = re.compile(r"\s*# handle (\d+)\s*$")
_POLICY = re.compile(r"\bpolicy (\w+);")


def parse_ruleset(text: str) -> Ruleset:
    """Parse ``nft -a list ruleset`` (rules one per line, as nft prints them)."""
    out = Ruleset({}, {})
    table: tuple[str, str] | None = None
    chain: str | None = None
    depth = 0
    for raw_line in text.splitlines():
        line = raw_line.strip()
        opened, closed = line.count("{"), line.count("}")
        if depth == 0 and (m := _TABLE.match(line)):
            table = (m.group(1), m.group(2))
        elif depth == 1 and (m := _CHAIN.match(line)):
            chain = m.group(1)
        elif depth == 2 and table and chain:
            key = (table[0], table[1], chain)
            if line.startswith("type "):
                if policy := _POLICY.search(line):
                    out.policies[key] = policy.group(1)
            elif handle := _HANDLE.search(line):
                out.rules[(*key, int(handle.group(1)))] = line[: handle.start()].rstrip()
        depth += opened - closed
        if depth <= 1:
            chain = None
        if depth == 0:
            table = None
    return out
