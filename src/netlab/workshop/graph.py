"""Topology pictures: DOT (rendered to SVG/PNG by graphviz) and Mermaid.

Each node is a cluster labelled with its namespace name; inside it, one box per interface
(name and addresses) and one shape per bridge, with dashed lines from the bridge to its ports.
A veth pair is a solid line between its two ends. The layout runs left to right, which keeps
chains (linear50) readable as a long strip instead of a tall tower.
"""

from __future__ import annotations

import shutil
import subprocess

from netlab import programs
from netlab.errors import KernelFeatureError, NetlabError
from netlab.model.names import netns_name
from netlab.model.topology import Topology

FORMATS = ("dot", "svg", "png", "mermaid")


def _id(node: str, ifname: str) -> str:
    return f'"{node}:{ifname}"'


def _kind(topo: Topology, node: str, ifname: str) -> str | None:
    """'vlan 10', 'macvlan bridge', 'vxlan 42', 'dummy' for a stacked interface, a filtering
    bridge's port its VLANs; None otherwise."""
    spec = topo.nodes[node]
    if ifname in spec.vlans:
        return f"vlan {spec.vlans[ifname].id}"
    if ifname in spec.macvlans:
        return f"macvlan {spec.macvlans[ifname].mode}"
    if ifname in spec.vxlans:
        return f"vxlan {spec.vxlans[ifname].vni}"
    if ifname in spec.dummies:
        return "dummy"
    for bridge in spec.bridges.values():
        vlans = bridge.port_vlans.get(ifname) if bridge.vlan_filtering else None
        if vlans:  # VLAN 10 as 10, its pvid as 10p, untagged as 10u: 'bridge vlan show' spelled short
            flags = [f"{v}{'p' if v == vlans.pvid else ''}{'u' if v in vlans.untagged else ''}" for v in vlans.vids]
            return f"VLANs {' '.join(flags)}"
    return None


def _stacking(topo: Topology, node: str) -> list[tuple[str, str]]:
    """(interface, the interface it sits on) for the node's vlans, macvlans and vxlans."""
    spec = topo.nodes[node]
    pairs = [(name, v.parent) for name, v in spec.vlans.items()]
    pairs += [(name, m.parent) for name, m in spec.macvlans.items()]
    return pairs + [(name, x.dev) for name, x in spec.vxlans.items() if x.dev is not None]


def _label(topo: Topology, node: str, ifname: str) -> str:
    addrs = [str(a) for a in topo.interface(node, ifname).addresses]
    kind = _kind(topo, node, ifname)
    return "\\n".join([ifname, *([f"({kind})"] if kind else []), *addrs])


def _interfaces(topo: Topology, node: str) -> list[str]:
    names = list(topo.created(node))
    if topo.nodes[node].interfaces.get("lo") and topo.nodes[node].interfaces["lo"].addresses:
        names.append("lo")
    return names


def to_dot(topo: Topology, lab: str | None = None) -> str:
    """The topology as a DOT graph."""
    lab = lab or topo.name
    out = [
        f'graph "{topo.name}" {{',
        '  graph [rankdir=LR, fontname="Helvetica", fontsize=11, nodesep=0.25, ranksep=0.5,'
        f' label="{topo.name}: {topo.description}", labelloc=t];',
        '  node [fontname="Helvetica", fontsize=10, shape=box, style="rounded,filled", fillcolor="#ffffff"];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for i, (node_name, node) in enumerate(topo.nodes.items()):
        out.append(f"  subgraph cluster_{i} {{")
        out.append(
            f'    label="{node_name}\\n({netns_name(lab, node_name)})"; style="rounded,filled"; fillcolor="#eef3fb";'
        )
        for ifname in _interfaces(topo, node_name):
            if ifname in node.bridges:
                stp = " (STP)" if node.bridges[ifname].stp else ""
                out.append(
                    f'    {_id(node_name, ifname)} [label="{_label(topo, node_name, ifname)}{stp}",'
                    ' shape=hexagon, fillcolor="#fde9c8"];'
                )
            else:
                out.append(f'    {_id(node_name, ifname)} [label="{_label(topo, node_name, ifname)}"];')
        for br, bridge in node.bridges.items():
            for port in bridge.ports:
                out.append(f'    {_id(node_name, br)} -- {_id(node_name, port)} [style=dashed, color="#a0a0a0"];')
        for upper, lower in _stacking(topo, node_name):
            out.append(f'    {_id(node_name, upper)} -- {_id(node_name, lower)} [style=dotted, color="#606060"];')
        out.append("  }")
    for link in topo.links:
        a, b = link.endpoints
        mtu = f' [label="mtu {link.mtu}"]' if link.mtu else ""
        out.append(
            f"  {_id(a.node, a.ifname)} -- {_id(b.node, b.ifname)}{mtu} [penwidth=2];"
            if not mtu
            else f"  {_id(a.node, a.ifname)} -- {_id(b.node, b.ifname)}{mtu};"
        )
    out.append("}")
    return "\n".join(out) + "\n"


def _mid(node: str, ifname: str) -> str:
    return f"{node}__{ifname}".replace("-", "_").replace(".", "_")


def to_mermaid(topo: Topology, lab: str | None = None) -> str:
    """The topology as a Mermaid flowchart (renders in GitHub and most Markdown viewers)."""
    lab = lab or topo.name
    out = ["flowchart LR"]
    for node_name, node in topo.nodes.items():
        out.append(f'  subgraph {node_name.replace("-", "_")}["{node_name} ({netns_name(lab, node_name)})"]')
        for ifname in _interfaces(topo, node_name):
            label = _label(topo, node_name, ifname).replace("\\n", "<br/>")
            shape = ("{{", "}}") if ifname in node.bridges else ("[", "]")
            out.append(f'    {_mid(node_name, ifname)}{shape[0]}"{label}"{shape[1]}')
        for br, bridge in node.bridges.items():
            for port in bridge.ports:
                out.append(f"    {_mid(node_name, br)} -.- {_mid(node_name, port)}")
        for upper, lower in _stacking(topo, node_name):
            out.append(f"    {_mid(node_name, upper)} -.- {_mid(node_name, lower)}")
        out.append("  end")
    for link in topo.links:
        a, b = link.endpoints
        out.append(f"  {_mid(a.node, a.ifname)} === {_mid(b.node, b.ifname)}")
    return "\n".join(out) + "\n"


def render(topo: Topology, fmt: str) -> bytes:
    """The picture in ``fmt`` (svg and png need graphviz's ``dot``)."""
    if fmt not in FORMATS:
        raise NetlabError(f"unknown graph format '{fmt}' (known: {', '.join(FORMATS)})")
    if fmt == "mermaid":
        return to_mermaid(topo).encode()
    dot = to_dot(topo)
    if fmt == "dot":
        return dot.encode()
    binary = shutil.which("dot")
    if binary is None:
        raise KernelFeatureError(
            "graphviz (dot) is not installed", hint=f"{programs.install_hint('dot')}, or use --format dot"
        )
    proc = subprocess.run([binary, f"-T{fmt}"], input=dot.encode(), capture_output=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise NetlabError(f"graphviz failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout
