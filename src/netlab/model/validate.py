"""Rules that tie one part of a topology to another.

The pydantic models check each value on its own; these checks need the whole picture: that a
link's endpoint names a node that exists, that a bridge port is a veth end of the same node,
that a gateway sits in a subnet the node is attached to. Each rule yields ``(path, message)``
pairs; the loader turns paths into file positions. A rule never stops at its first finding, so
a user fixes a file in one round rather than one error per run.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Callable, Iterable, Iterator

from netlab.model.names import sysctl_interface
from netlab.model.topology import Node, Route, Topology
from netlab.model.yamlsrc import PathKey
from netlab.runtime.procsys import key_path

Finding = tuple[PathKey, str]
Rule = Callable[[Topology], Iterator[Finding]]


#: what br_netfilter adds under /proc/sys/net/bridge (absent until it is loaded)
BR_NETFILTER_SYSCTLS = frozenset(
    {
        "bridge-nf-call-arptables",
        "bridge-nf-call-iptables",
        "bridge-nf-call-ip6tables",
        "bridge-nf-filter-vlan-tagged",
        "bridge-nf-filter-pppoe-tagged",
        "bridge-nf-pass-vlan-input-dev",
    }
)


def _known(names: Iterable[object]) -> str:
    items = sorted(str(n) for n in names)
    return ", ".join(items) if items else "none"


def has_nodes(topo: Topology) -> Iterator[Finding]:
    """A lab of no nodes would build nothing and then report itself up."""
    if not topo.nodes:
        yield ("nodes",), "a lab needs at least one node"


def endpoints_exist(topo: Topology) -> Iterator[Finding]:
    """A link endpoint must name a node of this topology."""
    for li, link in enumerate(topo.links):
        a, b = link.endpoints
        for ei, ep in enumerate(link.endpoints):
            if ep.node not in topo.nodes:
                yield (
                    ("links", li, "endpoints", ei),
                    f"link endpoint '{ep}' names unknown node '{ep.node}' (nodes: {_known(topo.nodes)})",
                )
        if a == b:
            yield ("links", li, "endpoints"), f"link connects '{a}' to itself"


def _maker(path: PathKey) -> str:
    """'link 2', 'bridge br0', 'vlan v10', ... for the place that makes an interface."""
    if path[0] == "links":
        return f"link {int(path[1]) + 1}"
    kind = {"bridges": "bridge", "dummies": "dummy", "vxlans": "vxlan", "vlans": "vlan", "macvlans": "macvlan"}
    return f"{kind[str(path[2])]} {path[3]}" if path[2] != "dummies" else "dummies"


def unique_interfaces(topo: Topology) -> Iterator[Finding]:
    """An interface name is made once per node: by one link end, bridge, dummy, vlan, ..."""
    for node_name in topo.nodes:
        seen: dict[str, PathKey] = {}
        for ifname, path in topo.creations(node_name):
            if ifname == "lo":
                yield path, f"'{node_name}:lo': 'lo' already exists in every node"
            elif ifname in seen:
                yield (
                    path,
                    f"interface '{ifname}' of node '{node_name}' is defined twice (also by {_maker(seen[ifname])})",
                )
            else:
                seen[ifname] = path


def _known_interfaces(topo: Topology, node: str) -> set[str]:
    return set(topo.created(node)) | {"lo"}


def interfaces_exist(topo: Topology) -> Iterator[Finding]:
    """Settings under ``interfaces:`` must refer to an interface the lab creates (or lo)."""
    for node_name, node in topo.nodes.items():
        known = _known_interfaces(topo, node_name)
        for ifname in node.interfaces:
            if ifname not in known:
                yield (
                    ("nodes", node_name, "interfaces", ifname),
                    f"unknown interface '{ifname}' on node '{node_name}'; a link endpoint, bridge, dummy,"
                    f" vlan, macvlan or vxlan must create it (known: {_known(known)})",
                )


def bridge_ports(topo: Topology) -> Iterator[Finding]:
    """Ports are interfaces of the same node that are not bridges, each in at most one bridge,
    unaddressed."""
    for node_name, node in topo.nodes.items():
        made = topo.created(node_name)
        portable = {name for name in made if name not in node.bridges}
        owner: dict[str, str] = {}
        for br_name, bridge in node.bridges.items():
            for pi, port in enumerate(bridge.ports):
                path: PathKey = ("nodes", node_name, "bridges", br_name, "ports", pi)
                if port not in portable:
                    what = "is a bridge" if port in node.bridges else "has no interface of that name"
                    yield (
                        path,
                        (
                            f"unknown bridge port '{port}' of bridge '{br_name}': node '{node_name}' {what}"
                            f" (interfaces that can be ports: {_known(portable)})"
                        ),
                    )
                elif port in owner:
                    yield path, f"interface '{port}' is already a port of bridge '{owner[port]}'"
                else:
                    owner[port] = br_name
                    if node.interfaces.get(port) and node.interfaces[port].addresses:
                        yield (
                            ("nodes", node_name, "interfaces", port, "addresses"),
                            f"'{port}' is a port of bridge '{br_name}'; put its address on the bridge",
                        )
            if bridge.forward_delay is not None and bridge.stp and not 2 <= bridge.forward_delay <= 30:
                yield (
                    ("nodes", node_name, "bridges", br_name, "forward_delay"),
                    f"forward_delay {bridge.forward_delay:g} with stp: true; the kernel allows 2-30 s while STP runs",
                )
            if bridge.group_fwd_mask is not None and bridge.group_fwd_mask & 0x7:
                yield (
                    ("nodes", node_name, "bridges", br_name, "group_fwd_mask"),
                    "group_fwd_mask bits 0-2 (STP, pause frames, LACP) cannot be forwarded by a Linux bridge",
                )
        for mv_name, mv in node.macvlans.items():
            if mv.parent in owner:
                yield (
                    ("nodes", node_name, "macvlans", mv_name, "parent"),
                    f"macvlan '{mv_name}': its parent '{mv.parent}' is a port of bridge '{owner[mv.parent]}'"
                    " (the kernel refuses both on one interface: EBUSY)",
                )


def bridge_vlans(topo: Topology) -> Iterator[Finding]:
    """port_vlans name the bridge's ports (or the bridge itself), need vlan_filtering, and keep
    pvid and untagged inside vids."""
    for node_name, node in topo.nodes.items():
        for br_name, bridge in node.bridges.items():
            base: PathKey = ("nodes", node_name, "bridges", br_name)
            if not bridge.vlan_filtering:
                for key in ("port_vlans", "default_pvid"):
                    if getattr(bridge, key) not in (None, {}):  # default_pvid 0 is a setting too
                        yield (*base, key), f"bridge '{br_name}': {key} needs vlan_filtering: true"
                continue
            for port, vlans in bridge.port_vlans.items():
                path: PathKey = (*base, "port_vlans", port)
                if port != br_name and port not in bridge.ports:
                    yield (
                        path,
                        f"'{port}' is not a port of bridge '{br_name}' (ports: {_known(bridge.ports)};"
                        f" '{br_name}' itself sets the bridge's own VLANs)",
                    )
                if vlans.pvid is not None and vlans.pvid not in vlans.vids:
                    yield (*path, "pvid"), f"pvid {vlans.pvid} is not among vids {vlans.vids}"
                for ui, vid in enumerate(vlans.untagged):
                    if vid not in vlans.vids:
                        yield (*path, "untagged", ui), f"untagged VLAN {vid} is not among vids {vlans.vids}"


def _parent_of(node: Node) -> dict[str, tuple[str, PathKey]]:
    """Stacked interface -> (the interface under it, where the file says so)."""
    under: dict[str, tuple[str, PathKey]] = {}
    for name, vlan in node.vlans.items():
        under[name] = (vlan.parent, ("vlans", name, "parent"))
    for name, mv in node.macvlans.items():
        under[name] = (mv.parent, ("macvlans", name, "parent"))
    for name, vx in node.vxlans.items():
        if vx.dev is not None:
            under[name] = (vx.dev, ("vxlans", name, "dev"))
    return under


def stacked_interfaces(topo: Topology) -> Iterator[Finding]:
    """A vlan, macvlan or vxlan sits on an interface of the same node, never on itself through
    a loop; a parent carries one vlan per id."""
    for node_name, node in topo.nodes.items():
        known = set(topo.created(node_name))
        under = _parent_of(node)
        for name, (parent, sub) in under.items():
            if parent not in known:
                yield (
                    ("nodes", node_name, *sub),
                    f"'{name}' sits on '{parent}', which node '{node_name}' does not have"
                    f" (interfaces: {_known(known)})",
                )
                continue
            seen, at = {name}, parent
            while at in under:
                if at in seen:
                    yield ("nodes", node_name, *sub), f"'{name}' sits on itself through {' -> '.join(sorted(seen))}"
                    break
                seen.add(at)
                at = under[at][0]
        ids: dict[tuple[str, int, str], str] = {}
        for name, vlan in node.vlans.items():
            key = (vlan.parent, vlan.id, vlan.protocol)
            if key in ids:
                yield (
                    ("nodes", node_name, "vlans", name, "id"),
                    f"'{vlan.parent}' already has VLAN {vlan.id} ({ids[key]})",
                )
            ids.setdefault(key, name)


def vxlans(topo: Topology) -> Iterator[Finding]:
    """A vxlan has one peer (remote) or one multicast group, underlay addresses of one family,
    and a local address the node has."""
    for node_name, node in topo.nodes.items():
        mine = {a.ip for iface in node.interfaces.values() for a in iface.addresses}
        for name, vx in node.vxlans.items():
            path: PathKey = ("nodes", node_name, "vxlans", name)
            if (vx.remote is None) == (vx.group is None):
                yield path, f"vxlan '{name}' needs remote (one peer) or group (multicast), one of the two"
            if vx.group is not None and not vx.group.is_multicast:
                yield (*path, "group"), f"vxlan group {vx.group} is not a multicast address"
            if vx.group is not None and vx.dev is None:
                yield (*path, "group"), f"vxlan '{name}' with a group needs dev, the interface to join it on"
            if vx.remote is not None and vx.remote.is_multicast:
                yield (*path, "remote"), f"vxlan remote {vx.remote} is multicast; use group for that"
            versions = {a.version for a in (vx.remote, vx.group, vx.local) if a is not None}
            if len(versions) > 1:
                yield path, f"vxlan '{name}' mixes IPv4 and IPv6 underlay addresses"
            if vx.local is not None and vx.local not in mine:
                yield (*path, "local"), f"vxlan local {vx.local} is not an address of node '{node_name}'"


def addresses(topo: Topology) -> Iterator[Finding]:
    """No address twice in a lab; no IPv6 when the lab disables it."""
    seen: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
    for node_name, node in topo.nodes.items():
        for ifname, iface in node.interfaces.items():
            for ai, addr in enumerate(iface.addresses):
                path: PathKey = ("nodes", node_name, "interfaces", ifname, "addresses", ai)
                if addr.version == 6 and not topo.ipv6:
                    yield path, f"IPv6 address {addr} but the lab sets ipv6: false"
                if addr.ip in seen:
                    yield path, f"duplicate address {addr.ip} (also on {seen[addr.ip]})"
                else:
                    seen[addr.ip] = f"{node_name}:{ifname}"


def unique_macs(topo: Topology) -> Iterator[Finding]:
    """Two interfaces with one MAC make bridges flap; refuse it."""
    seen: dict[str, str] = {}
    for node_name, node in topo.nodes.items():
        sources = [(ifname, iface.mac, ("interfaces", ifname, "mac")) for ifname, iface in node.interfaces.items()]
        sources += [(br, b.mac, ("bridges", br, "mac")) for br, b in node.bridges.items()]
        for ifname, mac, sub in sources:
            if mac is None:
                continue
            if mac in seen:
                yield ("nodes", node_name, *sub), f"duplicate MAC address {mac} (also on {seen[mac]})"
            else:
                seen[mac] = f"{node_name}:{ifname}"


def _route_family(route: Route) -> int | None:
    if route.to != "default":
        return route.to.version
    return route.via.version if route.via else None


def routes(topo: Topology) -> Iterator[Finding]:
    """A gateway must sit in a subnet of the node; dev must exist; no route twice."""
    for node_name, node in topo.nodes.items():
        known = _known_interfaces(topo, node_name)
        connected = [(ifname, addr.network) for ifname, iface in node.interfaces.items() for addr in iface.addresses]
        seen: set[tuple[str, int | None, int | None]] = set()
        for ri, route in enumerate(node.routes):
            path: PathKey = ("nodes", node_name, "routes", ri)
            family = _route_family(route)
            key = (str(route.to), family, route.metric)
            if key in seen:
                yield path, f"route to {route.to} is defined twice on node '{node_name}'"
            seen.add(key)
            if route.type != "unicast":
                if route.via or route.dev:
                    yield path, f"a {route.type} route takes neither via nor dev"
                continue
            if route.via is None and route.dev is None:
                yield path, f"route to {route.to} needs via (a gateway) or dev (an interface)"
                continue
            if route.to != "default" and route.via and route.to.version != route.via.version:
                yield (*path, "via"), f"gateway {route.via} is not of the same IP version as {route.to}"
                continue
            if route.dev is not None and route.dev not in known:
                yield (*path, "dev"), f"route dev '{route.dev}' is not an interface of node '{node_name}'"
                continue
            if route.via is not None:
                on = [ifn for ifn, net in connected if route.via in net and (route.dev in (None, ifn))]
                if not on:
                    nets = ", ".join(f"{n} ({i})" for i, n in connected) or "none"
                    yield (
                        (*path, "via"),
                        (
                            f"gateway {route.via} is unreachable from node '{node_name}': it is in none of"
                            f" the node's subnets ({nets})"
                        ),
                    )


def sysctls(topo: Topology) -> Iterator[Finding]:
    """Only per-namespace (net.*) sysctls, and only ones this kernel has."""
    for node_name, node in topo.nodes.items():
        known = _known_interfaces(topo, node_name) | {"all", "default"}
        for key in node.sysctls:
            path: PathKey = ("nodes", node_name, "sysctls", key)
            if not key.startswith("net.") or ".." in key or "/" in key:
                yield (
                    path,
                    (
                        f"sysctl '{key}' is not per network namespace; a lab may only set net.* sysctls"
                        " (anything else would change the host)"
                    ),
                )
                continue
            probe, shown = key, key.replace(".", "/")
            per_interface = sysctl_interface(key)
            if per_interface is not None:
                prefix, ifname, leaf = per_interface
                if ifname not in known:
                    yield path, f"sysctl '{key}' names interface '{ifname}', which node '{node_name}' does not have"
                    probe = ""
                elif ifname not in ("all", "default"):
                    # the lab's interface does not exist yet; every namespace's lo has the same
                    # per-interface keys (conf has all/ too, but the neighbour tables have no all/)
                    probe, shown = f"{prefix}lo.{leaf}", f"{prefix.replace('.', '/')}IF/{leaf}"
            if probe.startswith("net.bridge.") and not key_path("net.bridge").exists():
                # br_netfilter makes these; `up` loads it first (netlab.apply.modules)
                if probe.removeprefix("net.bridge.") not in BR_NETFILTER_SYSCTLS:
                    yield path, f"unknown sysctl '{key}': br_netfilter has {', '.join(sorted(BR_NETFILTER_SYSCTLS))}"
            elif probe and not key_path(probe).exists():
                yield path, f"unknown sysctl '{key}': this kernel has no /proc/sys/{shown}"


def iptables(topo: Topology) -> Iterator[Finding]:
    """Lines are iptables-restore rules or policies; netlab writes the *table/COMMIT frame."""
    for node_name, node in topo.nodes.items():
        for family in ("iptables", "ip6tables"):
            tables: dict[str, list[str]] = getattr(node, family)
            if family == "ip6tables" and tables and not topo.ipv6:
                yield ("nodes", node_name, family), "ip6tables rules but the lab sets ipv6: false"
            for table, lines in tables.items():
                for i, line in enumerate(lines):
                    path: PathKey = ("nodes", node_name, family, table, i)
                    text = line.strip()
                    if "\n" in text:
                        yield path, "one rule per list item; this one spans several lines"
                    elif text.upper() == "COMMIT" or text.startswith("*"):
                        yield path, f"'{text}': leave out '*{table}' and COMMIT, netlab adds them"
                    elif not text.startswith((":", "-")):
                        yield (
                            path,
                            (
                                f"'{text}' is not an iptables-restore line: expected a policy"
                                " (':FORWARD DROP') or a rule ('-A FORWARD -i br0 -j ACCEPT')"
                            ),
                        )


def exec_commands(topo: Topology) -> Iterator[Finding]:
    """Commands must parse like a shell command line (they are split, never given to a shell)."""

    for node_name, node in topo.nodes.items():
        for i, cmd in enumerate(node.exec):
            try:
                argv = shlex.split(cmd)
            except ValueError as exc:
                yield ("nodes", node_name, "exec", i), f"cannot split command '{cmd}': {exc}"
                continue
            if not argv:
                yield ("nodes", node_name, "exec", i), "empty command"


RULES: tuple[Rule, ...] = (
    has_nodes,
    endpoints_exist,
    unique_interfaces,
    interfaces_exist,
    bridge_ports,
    bridge_vlans,
    stacked_interfaces,
    vxlans,
    addresses,
    unique_macs,
    routes,
    sysctls,
    iptables,
    exec_commands,
)


def check(topo: Topology) -> list[Finding]:
    """Every cross-reference problem of ``topo``, in rule order."""
    return [finding for rule in RULES for finding in rule(topo)]
