"""Which nftables rule dropped a packet, from the kernel's own rule tracing (nftrace).

For the length of a trace, each node that has nf_tables tables gets one more table of netlab's
own (``netlab_trace``, in the families its tables use) whose chains run before anything else on
the prerouting and output hooks (and on the ingress of each device a netdev chain hooks), and
do nothing but ``meta nftrace set 1``. From then on the kernel reports every verdict of every
rule those packets meet, to a netlink socket netlab holds inside the node; the table is
deleted when the trace stops. Nothing outside the lab's namespaces is touched, and no verdict
changes.

Each netfilter drop of a node is then paired with the node's traced DROP verdicts, in order:
the rule's family, table, chain and handle, and its text as ``nft -a list ruleset`` prints it.
A drop that no device path placed (a bridge's flooded copies die in the sender's context) goes
to the node that traced exactly the drops left over, on the device the trace names. Tables
iptables-nft made are left to the counters (:mod:`netlab.tracing.rules`), which name the
iptables rule as ``iptables-save`` prints it; where the pairing cannot be made (a lost trace
message), the counters name what they can, and the notes say which way each node's rules were
named.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Any

from pyroute2.netlink import NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST
from pyroute2.netlink.nfnetlink.nftsocket import (
    NFT_MSG_DELTABLE,
    NFT_MSG_GETCHAIN,
    NFT_MSG_NEWCHAIN,
    NFT_MSG_NEWRULE,
    NFT_MSG_NEWTABLE,
    nft_chain_msg,
    nft_rule_msg,
    nft_table_msg,
)

from netlab.findings.draft import Draft
from netlab.runtime import netlink, nftables, queries
from netlab.scope import Scope
from netlab.tracers.kernel.nftables import FAMILIES, TRACE_TYPE, Ruleset, TraceEvent, parse_ruleset, parse_trace
from netlab.tracing.collector import Collector
from netlab.tracing.rules import is_netfilter_drop, place_left_over

TABLE = "netlab_trace"
#: before every chain a ruleset can have (the lowest priority nft accepts but one)
PRIORITY = -2147483647

#: tables iptables-nft and ip6tables-nft make, whose rules iptables-save prints better than nft
XT_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})


def is_iptables(event: TraceEvent) -> bool:
    """A step in a table and chain that iptables-nft made."""
    return made_by_iptables(event.family, event.table, event.chain)


def made_by_iptables(family: str, table: str, chain: str) -> bool:
    """A chain of a table iptables-nft makes (its builtin chains are upper case; an nft user's
    ``table ip filter`` has chains of their own naming, conventionally lower case)."""
    return family in ("ip", "ip6") and table in XT_TABLES and chain.isupper()


#: nfgenmsg's family of the tables netlab traces from (NFPROTO_*)
FAMILY_NUMBERS = {"inet": 1, "netdev": 5, "bridge": 7}
#: the hooks a tracing chain sits on: NF_INET_PRE_ROUTING, NF_INET_LOCAL_OUT (the bridge
#: family's NF_BR_* have the same numbers), NF_NETDEV_INGRESS
PREROUTING, OUTPUT, INGRESS = 0, 3, 0
NFT_REG_1 = 1
NFT_META_NFTRACE = 12
CREATE = NLM_F_REQUEST | NLM_F_CREATE
#: the rule every tracing chain holds: ``meta nftrace set 1`` as nft compiles it
MARK = [
    {
        "attrs": [
            ("NFTA_EXPR_NAME", "immediate"),
            (
                "NFTA_EXPR_DATA",
                {
                    "attrs": [
                        ("NFTA_IMMEDIATE_DREG", NFT_REG_1),
                        ("NFTA_IMMEDIATE_DATA", {"attrs": [("NFTA_DATA_VALUE", b"\x01")]}),
                    ]
                },
            ),
        ]
    },
    {
        "attrs": [
            ("NFTA_EXPR_NAME", "meta"),
            ("NFTA_EXPR_DATA", {"attrs": [("NFTA_META_KEY", NFT_META_NFTRACE), ("NFTA_META_SREG", NFT_REG_1)]}),
        ]
    },
]


def removal(families: set[str]) -> list[bytes]:
    """The messages that delete netlab's tracing tables of ``families``."""
    return [
        nftables.message(
            nft_table_msg, NFT_MSG_DELTABLE, FAMILY_NUMBERS[f], [("NFTA_TABLE_NAME", TABLE)], NLM_F_REQUEST
        )
        for f in sorted(families)
    ]


