"""A node's firewall rules with their packet counters, read now: what the counters tracer reports
and what names the rule of a netfilter drop (:mod:`netlab.tracing.rules`).

Two reads. :func:`counted` is every rule's and policy's counter by its place, over netlink
(iptables-nft's tables are nftables tables): no program runs, so a trace notes it at its start
for nothing. :func:`read` adds the rules' text, from ``iptables-save -c`` inside the node, for
the families that have tables there; a trace runs it only on a node whose counters moved. With
iptables' legacy backend, whose tables netlink does not show, both are ``iptables-save``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
from collections import Counter
from dataclasses import dataclass

from netlab.runtime import nftables, queries
from netlab.scope import Place

#: a rule's or policy's place: (family, table, chain, index in the chain or None for the policy)
Position = tuple[str, str, str, int | None]

_RULE = re.compile(r"^\[(\d+):(\d+)\] -A (\S+) (.*)$")
_POLICY = re.compile(r"^:(\S+) (\S+) \[(\d+):(\d+)\]")
_VERDICT = re.compile(r"(?:^|\s)-j (DROP|REJECT)(?:\s|$)")
SAVERS = (("ip", "iptables-save", socket.AF_INET), ("ip6", "ip6tables-save", socket.AF_INET6))


@dataclass(frozen=True)
class Rule:
    """One rule (``index`` from 1 in its chain) or chain policy (``index`` None) and its counter."""

    family: str  # "ip" or "ip6"
    table: str
    chain: str
    index: int | None
    text: str  # the rule as iptables-save prints it, or the policy's verdict
    packets: int

    @property
    def drops(self) -> bool:
        """Does a packet that matches end here, dropped?"""
        if self.index is None:
            return self.text == "DROP"
        return _VERDICT.search(self.text) is not None

    @property
    def position(self) -> Position:
        return (self.family, self.table, self.chain, self.index)

    def __str__(self) -> str:
        where = f"{'ip6 ' if self.family == 'ip6' else ''}{self.table}/{self.chain}"
        if self.index is None:
            return f"{where} policy {self.text}"
        return f"{where} rule {self.index}: -A {self.chain} {self.text}"


def parse_save(text: str, family: str = "ip") -> list[Rule]:
    """``iptables-save -c`` (or ip6tables-save) -> its rules and policies with their counters."""
    out: list[Rule] = []
    table = "?"
    index: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("*"):
            table, index = line[1:].strip(), Counter()
            continue
        rule = _RULE.match(line)
        if rule:
            chain = rule.group(3)
            index[chain] += 1
            out.append(Rule(family, table, chain, index[chain], rule.group(4).strip(), int(rule.group(1))))
            continue
        policy = _POLICY.match(line)
        if policy and policy.group(2) != "-":  # "-": a user chain, which has no policy
            out.append(Rule(family, table, policy.group(1), None, policy.group(2), int(policy.group(3))))
    return out


@functools.cache
def _nft_backend() -> bool:
    """Are iptables' rules nftables tables here (iptables-nft, Debian's default, which bootstrap
    sets)? The legacy backend's tables are not in nftables' dump, so there every node is read."""
    found = shutil.which("iptables-save")
    return found is not None and "legacy" not in os.path.realpath(found)


def _families(node: Place) -> set[int] | None:
    """The nftables table families of a node's namespace (None: cannot tell, read them all)."""
    if not _nft_backend():
        return None
    try:
        return queries.nft_table_families(node.netns)
    except OSError:
        return None


def read(node: Place) -> list[Rule]:
    """The node's iptables and ip6tables rules, now (a family whose tool fails is left out).

    A family without a table in the node has no rules to read, and most scenarios' nodes have
    none: one netlink dump says which families have tables, and only those run their
    ``*-save``, each a process start, which is slow in a TCG guest."""
    out: list[Rule] = []
    tables = _families(node)
    for family, tool, af in SAVERS:
        if tables is not None and af not in tables:
            continue
        try:
            saved = node.run([tool, "-c"], timeout=10, sysfs=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if saved.returncode == 0:
            out.extend(parse_save(saved.stdout, family))
    return out


def positions(rules: list[Rule]) -> dict[Position, int]:
    """Each rule's and policy's packet counter by its place."""
    return {rule.position: rule.packets for rule in rules}


def counted(node: Place) -> dict[Position, int]:
    """The node's iptables and ip6tables counters by place, now, over netlink (see the module)."""
    tables = _families(node)
    if tables is None:
        return positions(read(node))
    out: dict[Position, int] = {}
    for family, _tool, af in SAVERS:
        if af not in tables:
            continue
        try:
            found = nftables.counters(node.netns, af)
        except OSError:
            return positions(read(node))
        out.update({(family, c.table, c.chain, c.index): c.packets for c in found})
    return out
