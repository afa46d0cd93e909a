"""The steps a lab is built from: plain data, each saying what it does and how it is undone.

A step knows nothing of netlink or subprocesses; :mod:`netlab.apply` gives each kind of step
its effect. Steps run in :class:`Phase` order, and within a phase node by node, which is what
lets the applier send a node's netlink steps of one phase as a single batch.

Undo is explicit but mostly implied: everything except the namespace itself lives *inside* a
namespace, so deleting the namespace undoes it. That is why teardown needs only the journal's
list of namespaces, and why a half-built lab can always be removed.
"""

from __future__ import annotations

import enum
import ipaddress
import shlex
from dataclasses import dataclass, field
from typing import ClassVar, Literal

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ModelPath = tuple[str | int, ...]


class Phase(enum.IntEnum):
    """Build order (the dry run prints the names)."""

    NAMESPACES = 1
    EARLY_SYSCTLS = 2  # before interfaces exist, so 'default' settings apply to them
    LOOPBACK = 3
    FIREWALL = 4  # early: a bad rule fails before the expensive part
    LINKS = 5
    PEERS = 6  # veth peer ends up: a vlan cannot be brought up on a lower device that is down
    STACKED = 7  # dummies, vlans, macvlans, vxlans: on top of, or beside, what LINKS made
    LINK_CONFIG = 8
    LATE_SYSCTLS = 9  # settings of interfaces created in LINKS and STACKED
    ROUTES = 10
    COMMANDS = 11


@dataclass(frozen=True)
class Step:
    """One action inside one node."""

    node: str
    phase: ClassVar[Phase]
    #: where in the topology this step comes from, to locate errors in the file
    origin: ModelPath = field(default=(), kw_only=True, compare=False)

    def describe(self) -> str:  # pragma: no cover - every subclass overrides
        """One line for the dry run and for error messages."""
        raise NotImplementedError

    def undo(self, netns: str) -> str:
        """How this step is undone, for the dry run."""
        return f"removed with namespace {netns}"


@dataclass(frozen=True)
class CreateNamespace(Step):
    """The node's network namespace."""

    netns: str
    phase: ClassVar[Phase] = Phase.NAMESPACES

    def describe(self) -> str:
        return f"create network namespace {self.netns}"

    def undo(self, netns: str) -> str:
        return f"kill processes left in {netns}, unmount /run/netns/{netns}"


@dataclass(frozen=True)
class WriteSysctl(Step):
    """A net.* sysctl, written inside the node's namespace."""

    key: str
    value: str
    late: bool = False

    @property
    def phase(self) -> Phase:  # type: ignore[override]
        return Phase.LATE_SYSCTLS if self.late else Phase.EARLY_SYSCTLS

    def describe(self) -> str:
        return f"sysctl {self.key}={self.value}"


@dataclass(frozen=True)
class SetLoopback(Step):
    """Bring ``lo`` up and mark the namespace as the lab's (ifalias, seen by ``clean``)."""

    alias: str
    phase: ClassVar[Phase] = Phase.LOOPBACK

    def describe(self) -> str:
        return f"lo up, alias '{self.alias}'"


@dataclass(frozen=True)
class RestoreFirewall(Step):
    """iptables-restore (or ip6tables-restore) of one generated ruleset."""

    family: Literal[4, 6]
    text: str
    #: model path of each line of ``text`` (None for the '*table' and COMMIT lines we add)
    line_origins: tuple[ModelPath | None, ...] = ()
    phase: ClassVar[Phase] = Phase.FIREWALL

    def describe(self) -> str:
        tool = "iptables-restore" if self.family == 4 else "ip6tables-restore"
        rules = sum(1 for o in self.line_origins if o is not None and len(o) == 5)
        return f"{tool} -w ({rules} rules)"


@dataclass(frozen=True)
class LoadNftables(Step):
    """``nft -f`` of a node's ruleset, all of it or nothing (nft loads a file as one transaction);
    ``late``: once the node's interfaces exist and are set up, before routes (a ruleset whose
    netdev chains hook them)."""

    text: str
    late: bool = False

    @property
    def phase(self) -> Phase:  # type: ignore[override]
        return Phase.LATE_SYSCTLS if self.late else Phase.FIREWALL

    def describe(self) -> str:
        return f"nft -f ({len(self.text.strip().splitlines())} lines)"


