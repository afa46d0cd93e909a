"""Link, address and route steps as rtnetlink messages, sent one batch per node and phase.

Each kind of step has an encoder that builds its request with pyroute2's message classes
(``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``: pyroute2 keeps the attribute numbers and their types
right across kernels). The messages of a node's whole phase go to the kernel in one datagram:
it processes them in order and acks each by sequence number, so 150 veths cost one ``send``
and a few ``recv`` instead of 150 round trips (:func:`netlab.runtime.netlink.exchange`). An
error ack is mapped back to the step that caused it, with the kernel's own explanation when it
gives one (extended ack). pyroute2's high-level ``link("add", peer=...)`` is not used: it
cannot set the veth peer's ifindex, which the planner chose in advance.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, RTM_SETLINK

__all__ = ["CHANGE", "CREATE", "RTM_NEWADDR", "RTM_NEWROUTE", "compile_plan", "compile_step"]
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD, ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.plan.requests import FD_PLACEHOLDER, Request, located
from netlab.plan.steps import (
    AddAddress,
    AddRoute,
    CreateBridge,
    CreateDummy,
    CreateMacvlan,
    CreateStacked,
    CreateVeth,
    CreateVlan,
    CreateVxlan,
    Plan,
    SetLink,
    SetLoopback,
    SetPortVlans,
    Step,
)

RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
ROUTE_TYPES = {"unicast": 1, "blackhole": 6, "unreachable": 7, "prohibit": 8}
MACVLAN_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8, "source": 16}
VLAN_PROTOCOLS = {"802.1Q": 0x8100, "802.1ad": 0x88A8}
# include/uapi/linux/if_bridge.h: pyroute2 takes these as numbers
BRIDGE_FLAGS_SELF = 2
BRIDGE_VLAN_INFO_PVID = 0x2
BRIDGE_VLAN_INFO_UNTAGGED = 0x4
CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
CHANGE = NLM_F_REQUEST | NLM_F_ACK

Attrs = list[tuple[str, Any]]


def encoded(msg: Any, kind: int, flags: int) -> bytes:
    """``msg`` (a pyroute2 message) as bytes, with its type and flags (its sequence number is
    set by the exchange that sends it)."""
    msg["header"]["type"] = kind
    msg["header"]["flags"] = flags
    msg.encode()
    return bytes(msg.data)


def _link_attrs(ifname: str, mac: str | None, mtu: int | None) -> Attrs:
    attrs: Attrs = [("IFLA_IFNAME", ifname)]
    if mac:
        attrs.append(("IFLA_ADDRESS", mac))
    if mtu:
        attrs.append(("IFLA_MTU", mtu))
    return attrs


def _link(index: int, attrs: Attrs, flags: int) -> bytes:
    """An RTM_NEWLINK for interface ``index``, which it also sets up."""
    msg = ifinfmsg()
    msg["index"] = index
    msg["flags"], msg["change"] = IFF_UP, IFF_UP
    msg["attrs"] = attrs
    return encoded(msg, RTM_NEWLINK, flags)


def _linkinfo(kind: str, data: Attrs) -> tuple[str, Any]:
    info: Attrs = [("IFLA_INFO_KIND", kind)]
    if data:
        info.append(("IFLA_INFO_DATA", {"attrs": data}))
    return ("IFLA_LINKINFO", {"attrs": info})


def _loopback(step: SetLoopback, _netns: str, _fd: NetnsFd) -> bytes:
    return _link(1, [("IFLA_IFALIAS", step.alias)], CHANGE)


def _bridge(step: CreateBridge, _netns: str, _fd: NetnsFd) -> bytes:
    options = {
        "IFLA_BR_STP_STATE": int(step.stp),
        "IFLA_BR_FORWARD_DELAY": None if step.forward_delay is None else int(step.forward_delay * 100),
        "IFLA_BR_GROUP_FWD_MASK": step.group_fwd_mask,
        "IFLA_BR_NF_CALL_IPTABLES": None if step.nf_call_iptables is None else int(step.nf_call_iptables),
        "IFLA_BR_NF_CALL_IP6TABLES": None if step.nf_call_ip6tables is None else int(step.nf_call_ip6tables),
        "IFLA_BR_NF_CALL_ARPTABLES": None if step.nf_call_arptables is None else int(step.nf_call_arptables),
        "IFLA_BR_VLAN_FILTERING": 1 if step.vlan_filtering else None,
        "IFLA_BR_VLAN_DEFAULT_PVID": step.default_pvid,
    }
    data = [(k, v) for k, v in options.items() if v is not None]
    return _link(step.ifindex, [*_link_attrs(step.ifname, step.mac, step.mtu), _linkinfo("bridge", data)], CREATE)


def _veth(step: CreateVeth, netns: str, netns_fd: NetnsFd) -> bytes:
    peer_attrs = _link_attrs(step.peer_ifname, step.peer_mac, step.peer_mtu)
    if step.peer_netns != netns:
        peer_attrs.append(("IFLA_NET_NS_FD", netns_fd(step.peer_netns)))
    attrs = _link_attrs(step.ifname, step.mac, step.mtu)
    if step.master_ifindex:
        attrs.append(("IFLA_MASTER", step.master_ifindex))
    # the peer cannot be created up (the kernel answers ENOTCONN): SetLink does it later
    peer = {"index": step.peer_ifindex, "attrs": peer_attrs}
    attrs.append(_linkinfo("veth", [("VETH_INFO_PEER", peer)]))
    return _link(step.ifindex, attrs, CREATE)


def _stacked_data(step: CreateStacked) -> Attrs:
    if isinstance(step, CreateVlan):
        return [("IFLA_VLAN_ID", step.vlan_id), ("IFLA_VLAN_PROTOCOL", VLAN_PROTOCOLS[step.protocol])]
    if isinstance(step, CreateMacvlan):
        return [("IFLA_MACVLAN_MODE", MACVLAN_MODES[step.mode])]
    if isinstance(step, CreateVxlan):
        six = any(a is not None and a.version == 6 for a in (step.remote, step.group, step.local))
        suffix = "6" if six else ""
        peer = step.remote if step.remote is not None else step.group
        data: dict[str, Any] = {
            "IFLA_VXLAN_ID": step.vni,
            f"IFLA_VXLAN_GROUP{suffix}": str(peer) if peer is not None else None,
            f"IFLA_VXLAN_LOCAL{suffix}": str(step.local) if step.local is not None else None,
            "IFLA_VXLAN_LINK": step.parent_ifindex,
            "IFLA_VXLAN_PORT": step.port,
            "IFLA_VXLAN_LEARNING": int(step.learning),
            "IFLA_VXLAN_TTL": step.ttl,
        }
        return [(k, v) for k, v in data.items() if v is not None]
    return []


def _create_stacked(step: CreateStacked, _netns: str, _fd: NetnsFd) -> bytes:
    """A dummy, vlan, macvlan or vxlan; the kernel takes a vxlan's remote as its "group"."""
    attrs = _link_attrs(step.ifname, step.mac, step.mtu)
    if step.parent_ifindex and not isinstance(step, CreateVxlan):
        attrs.append(("IFLA_LINK", step.parent_ifindex))
    if step.master_ifindex:
        attrs.append(("IFLA_MASTER", step.master_ifindex))
    attrs.append(_linkinfo(step.kind, _stacked_data(step)))
    return _link(step.ifindex, attrs, CREATE)


