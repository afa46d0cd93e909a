"""The topology as pure data: what a lab is, not how to build it.

These pydantic models only describe and check shape (strict types, unknown keys refused).
Rules that relate one part of a topology to another (an endpoint names a node that exists,
a gateway is reachable, ...) live in :mod:`netlab.model.validate`, so that each rule is one
function with one message. Nothing here imports pyroute2 or touches the kernel; the planner
walks these objects, and the JSON Schema for editors is generated from them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

from netlab.model.names import ifname_problem, label_problem

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _str_input(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected {what} as a string, got {type(value).__name__} {value!r}")
    return value


def _ifname(value: object) -> str:
    name = _str_input(value, "an interface name")
    problem = ifname_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def _label(kind: str) -> Any:
    def check(value: object) -> str:
        name = _str_input(value, f"a {kind} name")
        problem = label_problem(kind, name)
        if problem:
            raise ValueError(problem)
        return name

    return check


def _interface_address(value: object) -> IPInterface:
    text = _str_input(value, "an address like 198.51.100.1/24")
    if "/" not in text:
        raise ValueError(f"address '{text}' needs a prefix length, e.g. {text}/24")
    try:
        return ipaddress.ip_interface(text)
    except ValueError as exc:
        raise ValueError(f"bad address '{text}': {exc}") from None


def _address(value: object) -> IPAddress:
    text = _str_input(value, "an IP address")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"bad IP address '{text}'") from None


def _route_destination(value: object) -> IPNetwork | Literal["default"]:
    text = _str_input(value, "'default' or a prefix like 203.0.113.0/24")
    if text == "default":
        return "default"
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"bad route destination '{text}': {exc}") from None


_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def _mac(value: object) -> str:
    text = _str_input(value, "a MAC address like 02:00:00:00:00:01")
    if not _MAC_RE.match(text):
        raise ValueError(f"bad MAC address '{text}' (expected six hex pairs, e.g. 02:00:00:00:00:01)")
    first = int(text[:2], 16)
    if first & 1:
        raise ValueError(f"MAC address '{text}' is multicast; an interface needs a unicast address")
    if int(text.replace(":", ""), 16) == 0:
        raise ValueError("MAC address 00:00:00:00:00:00 is not usable")
    return text.lower()


@dataclass(frozen=True, order=True)
class Endpoint:
    """One end of a veth link: an interface name inside a node."""

    node: str
    ifname: str

    def __str__(self) -> str:
        return f"{self.node}:{self.ifname}"


def _endpoint(value: object) -> Endpoint:
    if isinstance(value, Endpoint):
        return value
    text = _str_input(value, "an endpoint 'node:interface'")
    node, sep, ifname = text.partition(":")
    if not sep or not node or not ifname:
        raise ValueError(f"endpoint '{text}' must be 'node:interface', e.g. ns-calm1:calmveth1")
    problem = label_problem("node", node) or ifname_problem(ifname)
    if problem:
        raise ValueError(problem)
    return Endpoint(node, ifname)


def _sysctl_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | str):
        return str(value)
    raise ValueError(f"a sysctl value must be a number or a string, got {type(value).__name__}")


def _str_schema(description: str, **extra: Any) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "description": description, **extra})


IfName = Annotated[
    str,
    PlainValidator(_ifname),
    _str_schema("Linux interface name: 1-15 bytes, no '/', ':', '%' or whitespace", maxLength=15),
]
NodeName = Annotated[
    str, PlainValidator(_label("node")), _str_schema("node name", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
]
LabName = Annotated[str, PlainValidator(_label("lab")), _str_schema("lab name", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
InterfaceAddress = Annotated[
    IPInterface,
    PlainValidator(_interface_address),
    PlainSerializer(str),
    _str_schema("address with prefix length, IPv4 or IPv6", examples=["198.51.100.1/24"]),
]
Address = Annotated[IPAddress, PlainValidator(_address), PlainSerializer(str), _str_schema("IP address")]
RouteDestination = Annotated[
    IPNetwork | Literal["default"],
    PlainValidator(_route_destination),
    PlainSerializer(str),
    _str_schema("'default' or a prefix", examples=["default", "203.0.113.0/24"]),
]
Mac = Annotated[str, PlainValidator(_mac), _str_schema("unicast MAC address", examples=["02:00:00:00:00:01"])]
EndpointRef = Annotated[
    Endpoint,
    PlainValidator(_endpoint),
    PlainSerializer(str),
    _str_schema("'node:interface'", pattern=r"^[^:]+:[^:]+$", examples=["ns-calm1:calmveth1"]),
]
Mtu = Annotated[int, Field(ge=68, le=65535, description="MTU in bytes")]
SysctlValue = Annotated[
    str,
    PlainValidator(_sysctl_value),
    WithJsonSchema({"type": ["string", "integer", "boolean"]}),
]
IptablesTable = Literal["filter", "nat", "mangle", "raw", "security"]


class Model(BaseModel):
    """Base of every topology model: strict types, unknown keys are errors, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Interface(Model):
    """Settings of one interface of a node (a veth end, a bridge, a dummy, vlan, macvlan or
    vxlan, or ``lo``)."""

    addresses: list[InterfaceAddress] = Field(default_factory=list)
    mac: Mac | None = None
    mtu: Mtu | None = None