@dataclass(frozen=True)
class CreateBridge(Step):
    """A Linux bridge."""

    ifname: str
    ifindex: int
    stp: bool
    forward_delay: float | None = None
    group_fwd_mask: int | None = None
    nf_call_iptables: bool | None = None
    nf_call_ip6tables: bool | None = None
    nf_call_arptables: bool | None = None
    vlan_filtering: bool = False
    default_pvid: int | None = None
    mac: str | None = None
    mtu: int | None = None
    phase: ClassVar[Phase] = Phase.LINKS

    def describe(self) -> str:
        extra = " stp" if self.stp else ""
        if self.vlan_filtering:
            extra += " vlan_filtering"
        if self.default_pvid is not None:
            extra += f" default_pvid={self.default_pvid}"
        for name in ("nf_call_iptables", "nf_call_ip6tables", "nf_call_arptables"):
            value = getattr(self, name)
            if value is not None:
                extra += f" {name}={int(value)}"
        if self.group_fwd_mask is not None:
            extra += f" group_fwd_mask={self.group_fwd_mask:#x}"
        return f"bridge {self.ifname} (ifindex {self.ifindex}){extra}, up"


@dataclass(frozen=True)
class CreateVeth(Step):
    """A veth pair: this end in ``node``, the peer created directly in ``peer_node``."""

    ifname: str
    ifindex: int
    peer_node: str
    peer_netns: str
    peer_ifname: str
    peer_ifindex: int
    mac: str | None = None
    mtu: int | None = None
    master_ifindex: int | None = None
    peer_mac: str | None = None
    peer_mtu: int | None = None
    phase: ClassVar[Phase] = Phase.LINKS

    def describe(self) -> str:
        master = f", port of ifindex {self.master_ifindex}" if self.master_ifindex else ""
        peer = f"{self.peer_node}:{self.peer_ifname} (ifindex {self.peer_ifindex})"
        return f"veth {self.ifname} (ifindex {self.ifindex}{master}) <-> {peer}, up"


@dataclass(frozen=True)
class CreateStacked(Step):
    """An interface made in its node after the veths and bridges: a dummy, vlan, macvlan or
    vxlan, up, a bridge port from birth when ``master_ifindex`` is set."""

    ifname: str
    ifindex: int
    parent_ifindex: int | None = None
    master_ifindex: int | None = None
    mac: str | None = None
    mtu: int | None = None
    phase: ClassVar[Phase] = Phase.STACKED
    kind: ClassVar[str] = ""
    #: the kernel module that provides ``kind``, named when the kernel does not know it
    module: ClassVar[str] = ""

    def _extra(self) -> str:
        return ""

    def describe(self) -> str:
        on = f" on ifindex {self.parent_ifindex}" if self.parent_ifindex else ""
        master = f", port of ifindex {self.master_ifindex}" if self.master_ifindex else ""
        return f"{self.kind} {self.ifname} (ifindex {self.ifindex}{on}{self._extra()}{master}), up"


@dataclass(frozen=True)
class CreateDummy(CreateStacked):
    """A dummy interface."""

    kind: ClassVar[str] = "dummy"
    module: ClassVar[str] = "dummy"


@dataclass(frozen=True)
class CreateVlan(CreateStacked):
    """An 802.1Q/802.1ad sub-interface of ``parent_ifindex``."""

    vlan_id: int = 1
    protocol: Literal["802.1Q", "802.1ad"] = "802.1Q"
    kind: ClassVar[str] = "vlan"
    module: ClassVar[str] = "8021q"

    def _extra(self) -> str:
        return f" id {self.vlan_id}" + (" 802.1ad" if self.protocol == "802.1ad" else "")


@dataclass(frozen=True)
class CreateMacvlan(CreateStacked):
    """A macvlan on ``parent_ifindex``."""

    mode: Literal["private", "vepa", "bridge", "passthru", "source"] = "bridge"
    kind: ClassVar[str] = "macvlan"
    module: ClassVar[str] = "macvlan"

    def _extra(self) -> str:
        return f" mode {self.mode}"


@dataclass(frozen=True)
class CreateVxlan(CreateStacked):
    """A VXLAN tunnel end; ``parent_ifindex`` is its underlay device, if given."""

    vni: int = 0
    remote: IPAddress | None = None
    group: IPAddress | None = None
    local: IPAddress | None = None
    port: int = 4789
    learning: bool = True
    ttl: int | None = None
    kind: ClassVar[str] = "vxlan"
    module: ClassVar[str] = "vxlan"

    def _extra(self) -> str:
        peer = f" remote {self.remote}" if self.remote else f" group {self.group}"
        local = f" local {self.local}" if self.local else ""
        return f" vni {self.vni}{peer}{local} port {self.port}"


@dataclass(frozen=True)
class PortVlan:
    """One VLAN of a bridge port: its id, and whether it is the port's pvid / sent untagged."""

    vid: int
    pvid: bool = False
    untagged: bool = False


