"""The old, pyroute2-built encoders of every kind of step: the reference the packed encoders of
:mod:`netlab.apply.rtnl` must match byte for byte (see test_rtnl.py). Kept as they were when
netlab encoded with pyroute2's message classes, so the kernel ABI numbers in rtnl.py are
checked against an independent source."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.apply.rtnl import (
    CHANGE,
    CREATE,
    IFA_F_NODAD,
    MACVLAN_MODES,
    ROUTE_TYPES,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_MAIN,
    RTPROT_BOOT,
    VLAN_PROTOCOLS,
)
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
    SetLink,
    SetLoopback,
    SetPortVlans,
    Step,
)
from netlab.runtime import netlink as nl
from netlab.runtime.netlink import IFF_UP

NetnsFd = Callable[[str], int]
BRIDGE_FLAGS_SELF = 2
BRIDGE_VLAN_INFO_PVID = 0x2
BRIDGE_VLAN_INFO_UNTAGGED = 0x4


def _link_attrs(ifname: str, mac: str | None, mtu: int | None) -> list[tuple[str, Any]]:
    attrs: list[tuple[str, Any]] = [("IFLA_IFNAME", ifname)]
    if mac:
        attrs.append(("IFLA_ADDRESS", mac))
    if mtu:
        attrs.append(("IFLA_MTU", mtu))
    return attrs


def _link(index: int, attrs: list[tuple[str, Any]], *, up: bool = True) -> Any:
    msg = ifinfmsg()
    msg["index"] = index
    if up:
        msg["flags"], msg["change"] = IFF_UP, IFF_UP
    msg["attrs"] = attrs
    return msg


def _linkinfo(kind: str, data: list[tuple[str, Any]]) -> tuple[str, Any]:
    return ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", kind), ("IFLA_INFO_DATA", {"attrs": data})]})


def _loopback(step: SetLoopback, _netns: str, _fd: NetnsFd) -> bytes:
    return encode_message(_link(1, [("IFLA_IFALIAS", step.alias)]), nl.RTM_NEWLINK, CHANGE)


def _bridge(step: CreateBridge, _netns: str, _fd: NetnsFd) -> bytes:
    options = {
        "IFLA_BR_FORWARD_DELAY": None if step.forward_delay is None else int(step.forward_delay * 100),
        "IFLA_BR_GROUP_FWD_MASK": step.group_fwd_mask,
        "IFLA_BR_NF_CALL_IPTABLES": None if step.nf_call_iptables is None else int(step.nf_call_iptables),
        "IFLA_BR_NF_CALL_IP6TABLES": None if step.nf_call_ip6tables is None else int(step.nf_call_ip6tables),
        "IFLA_BR_NF_CALL_ARPTABLES": None if step.nf_call_arptables is None else int(step.nf_call_arptables),
        "IFLA_BR_VLAN_FILTERING": 1 if step.vlan_filtering else None,
        "IFLA_BR_VLAN_DEFAULT_PVID": step.default_pvid,
    }
    data = [("IFLA_BR_STP_STATE", int(step.stp))] + [(k, v) for k, v in options.items() if v is not None]
    attrs = [*_link_attrs(step.ifname, step.mac, step.mtu), _linkinfo("bridge", data)]
    return encode_message(_link(step.ifindex, attrs), nl.RTM_NEWLINK, CREATE)


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
    return encode_message(_link(step.ifindex, attrs), nl.RTM_NEWLINK, CREATE)


def _stacked_data(step: CreateStacked) -> list[tuple[str, Any]]:
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
    data = _stacked_data(step)
    if data:
        attrs.append(_linkinfo(step.kind, data))
    else:
        attrs.append(("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", step.kind)]}))
    return encode_message(_link(step.ifindex, attrs), nl.RTM_NEWLINK, CREATE)


def _port_vlans(step: SetPortVlans, _netns: str, _fd: NetnsFd) -> bytes:
    """``bridge vlan add``: an AF_BRIDGE setlink carrying one VLAN_INFO per VLAN."""
    spec: list[tuple[str, Any]] = [("IFLA_BRIDGE_FLAGS", BRIDGE_FLAGS_SELF)] if step.own else []
    for vlan in step.vlans:
        flags = (BRIDGE_VLAN_INFO_PVID if vlan.pvid else 0) | (BRIDGE_VLAN_INFO_UNTAGGED if vlan.untagged else 0)
        spec.append(("IFLA_BRIDGE_VLAN_INFO", {"flags": flags, "vid": vlan.vid}))
    msg = ifinfmsg()
    msg["family"] = socket.AF_BRIDGE
    msg["index"] = step.ifindex
    msg["attrs"] = [("IFLA_AF_SPEC", {"attrs": spec})]
    return encode_message(msg, nl.RTM_SETLINK, CHANGE)


def _set_link(step: SetLink, _netns: str, _fd: NetnsFd) -> bytes:
    attrs = [("IFLA_MASTER", step.master_ifindex)] if step.master_ifindex else []
    return encode_message(_link(step.ifindex, attrs), nl.RTM_NEWLINK, CHANGE)


def _address(step: AddAddress, _netns: str, _fd: NetnsFd) -> bytes:
    addr = step.address
    msg = ifaddrmsg()
    msg["prefixlen"] = addr.network.prefixlen
    msg["index"] = step.ifindex
    if addr.version == 4:
        msg["family"] = socket.AF_INET
        msg["attrs"] = [("IFA_LOCAL", str(addr.ip)), ("IFA_ADDRESS", str(addr.ip))]
    else:
        msg["family"], msg["flags"] = socket.AF_INET6, IFA_F_NODAD
        msg["attrs"] = [("IFA_ADDRESS", str(addr.ip)), ("IFA_FLAGS", IFA_F_NODAD)]
    return encode_message(msg, nl.RTM_NEWADDR, CREATE)


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
    return encode_message(msg, nl.RTM_NEWROUTE, CREATE)


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


def encode(step: Step, netns: str, netns_fd: NetnsFd) -> bytes:
    """``step`` as pyroute2 encodes it."""
    return ENCODERS[type(step)](step, netns, netns_fd)


def encode_message(msg: Any, kind: int, flags: int) -> bytes:
    """``msg`` (a pyroute2 message) as bytes, with its type and flags."""
    msg["header"]["type"] = kind
    msg["header"]["flags"] = flags
    msg.encode()
    return bytes(msg.data)
