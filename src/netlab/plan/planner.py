"""Topology -> Plan: decide every kernel object, its namespace and its ifindex.

The planner assigns interface indexes itself (``IFINDEX_BASE`` upwards in each namespace, in
the order bridges, then link ends) and asks the kernel for exactly those. Knowing every index
in advance means no step ever has to look an interface up, so a node's steps of one phase can
go to the kernel in one netlink batch; it also makes a lab's ifindexes the same on every run,
which keeps traces comparable.

With IPv6 on, duplicate address detection is off in every node (``accept_dad=0`` before any
interface exists): a lab's addresses are unique by validation, and DAD would otherwise keep
link-local addresses, which neighbour discovery uses, tentative for a second or more. A fresh namespace holds only ``lo`` (1) and, on kernels with
fallback tunnel devices, a few more low indexes, hence the base of 100.

Which end of a veth pair is "created" and which is the "peer" follows one rule: if one end is
a bridge port, create that end (its bridge is set in the same message); the peer cannot be
created up, so it gets a :class:`SetLink` in the next phase.
"""

from __future__ import annotations

import ipaddress
import shlex

from netlab.model.names import netns_name
from netlab.model.topology import Endpoint, Topology
from netlab.plan.steps import (
    AddAddress,
    AddRoute,
    CreateBridge,
    CreateNamespace,
    CreateVeth,
    Plan,
    Readiness,
    RestoreFirewall,
    RunCommand,
    SetLink,
    SetLoopback,
    Step,
    WriteSysctl,
)

IFINDEX_BASE = 100
LOOPBACK_IFINDEX = 1
_IFACE_SYSCTL_DIRS = ("net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.neigh.", "net.ipv6.neigh.")


def _names_interface(key: str) -> bool:
    """A sysctl under conf/IF or neigh/IF for a real interface must wait for the interface."""
    for prefix in _IFACE_SYSCTL_DIRS:
        if key.startswith(prefix):
            ifname = key[len(prefix):].partition(".")[0]
            return ifname not in ("all", "default", "lo")
    return False


def marker(lab: str) -> str:
    """The ownership mark a lab leaves on each of its namespaces (lo's ifalias)."""
    return f"netlab:{lab}"


def _assign_ifindexes(topo: Topology) -> dict[tuple[str, str], int]:
    index: dict[tuple[str, str], int] = {}
    counters = dict.fromkeys(topo.nodes, IFINDEX_BASE)

    def take(node: str, ifname: str) -> None:
        index[(node, ifname)] = counters[node]
        counters[node] += 1

    for node_name, node in topo.nodes.items():
        index[(node_name, "lo")] = LOOPBACK_IFINDEX
        for br in node.bridges:
            take(node_name, br)
    for link in topo.links:
        for ep in link.endpoints:
            take(ep.node, ep.ifname)
    return index


def _bridge_of(topo: Topology) -> dict[tuple[str, str], str]:
    return {
        (node_name, port): br
        for node_name, node in topo.nodes.items()
        for br, bridge in node.bridges.items()
        for port in bridge.ports
    }


def _firewall(node_name: str, family: int, tables: dict[str, list[str]]) -> RestoreFirewall | None:
    if not tables:
        return None
    key = "iptables" if family == 4 else "ip6tables"
    lines: list[str] = []
    origins: list[tuple[str | int, ...] | None] = []
    for table, rules in tables.items():
        lines.append(f"*{table}")
        origins.append((("nodes", node_name, key, table)))
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