@dataclass(frozen=True)
class SetPortVlans(Step):
    """A bridge port's VLAN membership (``bridge vlan add``); ``own`` for the bridge itself."""

    ifname: str
    ifindex: int
    vlans: tuple[PortVlan, ...]
    own: bool = False
    phase: ClassVar[Phase] = Phase.LINK_CONFIG

    def describe(self) -> str:
        def one(v: PortVlan) -> str:
            return f"{v.vid}" + (" pvid" if v.pvid else "") + (" untagged" if v.untagged else "")

        who = f"bridge {self.ifname} itself" if self.own else f"port {self.ifname}"
        return f"VLANs of {who}: {', '.join(one(v) for v in self.vlans)}"


@dataclass(frozen=True)
class SetLink(Step):
    """Bring up a veth peer end (it cannot be created up), optionally enslave it to a bridge."""

    ifname: str
    ifindex: int
    master_ifindex: int | None = None
    phase: ClassVar[Phase] = Phase.PEERS

    def describe(self) -> str:
        master = f", port of ifindex {self.master_ifindex}" if self.master_ifindex else ""
        return f"{self.ifname} up{master}"


@dataclass(frozen=True)
class AddAddress(Step):
    """An address on an interface (IPv6 without DAD, so it is usable at once)."""

    ifname: str
    ifindex: int
    address: IPInterface
    phase: ClassVar[Phase] = Phase.LINK_CONFIG

    def describe(self) -> str:
        return f"address {self.address} on {self.ifname}"


@dataclass(frozen=True)
class AddRoute(Step):
    """A route in the main table."""

    to: IPNetwork
    type: Literal["unicast", "blackhole", "unreachable", "prohibit"] = "unicast"
    via: IPAddress | None = None
    dev: str | None = None
    dev_ifindex: int | None = None
    metric: int | None = None
    phase: ClassVar[Phase] = Phase.ROUTES

    def describe(self) -> str:
        to = "default" if self.to.prefixlen == 0 else str(self.to)
        parts = [f"route {to}" if self.type == "unicast" else f"route {self.type} {to}"]
        if self.via:
            parts.append(f"via {self.via}")
        if self.dev:
            parts.append(f"dev {self.dev}")
        if self.metric is not None:
            parts.append(f"metric {self.metric}")
        if self.to.version == 6 and self.to.prefixlen == 0:
            parts[0] = parts[0].replace("default", "default (IPv6)")
        return " ".join(parts)


@dataclass(frozen=True)
class RunCommand(Step):
    """A command run to completion inside the node (tc, ethtool, ...)."""

    argv: tuple[str, ...]
    phase: ClassVar[Phase] = Phase.COMMANDS

    def describe(self) -> str:

        return f"run {shlex.join(self.argv)}"


@dataclass(frozen=True)
class Readiness:
    """What 'usable' means for one node.

    ``carrier``: up with carrier and operstate UP (the kernel has swapped in the real qdisc).
    ``carrier_only``: up with carrier; for bridges that send nothing themselves (no address),
    whose operstate the kernel's linkwatch updates up to a second later.
    """

    node: str
    carrier: tuple[tuple[str, int], ...]  # (ifname, ifindex)
    carrier_only: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ModuleNeed:
    """A kernel module the lab needs, and the part of the topology that needs it."""

    module: str
    why: str


@dataclass(frozen=True)
class Plan:
    """Everything needed to build one lab, in order; derived purely from a topology."""

    lab: str
    netns: dict[str, str]
    steps: tuple[Step, ...]
    readiness: tuple[Readiness, ...]
    ifindex: dict[tuple[str, str], int]
    modules: tuple[ModuleNeed, ...] = ()

    def ordered(self) -> list[Step]:
        """Steps in execution order: by phase, then node order, then as planned."""
        nodes = list(self.netns)
        return sorted(self.steps, key=lambda s: (s.phase, nodes.index(s.node)))

    def render(self) -> str:
        """The dry run: every step with its phase and undo."""
        out = [f"plan for lab {self.lab}: {len(self.netns)} namespaces, {len(self.steps)} steps"]
        out += [f"  [{'modules':>13}] load {m.module} if absent ({m.why})" for m in self.modules]
        for step in self.ordered():
            ns = self.netns[step.node]
            out.append(f"  [{step.phase.name.lower():>13}] {step.node}: {step.describe()}")
            if isinstance(step, CreateNamespace):
                out.append(f"  {'':>15}  undo: {step.undo(ns)}")
        out.append("  undo of every other step: removed with its namespace")
        return "\n".join(out)