def _port_vlans(step: SetPortVlans, _netns: str, _fd: NetnsFd) -> bytes:
    """``bridge vlan add``: an AF_BRIDGE setlink carrying one VLAN_INFO per VLAN."""
    spec: Attrs = [("IFLA_BRIDGE_FLAGS", BRIDGE_FLAGS_SELF)] if step.own else []
    for vlan in step.vlans:
        flags = (BRIDGE_VLAN_INFO_PVID if vlan.pvid else 0) | (BRIDGE_VLAN_INFO_UNTAGGED if vlan.untagged else 0)
        spec.append(("IFLA_BRIDGE_VLAN_INFO", {"flags": flags, "vid": vlan.vid}))
    msg = ifinfmsg()
    msg["family"] = socket.AF_BRIDGE
    msg["index"] = step.ifindex
    msg["attrs"] = [("IFLA_AF_SPEC", {"attrs": spec})]
    return encoded(msg, RTM_SETLINK, CHANGE)


def _set_link(step: SetLink, _netns: str, _fd: NetnsFd) -> bytes:
    return _link(step.ifindex, [("IFLA_MASTER", step.master_ifindex)] if step.master_ifindex else [], CHANGE)


def _address(step: AddAddress, _netns: str, _fd: NetnsFd) -> bytes:
    addr = step.address
    msg = ifaddrmsg()
    msg["prefixlen"] = addr.network.prefixlen
    msg["index"] = step.ifindex
    if addr.version == 4:
        msg["family"] = socket.AF_INET
        msg["attrs"] = [("IFA_LOCAL", str(addr.ip)), ("IFA_ADDRESS", str(addr.ip))]
    else:  # no duplicate address detection: a lab's address is usable at once
        msg["family"], msg["flags"] = socket.AF_INET6, IFA_F_NODAD
        msg["attrs"] = [("IFA_ADDRESS", str(addr.ip)), ("IFA_FLAGS", IFA_F_NODAD)]
    return encoded(msg, RTM_NEWADDR, CREATE)


