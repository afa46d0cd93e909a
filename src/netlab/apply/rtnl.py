"""Link, address and route steps as rtnetlink messages, sent one batch per node and phase.

Each kind of step has an encoder that packs its request (:mod:`netlab.runtime.nlmsg`: struct,
the kernel's attribute numbers; the tests compare every encoder's bytes with pyroute2's). We
send them ourselves because a node's whole phase fits in one datagram: the kernel processes the
messages in order and acks each by sequence number, so 150 veths cost one ``send`` and a few
``recv`` instead of 150 round trips. An error ack is mapped back to the step that caused it,
with the kernel's own explanation when it gives one (extended ack).

Framing, acks and sockets are the runtime's netlink layer (:mod:`netlab.runtime.netlink`);
here are only the encoders of each kind of step and the batching. pyroute2's high-level
``link("add", peer=...)`` could not be used anyway: it cannot set the veth peer's ifindex,
which the planner chose in advance.
"""

from __future__ import annotations

import errno as errno_mod
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

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
from netlab.runtime import nlmsg as m
from netlab.runtime.netns import open_fd

IFA_F_NODAD = 0x02
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
ROUTE_TYPES = {"unicast": 1, "blackhole": 6, "unreachable": 7, "prohibit": 8}


class NetlinkStepError(Exception):
    """The kernel refused ``step``; ``detail`` is its message."""

    def __init__(self, step: Step, err: int, detail: str) -> None:
        super().__init__(detail)
        self.step = step
        self.errno = err
        self.detail = detail


# the kernel's attribute numbers (include/uapi/linux/if_link.h, if_addr.h, rtnetlink.h,
# if_bridge.h); tests/unit/apply/test_rtnl.py checks every message against pyroute2's encoding
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_AF_SPEC, IFLA_NET_NS_FD = 18, 20, 26, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_BR = {
    "forward_delay": (1, m.u32),
    "stp_state": (5, m.u32),
    "vlan_filtering": (7, m.u8),
    "group_fwd_mask": (9, m.u16),
    "nf_call_iptables": (36, m.u8),
    "nf_call_ip6tables": (37, m.u8),
    "nf_call_arptables": (38, m.u8),
    "vlan_default_pvid": (39, m.u16),
}
IFLA_VLAN_ID, IFLA_VLAN_PROTOCOL = 1, 5
IFLA_MACVLAN_MODE = 1
IFLA_VXLAN_ID, IFLA_VXLAN_GROUP, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_TTL = 1, 2, 3, 4, 5
IFLA_VXLAN_LEARNING, IFLA_VXLAN_PORT, IFLA_VXLAN_GROUP6, IFLA_VXLAN_LOCAL6 = 7, 15, 16, 17
IFLA_BRIDGE_FLAGS, IFLA_BRIDGE_VLAN_INFO = 0, 2
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY = 1, 4, 5, 6


def _link_attrs(ifname: str, mac: str | None, mtu: int | None) -> list[m.Attr]:
    attrs: list[m.Attr] = [(IFLA_IFNAME, ifname)]
    if mac:
        attrs.append((IFLA_ADDRESS, m.mac(mac)))
    if mtu:
        attrs.append((IFLA_MTU, m.Int(mtu, m.u32)))
    return attrs


CREATE = nl.NLM_F_REQUEST | nl.NLM_F_ACK | nl.NLM_F_CREATE | nl.NLM_F_EXCL
CHANGE = nl.NLM_F_REQUEST | nl.NLM_F_ACK


def _link(index: int, attrs: list[m.Attr], flags: int, *, up: bool = True) -> bytes:
    head = m.ifinfomsg(index, nl.IFF_UP, nl.IFF_UP) if up else m.ifinfomsg(index)
    return m.message(nl.RTM_NEWLINK, flags, head, attrs)


def _u32(value: int) -> m.Int:
    return m.Int(value, m.u32)


def _linkinfo(kind: str, data: list[m.Attr] | None) -> m.Attr:
    info: list[m.Attr] = [(IFLA_INFO_KIND, kind)]
    if data is not None:
        info.append((IFLA_INFO_DATA, m.Nested(data)))
    return (IFLA_LINKINFO, m.Nested(info))


def _loopback(step: SetLoopback, _netns: str, _fd: NetnsFd) -> bytes:
    return _link(1, [(IFLA_IFALIAS, step.alias)], CHANGE)