VlanId = Annotated[int, Field(ge=1, le=4094, description="802.1Q VLAN id")]


class PortVlans(Model):
    """A bridge port's VLAN membership (with ``vlan_filtering``), as ``bridge vlan add`` sets it."""

    vids: Annotated[list[VlanId], Field(min_length=1)]
    pvid: VlanId | None = Field(default=None, description="the VLAN untagged frames arriving on the port join")
    untagged: list[VlanId] = Field(default_factory=list, description="VLANs sent out of the port without a tag")


class Vlan(Model):
    """An 802.1Q (or 802.1ad) sub-interface stacked on another interface of the node."""

    parent: IfName
    id: VlanId
    protocol: Literal["802.1Q", "802.1ad"] = "802.1Q"


class Macvlan(Model):
    """A macvlan on another interface of the node: its own MAC on the parent's wire."""

    parent: IfName
    mode: Literal["private", "vepa", "bridge", "passthru", "source"] = "bridge"


class Vxlan(Model):
    """A VXLAN tunnel end: Ethernet over UDP between lab nodes, over a lab link (``dev``)."""

    vni: Annotated[int, Field(ge=0, le=0xFFFFFF, description="VXLAN network identifier")]
    remote: Address | None = Field(default=None, description="the one peer's underlay address (unicast)")
    group: Address | None = Field(default=None, description="a multicast group for flooding, instead of remote")
    local: Address | None = Field(default=None, description="this end's underlay address")
    dev: IfName | None = Field(default=None, description="the underlay interface (required with group)")
    port: Annotated[int, Field(ge=1, le=65535)] = 4789
    learning: bool = True
    ttl: Annotated[int, Field(ge=0, le=255)] | None = None


class Bridge(Model):
    """A Linux bridge inside a node, and which of the node's interfaces are its ports."""

    ports: list[IfName] = Field(default_factory=list)
    stp: bool = False
    forward_delay: Annotated[float, Field(ge=0, le=30)] | None = Field(
        default=None, description="seconds; 2-30 while STP is on, 0-30 with it off (the selftests use 0)"
    )
    group_fwd_mask: Annotated[int, Field(ge=0, le=0xFFFF)] | None = Field(
        default=None,
        description="link-local groups (01:80:c2:00:00:0X, bit X) the bridge forwards instead of consuming",
    )
    nf_call_iptables: bool | None = Field(
        default=None, description="per-bridge switch: pass bridged IPv4 through iptables (br_netfilter)"
    )
    nf_call_ip6tables: bool | None = None
    nf_call_arptables: bool | None = Field(
        default=None, description="per-bridge switch: pass bridged ARP through arptables (br_netfilter)"
    )
    vlan_filtering: bool = Field(default=False, description="forward by VLAN membership (port_vlans)")
    default_pvid: Annotated[int, Field(ge=0, le=4094)] | None = Field(
        default=None, description="VLAN every new port joins untagged (kernel default 1; 0 for none)"
    )
    port_vlans: dict[IfName, PortVlans] = Field(
        default_factory=dict,
        description="VLANs per port, with vlan_filtering; the bridge's own name sets its own membership",
    )
    mac: Mac | None = None