def tracing_tables(families: set[str], devices: set[str]) -> list[bytes]:
    """The one transaction that loads netlab's tracing table(s) for a node: a chain that marks
    every packet at the start of each hook its ruleset uses, in each family. A table a crashed
    trace left behind is replaced, not added to (made if missing, deleted, made again)."""

    def table() -> list[bytes]:
        return [
            nftables.message(nft_table_msg, NFT_MSG_NEWTABLE, FAMILY_NUMBERS[f], [("NFTA_TABLE_NAME", TABLE)], CREATE)
            for f in sorted(families)
        ]

    chains: list[tuple[str, str, int, str | None]] = []
    for family in sorted(families & {"inet", "bridge"}):
        chains += [(family, "pre", PREROUTING, None), (family, "out", OUTPUT, None)]
    if "netdev" in families:
        chains += [("netdev", f"in{i}", INGRESS, dev) for i, dev in enumerate(sorted(devices))]
    out = table() + removal(families) + table()
    for family, chain, hook, device in chains:
        hooked: list[tuple[str, Any]] = [("NFTA_HOOK_HOOKNUM", hook), ("NFTA_HOOK_PRIORITY", PRIORITY)]
        if device is not None:
            hooked.append(("NFTA_HOOK_DEV", device))
        where = [("NFTA_CHAIN_TABLE", TABLE), ("NFTA_CHAIN_NAME", chain)]
        out.append(
            nftables.message(
                nft_chain_msg,
                NFT_MSG_NEWCHAIN,
                FAMILY_NUMBERS[family],
                [*where, ("NFTA_CHAIN_HOOK", {"attrs": hooked}), ("NFTA_CHAIN_TYPE", "filter")],
                CREATE,
            )
        )
        rule = [("NFTA_RULE_TABLE", TABLE), ("NFTA_RULE_CHAIN", chain), ("NFTA_RULE_EXPRESSIONS", MARK)]
        out.append(nftables.message(nft_rule_msg, NFT_MSG_NEWRULE, FAMILY_NUMBERS[family], rule, CREATE | NLM_F_APPEND))
    return out


def hooked_devices(netns: str) -> set[str]:
    """The devices the node's netdev chains hook (netlab traces each from its own chain)."""
    out = set()
    for chain in queries.nft_dump(netns, NFT_MSG_GETCHAIN, nft_chain_msg, FAMILY_NUMBERS["netdev"]):
        hook = chain.get_attr("NFTA_CHAIN_HOOK")
        if hook is None or chain.get_attr("NFTA_CHAIN_TABLE") == TABLE:
            continue
        one, several = hook.get_attr("NFTA_HOOK_DEV"), hook.get_attr("NFTA_HOOK_DEVS")
        if one:
            out.add(one)
        if several is not None:  # a chain of several devices (``devices = { a, b }``)
            out.update(name for key, name in several["attrs"] if key == "NFTA_DEVICE_NAME")
    return out