def _bridge(step: CreateBridge, _netns: str, _fd: NetnsFd) -> bytes:
    options = {
        "stp_state": int(step.stp),
        "forward_delay": None if step.forward_delay is None else int(step.forward_delay * 100),
        "group_fwd_mask": step.group_fwd_mask,
        "nf_call_iptables": None if step.nf_call_iptables is None else int(step.nf_call_iptables),
        "nf_call_ip6tables": None if step.nf_call_ip6tables is None else int(step.nf_call_ip6tables),
        "nf_call_arptables": None if step.nf_call_arptables is None else int(step.nf_call_arptables),
        "vlan_filtering": 1 if step.vlan_filtering else None,
        "vlan_default_pvid": step.default_pvid,
    }
    data: list[m.Attr] = []
    for option, value in options.items():
        if value is not None:
            kind, form = IFLA_BR[option]
            data.append((kind, m.Int(value, form)))
    attrs = [*_link_attrs(step.ifname, step.mac, step.mtu), _linkinfo("bridge", data)]
    return _link(step.ifindex, attrs, CREATE)


def _veth(step: CreateVeth, netns: str, netns_fd: NetnsFd) -> bytes:
    peer_attrs = _link_attrs(step.peer_ifname, step.peer_mac, step.peer_mtu)
    if step.peer_netns != netns:
        peer_attrs.append((IFLA_NET_NS_FD, _u32(netns_fd(step.peer_netns))))
    attrs = _link_attrs(step.ifname, step.mac, step.mtu)
    if step.master_ifindex:
        attrs.append((IFLA_MASTER, _u32(step.master_ifindex)))
    # the peer cannot be created up (the kernel answers ENOTCONN): SetLink does it later
    peer = m.Nested(peer_attrs, head=m.ifinfomsg(step.peer_ifindex))
    attrs.append(_linkinfo("veth", [(VETH_INFO_PEER, peer)]))
    return _link(step.ifindex, attrs, CREATE)


MACVLAN_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8, "source": 16}
VLAN_PROTOCOLS = {"802.1Q": 0x8100, "802.1ad": 0x88A8}


def _stacked_data(step: CreateStacked) -> list[m.Attr] | None:
    if isinstance(step, CreateVlan):
        return [
            (IFLA_VLAN_ID, m.Int(step.vlan_id, m.u16)),
            (IFLA_VLAN_PROTOCOL, m.Int(VLAN_PROTOCOLS[step.protocol], m.be16)),
        ]
    if isinstance(step, CreateMacvlan):
        return [(IFLA_MACVLAN_MODE, _u32(MACVLAN_MODES[step.mode]))]
    if isinstance(step, CreateVxlan):
        six = any(a is not None and a.version == 6 for a in (step.remote, step.group, step.local))
        peer = step.remote if step.remote is not None else step.group
        data: list[m.Attr] = [(IFLA_VXLAN_ID, _u32(step.vni))]
        if peer is not None:
            data.append((IFLA_VXLAN_GROUP6 if six else IFLA_VXLAN_GROUP, peer.packed))
        if step.local is not None:
            data.append((IFLA_VXLAN_LOCAL6 if six else IFLA_VXLAN_LOCAL, step.local.packed))
        if step.parent_ifindex is not None:
            data.append((IFLA_VXLAN_LINK, _u32(step.parent_ifindex)))
        if step.port is not None:
            data.append((IFLA_VXLAN_PORT, m.Int(step.port, m.be16)))
        data.append((IFLA_VXLAN_LEARNING, m.Int(int(step.learning), m.u8)))
        if step.ttl is not None:
            data.append((IFLA_VXLAN_TTL, m.Int(step.ttl, m.u8)))
        return data
    return None


def _create_stacked(step: CreateStacked, _netns: str, _fd: NetnsFd) -> bytes:
    """A dummy, vlan, macvlan or vxlan; the kernel takes a vxlan's remote as its "group"."""
    attrs = _link_attrs(step.ifname, step.mac, step.mtu)
    if step.parent_ifindex and not isinstance(step, CreateVxlan):
        attrs.append((IFLA_LINK, _u32(step.parent_ifindex)))
    if step.master_ifindex:
        attrs.append((IFLA_MASTER, _u32(step.master_ifindex)))
    attrs.append(_linkinfo(step.kind, _stacked_data(step)))
    return _link(step.ifindex, attrs, CREATE)


BRIDGE_FLAGS_SELF = 2
BRIDGE_VLAN_INFO_PVID = 0x2
BRIDGE_VLAN_INFO_UNTAGGED = 0x4
BRIDGE_VLAN_INFO = struct.Struct("HH")  # struct bridge_vlan_info: flags, vid


