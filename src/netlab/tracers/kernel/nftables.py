"""nf_tables as the kernel tells it: rule traces (NFT_MSG_TRACE) and the ruleset's text.

A packet marked ``meta nftrace set 1`` is traced through every chain it meets in its namespace:
for each rule that decides something, the kernel multicasts a message naming the table, chain,
rule handle and verdict (``nft monitor trace`` prints the same). That is the exact rule, where
counters can only say which counter moved. The rule's text comes from ``nft -a list ruleset``,
whose every rule line ends in ``# handle N``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from netlab.runtime import nlmsg

#: nfgenmsg's family of a table (NFPROTO_*), as nft names it
FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}
# enum nft_trace_attributes, nft_trace_types, nft_verdict_attributes
TRACE_TABLE, TRACE_CHAIN, TRACE_RULE_HANDLE, TRACE_TYPE, TRACE_VERDICT, TRACE_ID = 1, 2, 3, 4, 5, 6
TRACE_NETWORK_HEADER, TRACE_TRANSPORT_HEADER, TRACE_IIF, TRACE_OIF, TRACE_POLICY = 8, 9, 10, 12, 16
TYPES = {1: "policy", 2: "return", 3: "rule"}
VERDICT_CODE = 1
NF_VERDICT_MASK = 0xFF
NF_DROP = 0
HEADER_SIZE = nlmsg.HEADER.size
NFGENMSG_SIZE = nlmsg.NFGENMSG.size


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


def _be32(value: bytes | None) -> int | None:
    return struct.unpack(">i", value[:4])[0] if value and len(value) >= 4 else None


def _be32u(value: bytes | None) -> int | None:
    return struct.unpack(">I", value[:4])[0] if value and len(value) >= 4 else None


def parse_trace(raw: bytes) -> TraceEvent | None:
    """One NFT_MSG_TRACE message (header included); None when it is not a rule or policy step."""
    if len(raw) < HEADER_SIZE + NFGENMSG_SIZE:
        return None
    family = FAMILIES.get(raw[HEADER_SIZE], str(raw[HEADER_SIZE]))
    attrs = nlmsg.parse_attributes(raw, HEADER_SIZE + NFGENMSG_SIZE)
    kind = TYPES.get(_be32u(attrs.get(TRACE_TYPE)) or 0)
    if kind is None:
        return None
    if kind == "policy":
        verdict = _be32(attrs.get(TRACE_POLICY))
    else:
        nested = attrs.get(TRACE_VERDICT, b"")
        verdict = _be32(nlmsg.parse_nested(nested).get(VERDICT_CODE)) if nested else None
    handle = attrs.get(TRACE_RULE_HANDLE)
    return TraceEvent(
        id=_be32u(attrs.get(TRACE_ID)) or 0,
        family=family,
        table=nlmsg.text(attrs.get(TRACE_TABLE)),
        chain=nlmsg.text(attrs.get(TRACE_CHAIN)),
        kind=kind,
        handle=struct.unpack(">Q", handle[:8])[0] if handle and len(handle) >= 8 else None,
        verdict=verdict,
        iif=_be32u(attrs.get(TRACE_IIF)),
        oif=_be32u(attrs.get(TRACE_OIF)),
        network=attrs.get(TRACE_NETWORK_HEADER, b""),
        transport=attrs.get(TRACE_TRANSPORT_HEADER, b""),
    )


@dataclass
class Ruleset:
    """What ``nft -a list ruleset`` says of a namespace: each rule's text by (family, table,
    chain, handle), each base chain's policy, and the devices netdev chains hook."""

    rules: dict[tuple[str, str, str, int], str]
    policies: dict[tuple[str, str, str], str]
    netdev_devices: set[str]

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
_DEVICE = re.compile(r'\bhook ingress device "?([^"\s;]+)"?')
_DEVICES = re.compile(r"\bdevices = \{([^}]*)\}")


def parse_ruleset(text: str) -> Ruleset:
    """Parse ``nft -a list ruleset`` (rules one per line, as nft prints them)."""
    out = Ruleset({}, {}, set())
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
                if table[0] == "netdev" and (dev := _DEVICE.search(line)):
                    out.netdev_devices.add(dev.group(1))
            elif table[0] == "netdev" and (devs := _DEVICES.search(line)):
                out.netdev_devices.update(d.strip().strip('"') for d in devs.group(1).split(",") if d.strip())
            elif handle := _HANDLE.search(line):
                out.rules[(*key, int(handle.group(1)))] = line[: handle.start()].rstrip()
        depth += opened - closed
        if depth <= 1:
            chain = None
        if depth == 0:
            table = None
    return out