def plan(topo: Topology, lab: str) -> Plan:
    """The full, ordered build of ``topo`` as lab ``lab``; pure, touches nothing."""
    netns = {node: netns_name(lab, node) for node in topo.nodes}
    ifindex = _assign_ifindexes(topo)
    bridge_of = _bridge_of(topo)
    steps: list[Step] = []
    carrier: dict[str, list[tuple[str, int]]] = {n: [] for n in topo.nodes}
    carrier_only: dict[str, list[tuple[str, int]]] = {n: [] for n in topo.nodes}

    for node_name, node in topo.nodes.items():
        base = ("nodes", node_name)
        steps.append(CreateNamespace(node_name, netns=netns[node_name], origin=base))
        for scope in ("all", "default"):
            if not topo.ipv6:
                steps.append(WriteSysctl(node_name, key=f"net.ipv6.conf.{scope}.disable_ipv6", value="1",
                                         origin=("ipv6",)))
            else:  # link-local addresses usable at once, like the NODAD global ones
                steps.append(WriteSysctl(node_name, key=f"net.ipv6.conf.{scope}.accept_dad", value="0",
                                         origin=("ipv6",)))
        for key, value in node.sysctls.items():
            steps.append(WriteSysctl(node_name, key=key, value=value, late=_names_interface(key),
                                     origin=(*base, "sysctls", key)))
        steps.append(SetLoopback(node_name, marker=marker(lab), origin=base))
        for family, tables in ((4, node.iptables), (6, node.ip6tables)):
            fw = _firewall(node_name, family, dict(tables))
            if fw:
                steps.append(fw)
        for br_name, bridge in node.bridges.items():
            settings = topo.interface(node_name, br_name)
            steps.append(CreateBridge(
                node_name, ifname=br_name, ifindex=ifindex[(node_name, br_name)], stp=bridge.stp,
                forward_delay=bridge.forward_delay, group_fwd_mask=bridge.group_fwd_mask,
                nf_call_iptables=bridge.nf_call_iptables, nf_call_ip6tables=bridge.nf_call_ip6tables,
                mac=bridge.mac or settings.mac, mtu=settings.mtu,
                origin=(*base, "bridges", br_name),
            ))
            if bridge.ports and not bridge.stp:
                wait = carrier if settings.addresses else carrier_only
                wait[node_name].append((br_name, ifindex[(node_name, br_name)]))

    for li, link in enumerate(topo.links):
        a, b = link.endpoints
        if (b.node, b.ifname) in bridge_of and (a.node, a.ifname) not in bridge_of:
            a, b = b, a
        steps.append(_veth(topo, link.mtu, a, b, ifindex, bridge_of, netns, ("links", li)))
        master = bridge_of.get((b.node, b.ifname))
        steps.append(SetLink(b.node, ifname=b.ifname, ifindex=ifindex[(b.node, b.ifname)],
                             master_ifindex=ifindex[(b.node, master)] if master else None,
                             origin=("links", li)))
        for ep in (a, b):
            carrier[ep.node].append((ep.ifname, ifindex[(ep.node, ep.ifname)]))

    for node_name, node in topo.nodes.items():
        base = ("nodes", node_name)
        for ifname, iface in node.interfaces.items():
            for ai, address in enumerate(iface.addresses):
                steps.append(AddAddress(node_name, ifname=ifname, ifindex=ifindex[(node_name, ifname)],
                                        address=address, origin=(*base, "interfaces", ifname, "addresses", ai)))
        for ri, route in enumerate(node.routes):
            if route.to == "default":
                version = route.via.version if route.via else 4
                to = ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")
            else:
                to = route.to  # type: ignore[assignment]
            steps.append(AddRoute(
                node_name, to=to, type=route.type, via=route.via, dev=route.dev,
                dev_ifindex=ifindex[(node_name, route.dev)] if route.dev else None,
                metric=route.metric, origin=(*base, "routes", ri),
            ))
        for ci, command in enumerate(node.exec):
            steps.append(RunCommand(node_name, argv=tuple(shlex.split(command)), origin=(*base, "exec", ci)))

    readiness = tuple(Readiness(n, tuple(carrier[n]), tuple(carrier_only[n])) for n in topo.nodes)
    return Plan(lab=lab, netns=netns, steps=tuple(steps), readiness=readiness, ifindex=ifindex)


def _veth(
    topo: Topology,
    link_mtu: int | None,
    a: Endpoint,
    b: Endpoint,
    ifindex: dict[tuple[str, str], int],
    bridge_of: dict[tuple[str, str], str],
    netns: dict[str, str],
    origin: tuple[str | int, ...],
) -> CreateVeth:
    ia, ib = topo.interface(a.node, a.ifname), topo.interface(b.node, b.ifname)
    master = bridge_of.get((a.node, a.ifname))
    return CreateVeth(
        a.node, ifname=a.ifname, ifindex=ifindex[(a.node, a.ifname)],
        peer_node=b.node, peer_netns=netns[b.node], peer_ifname=b.ifname,
        peer_ifindex=ifindex[(b.node, b.ifname)],
        mac=ia.mac, mtu=ia.mtu or link_mtu, master_ifindex=ifindex[(a.node, master)] if master else None,
        peer_mac=ib.mac, peer_mtu=ib.mtu or link_mtu, origin=origin,
    )