class Route(Model):
    """A route in a node's main table."""

    to: RouteDestination
    via: Address | None = None
    dev: IfName | None = None
    type: Literal["unicast", "blackhole", "unreachable", "prohibit"] = "unicast"
    metric: Annotated[int, Field(ge=0)] | None = None


class Node(Model):
    """One network namespace of the lab and everything configured inside it."""

    description: str | None = None
    interfaces: dict[IfName, Interface] = Field(default_factory=dict)
    bridges: dict[IfName, Bridge] = Field(default_factory=dict)
    dummies: list[IfName] = Field(default_factory=list, description="dummy interfaces (module dummy)")
    vlans: dict[IfName, Vlan] = Field(default_factory=dict, description="802.1Q sub-interfaces (module 8021q)")
    macvlans: dict[IfName, Macvlan] = Field(default_factory=dict, description="macvlans (module macvlan)")
    vxlans: dict[IfName, Vxlan] = Field(default_factory=dict, description="VXLAN tunnel ends (module vxlan)")
    routes: list[Route] = Field(default_factory=list)
    sysctls: dict[str, SysctlValue] = Field(
        default_factory=dict, description="net.* sysctls written inside this node's namespace"
    )
    iptables: dict[IptablesTable, list[str]] = Field(
        default_factory=dict,
        description="iptables-restore lines per table, e.g. ':FORWARD DROP', '-A FORWARD -i br0 -j ACCEPT'",
    )
    ip6tables: dict[IptablesTable, list[str]] = Field(default_factory=dict)
    nftables: str | None = Field(
        default=None,
        description="an nft ruleset (nft -f syntax; inet, ip, ip6, arp, bridge and netdev tables) loaded"
        " inside this node in one transaction",
    )
    exec: list[str] = Field(
        default_factory=list,
        description="commands run inside the node after everything else (tc, ethtool, ...); split like a shell",
    )


class Link(Model):
    """A veth pair between two node interfaces."""

    endpoints: Annotated[list[EndpointRef], Field(min_length=2, max_length=2)]
    mtu: Mtu | None = None


class Topology(Model):
    """A whole lab: the root of a topology file."""

    name: LabName
    description: str = ""
    ipv6: bool = Field(default=True, description="false disables IPv6 in every node, to keep traces quiet")
    nodes: dict[NodeName, Node]
    links: list[Link] = Field(default_factory=list)

    def interface(self, node: str, ifname: str) -> Interface:
        """The settings of ``node:ifname`` (defaults when the file gave none)."""
        return self.nodes[node].interfaces.get(ifname, Interface())

    def addressed(self) -> dict[str, list[tuple[str, list[str]]]]:
        """node -> [(interface the lab makes, its addresses)]: what ``up`` shows, and what the
        plan cache keeps so that a cached ``up`` shows it without validating the topology."""
        return {
            node: [(ifname, [str(a) for a in self.interface(node, ifname).addresses]) for ifname in self.created(node)]
            for node in self.nodes
        }

    def creations(self, node: str) -> Iterator[tuple[str, tuple[str | int, ...]]]:
        """Each interface the lab makes in ``node`` with the place in the file that makes it, in
        the order bridges, veth ends, dummies, vxlans, vlans, macvlans; a name made twice (an
        error validation reports) comes twice."""
        spec = self.nodes[node]
        for br in spec.bridges:
            yield br, ("nodes", node, "bridges", br)
        for li, link in enumerate(self.links):
            for ei, ep in enumerate(link.endpoints):
                if ep.node == node:
                    yield ep.ifname, ("links", li, "endpoints", ei)
        for di, dummy in enumerate(spec.dummies):
            yield dummy, ("nodes", node, "dummies", di)
        for kind in ("vxlans", "vlans", "macvlans"):
            for ifname in getattr(spec, kind):
                yield ifname, ("nodes", node, kind, ifname)

    def created(self, node: str) -> dict[str, tuple[str | int, ...]]:
        """Every interface the lab makes in ``node`` (``lo`` is not made) and where in the file.

        The one answer to "which interfaces does this node have", for validation, the planner,
        the graph, the lab's summary and the tracers' map.
        """
        made: dict[str, tuple[str | int, ...]] = {}
        for ifname, path in self.creations(node):
            made.setdefault(ifname, path)
        return made
