"""Topology -> Plan: decide every kernel object, its namespace and its ifindex.

The planner assigns interface indexes itself (``IFINDEX_BASE`` upwards, one count for the
whole lab, in the order bridges, link ends, then dummies, vxlans, vlans and macvlans) and asks
the kernel for exactly those. Knowing every index in advance means no step ever has to look an
interface up, so a node's steps of one phase can go to the kernel in one netlink batch; it also
makes a lab's ifindexes the same on every run, which keeps traces comparable. Counting across
the lab rather than per namespace makes an ifindex name one interface of the lab: tools that
report only the input ifindex of a dropped packet (NET_DROP_MONITOR, i.e. dropwatch) can then
be placed on a node.

Stacked interfaces (vlan, macvlan, vxlan) are made after every veth peer is up, parents first:
a vlan cannot be brought up on a lower device that is down.

With IPv6 on, duplicate address detection is off in every node (``accept_dad=0`` before any
interface exists): a lab's addresses are unique by validation, and DAD would otherwise keep
link-local addresses, which neighbour discovery uses, tentative for a second or more.

A fresh namespace holds only ``lo`` (1) and, on kernels with fallback tunnel devices, a few
more low indexes, hence the base of 100.

Which end of a veth pair is "created" and which is the "peer" follows one rule: if one end is
a bridge port, create that end (its bridge is set in the same message); the peer cannot be
created up, so it gets a :class:`SetLink` in the next phase.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netlab.model.names import netns_name, ownership_alias, sysctl_interface
from netlab.model.topology import IptablesTable, Topology
from netlab.plan.steps import (
    AddAddress,
    AddRoute,
    CreateBridge,
    CreateDummy,
    CreateMacvlan,
    CreateNamespace,
    CreateStacked,
    CreateVeth,
    CreateVlan,
    CreateVxlan,
    IPNetwork,
    LoadNftables,
    ModuleNeed,
    Plan,
    PortVlan,
    Readiness,
    RestoreFirewall,
    RunCommand,
    SetLink,
    SetLoopback,
    SetPortVlans,
    Step,
    WriteSysctl,
)
from netlab.scope import Layout

IFINDEX_BASE = 100
LOOPBACK_IFINDEX = 1


def _names_interface(key: str) -> bool:
    """A sysctl under conf/IF or neigh/IF for a real interface must wait for the interface."""
    found = sysctl_interface(key)
    return found is not None and found[1] not in ("all", "default", "lo")


def assign_ifindexes(topo: Topology) -> dict[tuple[str, str], int]:
    """(node, ifname) -> the ifindex the lab gives it: unique in the lab except ``lo`` (1)."""
    index: dict[tuple[str, str], int] = {}
    counter = itertools.count(IFINDEX_BASE)

    def take(node: str, ifname: str) -> None:
        index[(node, ifname)] = next(counter)

    for node_name, node in topo.nodes.items():
        index[(node_name, "lo")] = LOOPBACK_IFINDEX
        for br in node.bridges:
            take(node_name, br)
    for link in topo.links:
        for ep in link.endpoints:
            take(ep.node, ep.ifname)
    for node_name in topo.nodes:
        for ifname in topo.created(node_name):
            if (node_name, ifname) not in index:
                take(node_name, ifname)
    return index


def _bridge_of(topo: Topology) -> dict[tuple[str, str], str]:
    return {
        (node_name, port): br
        for node_name, node in topo.nodes.items()
        for br, bridge in node.bridges.items()
        for port in bridge.ports
    }


def layout(name: str, topo: Topology) -> Layout:
    """The interfaces ``topo`` gives lab ``name``, as a trace places drops on them
    (:mod:`netlab.tracers.placement.maps`)."""
    return Layout(
        name,
        interfaces={n: [*topo.created(n), "lo"] for n in topo.nodes},
        peers=[((a.node, a.ifname), (b.node, b.ifname)) for a, b in (link.endpoints for link in topo.links)],
        bridge_of=_bridge_of(topo),
        ifindex=assign_ifindexes(topo),
    )


def _firewall(node_name: str, family: int, tables: Mapping[IptablesTable, list[str]]) -> RestoreFirewall | None:
    if not tables:
        return None
    key = "iptables" if family == 4 else "ip6tables"
    lines: list[str] = []
    origins: list[tuple[str | int, ...] | None] = []
    for table, rules in tables.items():
        lines.append(f"*{table}")
        origins.append(("nodes", node_name, key, table))
        for i, rule in enumerate(rules):
            lines.append(rule.strip())
            origins.append(("nodes", node_name, key, table, i))
        lines.append("COMMIT")
        origins.append(None)
    return RestoreFirewall(
        node_name,
        family=4 if family == 4 else 6,
        text="\n".join(lines) + "\n",
        line_origins=tuple(origins),
        origin=("nodes", node_name, key),
    )


@dataclass
class _Context:
    """What every part of the planning needs: the topology, names and indexes."""

    topo: Topology
    lab: str
    netns: dict[str, str]
    ifindex: dict[tuple[str, str], int]
    bridge_of: dict[tuple[str, str], str]
    carrier: dict[str, list[tuple[str, int]]]
    carrier_only: dict[str, list[tuple[str, int]]]


def plan(topo: Topology, lab: str) -> Plan:
    """The full, ordered build of ``topo`` as lab ``lab``; pure, touches nothing."""
    ctx = _Context(
        topo=topo,
        lab=lab,
        netns={node: netns_name(lab, node) for node in topo.nodes},
        ifindex=assign_ifindexes(topo),
        bridge_of=_bridge_of(topo),
        carrier={n: [] for n in topo.nodes},
        carrier_only={n: [] for n in topo.nodes},
    )
    steps: list[Step] = []
    for node_name in topo.nodes:
        steps += _node_setup(ctx, node_name)
    for li in range(len(topo.links)):
        steps += _link(ctx, li)
    for node_name in topo.nodes:
        steps += _stacked(ctx, node_name)
    for node_name in topo.nodes:
        steps += _node_config(ctx, node_name)
    readiness = tuple(Readiness(n, tuple(ctx.carrier[n]), tuple(ctx.carrier_only[n])) for n in topo.nodes)
    return Plan(
        lab=lab,
        netns=ctx.netns,
        steps=tuple(steps),
        readiness=readiness,
        ifindex=ctx.ifindex,
        modules=modules_needed(topo),
    )


def modules_needed(topo: Topology) -> tuple[ModuleNeed, ...]:
    """Kernel modules the lab cannot be built without, on kernels where they are modules.

    Distribution kernels build bridge, veth and br_netfilter as modules; br_netfilter in
    particular is never auto-loaded, and without it the ``net.bridge.*`` sysctls do not exist.
    """
    needs: dict[str, str] = {}
    if topo.links:
        needs["veth"] = "veth pairs"
    for name, node in topo.nodes.items():
        if node.bridges:
            needs.setdefault("bridge", f"bridge {next(iter(node.bridges))} in node {name}")
        for br_name, bridge in node.bridges.items():
            if bridge.nf_call_iptables or bridge.nf_call_ip6tables or bridge.nf_call_arptables:
                needs.setdefault("br_netfilter", f"nf_call_* on bridge {br_name} in node {name}")
        for key in node.sysctls:
            if key.startswith("net.bridge."):
                needs.setdefault("br_netfilter", f"sysctl {key} in node {name}")
        for module, kind, names in (
            ("dummy", "dummy", node.dummies),
            ("8021q", "vlan", node.vlans),
            ("macvlan", "macvlan", node.macvlans),
            ("vxlan", "vxlan", node.vxlans),
        ):
            if names:
                needs.setdefault(module, f"{kind} {next(iter(names))} in node {name}")
    return tuple(ModuleNeed(module, why) for module, why in needs.items())


def _node_setup(ctx: _Context, node_name: str) -> list[Step]:
    """Namespace, sysctls, loopback, firewall and bridges of one node."""
    node = ctx.topo.nodes[node_name]
    base = ("nodes", node_name)
    steps: list[Step] = [CreateNamespace(node_name, netns=ctx.netns[node_name], origin=base)]
    for scope in ("all", "default"):
        if not ctx.topo.ipv6:
            steps.append(WriteSysctl(node_name, key=f"net.ipv6.conf.{scope}.disable_ipv6", value="1", origin=("ipv6",)))
        else:  # link-local addresses usable at once, like the NODAD global ones
            steps.append(WriteSysctl(node_name, key=f"net.ipv6.conf.{scope}.accept_dad", value="0", origin=("ipv6",)))
    for key, value in node.sysctls.items():
        steps.append(
            WriteSysctl(node_name, key=key, value=value, late=_names_interface(key), origin=(*base, "sysctls", key))
        )
    steps.append(SetLoopback(node_name, alias=ownership_alias(ctx.lab), origin=base))
    for family, tables in ((4, node.iptables), (6, node.ip6tables)):
        fw = _firewall(node_name, family, tables)
        if fw:
            steps.append(fw)
    if node.nftables and node.nftables.strip():
        late = _hooks_devices(node.nftables)
        steps.append(LoadNftables(node_name, text=node.nftables, late=late, origin=(*base, "nftables")))
    for br_name, bridge in node.bridges.items():
        settings = ctx.topo.interface(node_name, br_name)
        index = ctx.ifindex[(node_name, br_name)]
        steps.append(
            CreateBridge(
                node_name,
                ifname=br_name,
                ifindex=index,
                stp=bridge.stp,
                forward_delay=bridge.forward_delay,
                group_fwd_mask=bridge.group_fwd_mask,
                nf_call_iptables=bridge.nf_call_iptables,
                nf_call_ip6tables=bridge.nf_call_ip6tables,
                nf_call_arptables=bridge.nf_call_arptables,
                vlan_filtering=bridge.vlan_filtering,
                default_pvid=bridge.default_pvid,
                mac=bridge.mac or settings.mac,
                mtu=settings.mtu,
                origin=(*base, "bridges", br_name),
            )
        )
        if bridge.ports and not bridge.stp:
            wait = ctx.carrier if settings.addresses else ctx.carrier_only
            wait[node_name].append((br_name, index))
    return steps


def _link(ctx: _Context, li: int) -> list[Step]:
    """A veth pair: create one end (the bridge port, if either is) and bring up the peer."""
    link = ctx.topo.links[li]
    a, b = link.endpoints
    if (b.node, b.ifname) in ctx.bridge_of and (a.node, a.ifname) not in ctx.bridge_of:
        a, b = b, a
    ia, ib = ctx.topo.interface(a.node, a.ifname), ctx.topo.interface(b.node, b.ifname)
    master_a, master_b = ctx.bridge_of.get((a.node, a.ifname)), ctx.bridge_of.get((b.node, b.ifname))
    create = CreateVeth(
        a.node,
        ifname=a.ifname,
        ifindex=ctx.ifindex[(a.node, a.ifname)],
        peer_node=b.node,
        peer_netns=ctx.netns[b.node],
        peer_ifname=b.ifname,
        peer_ifindex=ctx.ifindex[(b.node, b.ifname)],
        mac=ia.mac,
        mtu=ia.mtu or link.mtu,
        master_ifindex=ctx.ifindex[(a.node, master_a)] if master_a else None,
        peer_mac=ib.mac,
        peer_mtu=ib.mtu or link.mtu,
        origin=("links", li),
    )
    peer_up = SetLink(
        b.node,
        ifname=b.ifname,
        ifindex=ctx.ifindex[(b.node, b.ifname)],
        master_ifindex=ctx.ifindex[(b.node, master_b)] if master_b else None,
        origin=("links", li),
    )
    for ep in (a, b):
        ctx.carrier[ep.node].append((ep.ifname, ctx.ifindex[(ep.node, ep.ifname)]))
    return [create, peer_up]


def _stack_order(topo: Topology, node_name: str) -> list[str]:
    """The node's dummies, vxlans, vlans and macvlans, each after the interface it sits on
    (validation has refused loops)."""
    node = topo.nodes[node_name]
    under = {name: v.parent for name, v in node.vlans.items()}
    under |= {name: m.parent for name, m in node.macvlans.items()}
    under |= {name: x.dev for name, x in node.vxlans.items() if x.dev is not None}
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in under:
            visit(under[name])
        ordered.append(name)

    stacked = [*node.dummies, *node.vxlans, *node.vlans, *node.macvlans]
    for name in stacked:
        visit(name)
    return [name for name in ordered if name in stacked]


def _stacked(ctx: _Context, node_name: str) -> list[Step]:
    """Dummies, vxlans, vlans and macvlans of one node, parents first."""
    node = ctx.topo.nodes[node_name]
    made = ctx.topo.created(node_name)
    steps: list[Step] = []
    for ifname in _stack_order(ctx.topo, node_name):
        settings = ctx.topo.interface(node_name, ifname)
        master = ctx.bridge_of.get((node_name, ifname))
        common: dict[str, Any] = {
            "ifname": ifname,
            "ifindex": ctx.ifindex[(node_name, ifname)],
            "master_ifindex": ctx.ifindex[(node_name, master)] if master else None,
            "mac": settings.mac,
            "mtu": settings.mtu,
            "origin": made[ifname],
        }
        step: CreateStacked
        if ifname in node.vlans:
            vlan = node.vlans[ifname]
            parent = ctx.ifindex[(node_name, vlan.parent)]
            step = CreateVlan(node_name, parent_ifindex=parent, vlan_id=vlan.id, protocol=vlan.protocol, **common)
        elif ifname in node.macvlans:
            mv = node.macvlans[ifname]
            step = CreateMacvlan(node_name, parent_ifindex=ctx.ifindex[(node_name, mv.parent)], mode=mv.mode, **common)
        elif ifname in node.vxlans:
            vx = node.vxlans[ifname]
            step = CreateVxlan(
                node_name,
                parent_ifindex=ctx.ifindex[(node_name, vx.dev)] if vx.dev else None,
                vni=vx.vni,
                remote=vx.remote,
                group=vx.group,
                local=vx.local,
                port=vx.port,
                learning=vx.learning,
                ttl=vx.ttl,
                **common,
            )
        else:
            step = CreateDummy(node_name, **common)
        steps.append(step)
        # dummies and vxlans have no lower device to follow: their operstate stays UNKNOWN
        wait = ctx.carrier if isinstance(step, CreateVlan | CreateMacvlan) else ctx.carrier_only
        wait[node_name].append((ifname, step.ifindex))
    return steps


def _port_vlans(ctx: _Context, node_name: str) -> list[Step]:
    """``bridge vlan add`` for each port (and bridge) of a VLAN-filtering bridge that lists VLANs."""
    node = ctx.topo.nodes[node_name]
    steps: list[Step] = []
    for br_name, bridge in node.bridges.items():
        for port, vlans in bridge.port_vlans.items():
            entries = tuple(
                PortVlan(vid, pvid=vid == vlans.pvid, untagged=vid in vlans.untagged)
                for vid in dict.fromkeys(vlans.vids)
            )
            steps.append(
                SetPortVlans(
                    node_name,
                    ifname=port,
                    ifindex=ctx.ifindex[(node_name, port)],
                    vlans=entries,
                    own=port == br_name,
                    origin=("nodes", node_name, "bridges", br_name, "port_vlans", port),
                )
            )
    return steps


def _hooks_devices(ruleset: str) -> bool:
    """Does an nft ruleset hook devices (a netdev table's ingress/egress chains)? Debian's 5.10
    and 6.1 refuse such a chain for a device that does not exist yet (ENOENT; 6.18 takes it),
    so that ruleset is loaded once the node's interfaces are there (before routes); any other
    ruleset is in place before the first interface appears."""
    return re.search(r"\btable\s+netdev\b", ruleset) is not None


def _node_config(ctx: _Context, node_name: str) -> list[Step]:
    """Port VLANs, addresses, routes and commands of one node, once its interfaces exist."""
    node = ctx.topo.nodes[node_name]
    base = ("nodes", node_name)
    steps: list[Step] = _port_vlans(ctx, node_name)
    for ifname, iface in node.interfaces.items():
        for ai, address in enumerate(iface.addresses):
            steps.append(
                AddAddress(
                    node_name,
                    ifname=ifname,
                    ifindex=ctx.ifindex[(node_name, ifname)],
                    address=address,
                    origin=(*base, "interfaces", ifname, "addresses", ai),
                )
            )
    for ri, route in enumerate(node.routes):
        if route.to == "default":
            version = route.via.version if route.via else 4
            to: IPNetwork = ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")
        else:
            to = route.to
        steps.append(
            AddRoute(
                node_name,
                to=to,
                type=route.type,
                via=route.via,
                dev=route.dev,
                dev_ifindex=ctx.ifindex[(node_name, route.dev)] if route.dev else None,
                metric=route.metric,
                origin=(*base, "routes", ri),
            )
        )
    for ci, command in enumerate(node.exec):
        steps.append(RunCommand(node_name, argv=tuple(shlex.split(command)), origin=(*base, "exec", ci)))
    return steps