class NfTrace(Collector):
    """Rule traces of a scope's nodes for the length of a trace."""

    name = "nftables rule trace"

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        #: node -> the families of netlab's tables loaded there
        self.loaded: dict[str, set[str]] = {}
        self.events: dict[str, list[TraceEvent]] = {}
        self.problems: list[str] = []
        self.lost = 0
        self._socks: dict[socket.socket, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Load netlab's tracing table where a node has nftables rules, and read its verdicts."""
        for name in self.scope.nodes:
            self._arm(name)
        if self._socks:
            self._thread = threading.Thread(target=self._read, name="nftrace", daemon=True)
            self._thread.start()

    def _arm(self, name: str) -> None:
        node = self.scope.nodes[name]
        chains = {(FAMILIES.get(f, str(f)), t, c) for f, t, c in queries.nft_chains(node.netns) if t != TABLE}
        if all(made_by_iptables(*chain) for chain in chains):
            return  # nothing, or only iptables-nft's: the counters name those as iptables prints them
        families = {"inet"}
        named = {family for family, _t, _c in chains}
        if "bridge" in named:
            families.add("bridge")
        devices: set[str] = set()
        if "netdev" in named:
            devices = hooked_devices(node.netns)
            families.add("netdev")
        sock = queries.open_nftrace(node.netns)
        try:
            nftables.apply(node.netns, tracing_tables(families, devices))
        except OSError as exc:
            sock.close()
            self.problems.append(f"node {name}: cannot trace its nftables rules: {exc.strerror}")
            return
        self._socks[sock] = name
        self.loaded[name] = families
        self.events[name] = []

    def _read(self) -> None:
        with selectors.DefaultSelector() as sel:
            for sock in self._socks:
                sel.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.05):
                    self._drain(key.fileobj)  # type: ignore[arg-type]
            for sock in self._socks:
                self._drain(sock)

    def _drain(self, sock: socket.socket) -> None:
        node = self._socks[sock]
        while True:
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError:  # ENOBUFS: the kernel dropped messages; the pairing will not fit
                self.lost += 1
                continue
            for off, length, kind, _flags, _seq in netlink.messages(data):
                if kind != TRACE_TYPE:
                    continue
                event = parse_trace(data[off : off + length])
                if event is not None and event.table != TABLE:
                    self.events[node].append(event)

    def stop(self) -> None:
        """Stop reading and take netlab's tables out of the nodes (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for sock in self._socks:
            sock.close()
        self._socks.clear()
        for name, families in list(self.loaded.items()):
            with contextlib.suppress(OSError):
                nftables.apply(self.scope.nodes[name].netns, removal(families))
        self.loaded.clear()

    def add(self, draft: Draft) -> None:
        """Place and name the draft's netfilter drops from the traced verdicts."""
        draft.notes.extend(self.problems)
        dropped = {node: [e for e in events if e.drops] for node, events in self.events.items()}
        if not any(dropped.values()):
            return
        place(draft, dropped, self._device)
        name(draft, dropped, self._ruleset, self.lost)

    def _ruleset(self, node: str) -> Ruleset:
        return parse_ruleset(self.scope.nodes[node].run(["nft", "-a", "list", "ruleset"], timeout=10).stdout)

    def _device(self, node: str, events: list[TraceEvent]) -> str | None:
        """The one input device these verdicts name, by name (None if several or none)."""
        indexes = {e.iif for e in events if e.iif}
        if len(indexes) != 1:
            return None
        with (
            contextlib.suppress(OSError),
            contextlib.closing(netlink.open_route_socket(self.scope.nodes[node].netns)) as sock,
        ):
            link = netlink.dump_links(sock).get(indexes.pop())
            return link.ifname if link else None
        return None


def name(result: Draft, dropped: dict[str, list[TraceEvent]], ruleset: Callable[[str], Ruleset], lost: int) -> None:
    """Pair each node's netfilter drops with its traced DROP verdicts, in order, and name the
    rule of each (not those of iptables-nft's tables: the counters name them as iptables does).
    Where the numbers differ, only a node whose verdicts all came from one rule is named."""
    rulesets: dict[str, Ruleset] = {}
    named = 0
    for node, verdicts in dropped.items():
        mine = sorted(
            (i for i, d in enumerate(result.drops) if d.node == node and d.rule is None and is_netfilter_drop(d)),
            key=lambda i: result.drops[i].time,
        )
        if not mine or not verdicts:
            continue
        if len(mine) != len(verdicts) and len({(e.chain_key, e.handle, e.kind) for e in verdicts}) > 1:
            result.notes.append(
                f"node {node}: {len(verdicts)} DROP verdicts traced for {len(mine)} netfilter drops"
                f"{f' ({lost} trace messages lost)' if lost else ''}: rules named by counters only"
            )
            continue
        for k, i in enumerate(mine):
            event = verdicts[min(k, len(verdicts) - 1)]
            if is_iptables(event):
                continue
            if node not in rulesets:
                rulesets[node] = ruleset(node)
            result.drops[i] = result.drops[i].evolve(rule=rulesets[node].describe(event))
            named += 1
    if named:
        result.notes.append(f"{named} netfilter drops named by the kernel's rule trace (nftrace)")


def place(
    result: Draft, dropped: dict[str, list[TraceEvent]], device_of: Callable[[str, list[TraceEvent]], str | None]
) -> None:
    """Give the netfilter drops no device path placed to the node whose traced DROP verdicts
    account for exactly them, on the device the trace names (the counters' rule,
    :func:`netlab.tracing.rules.place_left_over`, with verdicts, which every rule has)."""
    place_left_over(
        result,
        {node: len(v) for node, v in dropped.items()},
        is_netfilter_drop,
        [d for d in result.unplaced if is_netfilter_drop(d)],
        evidence="its rule trace shows",
        device_of=lambda node, count: device_of(node, dropped[node][-count:]),
    )