def _route(step: AddRoute, _netns: str, _fd: NetnsFd) -> bytes:
    msg = rtmsg()
    msg["family"] = socket.AF_INET if step.to.version == 4 else socket.AF_INET6
    msg["dst_len"] = step.to.prefixlen
    msg["table"] = RT_TABLE_MAIN
    msg["proto"] = RTPROT_BOOT
    msg["type"] = ROUTE_TYPES[step.type]
    direct = step.type == "unicast" and step.via is None
    msg["scope"] = RT_SCOPE_LINK if direct else RT_SCOPE_UNIVERSE
    attrs = {
        "RTA_DST": str(step.to.network_address) if step.to.prefixlen else None,
        "RTA_GATEWAY": str(step.via) if step.via is not None else None,
        "RTA_OIF": step.dev_ifindex,
        "RTA_PRIORITY": step.metric,
    }
    msg["attrs"] = [(k, v) for k, v in attrs.items() if v is not None]
    return encoded(msg, RTM_NEWROUTE, CREATE)


NetnsFd = Callable[[str], int]
ENCODERS: dict[type[Step], Callable[[Any, str, NetnsFd], bytes]] = {
    SetLoopback: _loopback,
    CreateBridge: _bridge,
    CreateVeth: _veth,
    CreateDummy: _create_stacked,
    CreateVlan: _create_stacked,
    CreateMacvlan: _create_stacked,
    CreateVxlan: _create_stacked,
    SetPortVlans: _port_vlans,
    SetLink: _set_link,
    AddAddress: _address,
    AddRoute: _route,
}


def compile_step(step: Step, netns: str) -> Request:
    """``step``'s request (run inside ``netns``) as a cacheable message."""
    peers: list[str] = []

    def placeholder(peer: str) -> int:
        peers.append(peer)
        return FD_PLACEHOLDER

    raw = ENCODERS[type(step)](step, netns, placeholder)
    return located(raw, peers[0] if peers else None)


def compile_plan(plan: Plan) -> tuple[Request | None, ...]:
    """Every netlink step's request, in :meth:`Plan.ordered` order (None for the other steps)."""
    return tuple(
        compile_step(step, plan.netns[step.node]) if type(step) in ENCODERS else None for step in plan.ordered()
    )