def _port_vlans(step: SetPortVlans, _netns: str, _fd: NetnsFd) -> bytes:
    """``bridge vlan add``: an AF_BRIDGE setlink carrying one VLAN_INFO per VLAN."""
    spec: list[m.Attr] = [(IFLA_BRIDGE_FLAGS, m.Int(BRIDGE_FLAGS_SELF, m.u16))] if step.own else []
    for vlan in step.vlans:
        flags = (BRIDGE_VLAN_INFO_PVID if vlan.pvid else 0) | (BRIDGE_VLAN_INFO_UNTAGGED if vlan.untagged else 0)
        spec.append((IFLA_BRIDGE_VLAN_INFO, BRIDGE_VLAN_INFO.pack(flags, vlan.vid)))
    head = m.ifinfomsg(step.ifindex, family=socket.AF_BRIDGE)
    return m.message(nl.RTM_SETLINK, CHANGE, head, [(IFLA_AF_SPEC, m.Nested(spec))])


def _set_link(step: SetLink, _netns: str, _fd: NetnsFd) -> bytes:
    attrs: list[m.Attr] = [(IFLA_MASTER, _u32(step.master_ifindex))] if step.master_ifindex else []
    return _link(step.ifindex, attrs, CHANGE)


def _address(step: AddAddress, _netns: str, _fd: NetnsFd) -> bytes:
    addr = step.address
    packed = addr.ip.packed
    if addr.version == 4:
        head = m.ifaddrmsg(socket.AF_INET, addr.network.prefixlen, step.ifindex)
        attrs: list[m.Attr] = [(IFA_LOCAL, packed), (IFA_ADDRESS, packed)]
    else:
        head = m.ifaddrmsg(socket.AF_INET6, addr.network.prefixlen, step.ifindex, flags=IFA_F_NODAD)
        attrs = [(IFA_ADDRESS, packed), (IFA_FLAGS, _u32(IFA_F_NODAD))]
    return m.message(nl.RTM_NEWADDR, CREATE, head, attrs)


def _route(step: AddRoute, _netns: str, _fd: NetnsFd) -> bytes:
    family = socket.AF_INET if step.to.version == 4 else socket.AF_INET6
    direct = step.type == "unicast" and step.via is None
    scope = RT_SCOPE_LINK if direct else RT_SCOPE_UNIVERSE
    head = m.rtmsg(
        family, step.to.prefixlen, table=RT_TABLE_MAIN, protocol=RTPROT_BOOT, scope=scope, kind=ROUTE_TYPES[step.type]
    )
    attrs: list[m.Attr] = []
    if step.to.prefixlen:
        attrs.append((RTA_DST, step.to.network_address.packed))
    if step.via is not None:
        attrs.append((RTA_GATEWAY, step.via.packed))
    if step.dev_ifindex is not None:
        attrs.append((RTA_OIF, _u32(step.dev_ifindex)))
    if step.metric is not None:
        attrs.append((RTA_PRIORITY, _u32(step.metric)))
    return m.message(nl.RTM_NEWROUTE, CREATE, head, attrs)


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


class Encoder:
    """Turns steps into rtnetlink bytes; holds the fds of peer namespaces veths are sent to."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def _netns_fd(self, netns: str) -> int:
        if netns not in self._fds:
            self._fds[netns] = open_fd(netns)
        return self._fds[netns]

    def close(self) -> None:
        """Close the namespace fds."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def encode(self, step: Step, netns: str) -> bytes:
        """The message for ``step``, which runs inside ``netns``."""
        return ENCODERS[type(step)](step, netns, self._netns_fd)


def send_batch(sock: socket.socket, items: list[tuple[Step, bytes]]) -> None:
    """Send ``items`` (:func:`netlab.runtime.netlink.exchange`: as few datagrams as fit, every
    ack read); raise :class:`NetlinkStepError` for the first step the kernel refused."""
    try:
        answers = nl.exchange(sock, [raw for _step, raw in items])
    except nl.NoAnswerError as exc:
        pending = ", ".join(items[i][0].describe() for i in exc.pending)
        raise NetlinkStepError(
            items[exc.pending[0]][0],
            errno_mod.ETIMEDOUT,
            f"no answer from the kernel within {nl.TIMEOUT:.0f}s for: {pending}",
        ) from None
    for (step, _raw), answer in zip(items, answers, strict=True):
        if answer.errno:
            raise NetlinkStepError(step, answer.errno, answer.detail)
