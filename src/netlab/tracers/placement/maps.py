"""The placement map of a scope (:class:`~netlab.tracers.placement.attribution.LabMap`), and of
the labs whose device names could be taken for its own.

A lab's map starts from its plan (:meth:`netlab.scope.Scope.layout`: names, veth pairs,
bridges, ifindexes) and adds whatever each node has now besides: a scenario's own ``ip link
add``, an ``exec:`` step's tunnel. A scope without a plan (the whole host) is mapped from what
is live alone, each veth's peer from the kernel's own answer (IFLA_LINK, and the peer
namespace's id, which RTM_GETNSID only reads, never assigns). One link dump per namespace.
"""

from __future__ import annotations

import contextlib
import os

from netlab.errors import NetlabError
from netlab.runtime import netlink, netns, queries
from netlab.scope import Scope
from netlab.tracers.placement.attribution import LabMap


def dumps(scope: Scope) -> dict[str, list[queries.Interface]]:
    """Every node's interfaces now (a namespace that has gone meanwhile is left out)."""
    out = {}
    for name, node in scope.nodes.items():
        with (
            contextlib.suppress(OSError, NetlabError),
            contextlib.closing(netlink.open_route_socket(node.netns)) as sock,
        ):
            out[name] = queries.dump_interfaces(sock)
    return out


def of(scope: Scope) -> LabMap:
    """The scope's devices and namespaces, for placement."""
    live = dumps(scope)
    inodes = {i: name for name, node in scope.nodes.items() if (i := netns.inode(node.netns)) is not None}
    plan = scope.layout()
    m = LabMap.of(plan, inodes) if plan is not None else LabMap(scope.name, netns_inodes=inodes)
    for node, found in live.items():
        m.add_live(node, [i.ifname for i in found])
    if plan is None:
        _live_peers(scope, live, m)
    return m


def others(scope: Scope) -> list[LabMap]:
    """Maps of every other lab that is up."""
    return [LabMap.of(plan) for plan in scope.neighbours()]


def _live_peers(scope: Scope, live: dict[str, list[queries.Interface]], m: LabMap) -> None:
    names = {node: {i.index: i.ifname for i in found} for node, found in live.items()}
    for node, found in live.items():
        ids = _peer_namespaces(scope, node)
        for i in found:
            if i.link is None:
                continue
            if i.link_netnsid is not None:
                other = ids.get(i.link_netnsid)
                peer = names.get(other, {}).get(i.link) if other else None
                if other and peer:
                    m.peer[(node, i.ifname)] = (other, peer)
            elif (mate := next((j for j in found if j.index == i.link), None)) and mate.link == i.index:
                m.peer[(node, i.ifname)] = (node, mate.ifname)  # a veth pair inside one namespace


def _peer_namespaces(scope: Scope, node: str) -> dict[int, str]:
    """The ids ``node``'s namespace has given the others (how its veths name their peers')."""
    out: dict[int, str] = {}
    with (
        contextlib.suppress(OSError, NetlabError),
        contextlib.closing(netlink.open_route_socket(scope.nodes[node].netns)) as sock,
    ):
        for other, handle in scope.nodes.items():
            if other == node:
                continue
            try:
                fd = os.open(netns.path(handle.netns), os.O_RDONLY)
            except OSError:
                continue
            try:
                nsid = queries.nsid_of(sock, fd)
            finally:
                os.close(fd)
            if nsid is not None:
                out[nsid] = other
    return out
