"""Link, address and route steps as rtnetlink messages, sent one batch per node and phase.

Messages are built and encoded by pyroute2's message classes (``ifinfmsg``, ``ifaddrmsg``,
``rtmsg``); we send them ourselves because a node's whole phase fits in one datagram: the
kernel processes the messages in order and acks each by sequence number, so 150 veths cost
one ``send`` and a few ``recv`` instead of 150 round trips. An error ack is mapped back to the
step that caused it, with the kernel's own explanation when it gives one (extended ack).

We need our own framing anyway: pyroute2's high-level ``link("add", peer=...)`` cannot set
the veth peer's ifindex, which the planner chose in advance.
"""

from __future__ import annotations

import errno as errno_mod
import os
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from netlab.apply.netns import open_fd, open_socket
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
from netlab.pyroute import ifaddrmsg, ifinfmsg, rtmsg

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_ACK_TLVS = 0x200
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSGERR_ATTR_MSG = 1

RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_NEWROUTE = 24

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
IFA_F_NODAD = 0x02
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
ROUTE_TYPES = {"unicast": 1, "blackhole": 6, "unreachable": 7, "prohibit": 8}

CHUNK = 32 * 1024
TIMEOUT = 10.0


class NetlinkStepError(Exception):
    """The kernel refused ``step``; ``detail`` is its message."""

    def __init__(self, step: Step, err: int, detail: str) -> None:
        super().__init__(detail)
        self.step = step
        self.errno = err
        self.detail = detail


def open_route_socket(netns: str) -> socket.socket:
    """An rtnetlink socket inside ``netns`` that returns short acks with error text."""
    sock = open_socket(netns, socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
    sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    sock.bind((0, 0))
    sock.settimeout(TIMEOUT)
    return sock


def _encode(msg: Any, kind: int, flags: int) -> bytes:
    msg["header"]["type"] = kind
    msg["header"]["flags"] = flags
    msg.encode()
    return bytes(msg.data)


def _set_seq(raw: bytes, seq: int) -> bytes:
    return raw[:8] + struct.pack("I", seq) + raw[12:]


def _link_attrs(ifname: str, mac: str | None, mtu: int | None) -> list[tuple[str, Any]]:
    attrs: list[tuple[str, Any]] = [("IFLA_IFNAME", ifname)]
    if mac:
        attrs.append(("IFLA_ADDRESS", mac))
    if mtu:
        attrs.append(("IFLA_MTU", mtu))
    return attrs


CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
CHANGE = NLM_F_REQUEST | NLM_F_ACK


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
    return _encode(_link(1, [("IFLA_IFALIAS", step.alias)]), RTM_NEWLINK, CHANGE)


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
    return _encode(_link(step.ifindex, attrs), RTM_NEWLINK, CREATE)


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
    return _encode(_link(step.ifindex, attrs), RTM_NEWLINK, CREATE)


MACVLAN_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8, "source": 16}
VLAN_PROTOCOLS = {"802.1Q": 0x8100, "802.1ad": 0x88A8}


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
    return _encode(_link(step.ifindex, attrs), RTM_NEWLINK, CREATE)


BRIDGE_FLAGS_SELF = 2
BRIDGE_VLAN_INFO_PVID = 0x2
BRIDGE_VLAN_INFO_UNTAGGED = 0x4


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
    return _encode(msg, RTM_SETLINK, CHANGE)


def _set_link(step: SetLink, _netns: str, _fd: NetnsFd) -> bytes:
    attrs = [("IFLA_MASTER", step.master_ifindex)] if step.master_ifindex else []
    return _encode(_link(step.ifindex, attrs), RTM_NEWLINK, CHANGE)


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
    return _encode(msg, RTM_NEWADDR, CREATE)


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
    return _encode(msg, RTM_NEWROUTE, CREATE)


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


def _parse_error(data: bytes, off: int, length: int, flags: int) -> tuple[int, str]:
    err = -struct.unpack_from("i", data, off + 16)[0]
    detail = os.strerror(err) if err else ""
    if flags & NLM_F_ACK_TLVS:
        tlv = off + 20 + 16  # after the error code and the echoed header (NETLINK_CAP_ACK)
        while tlv + 4 <= off + length:
            tlen, ttype = struct.unpack_from("HH", data, tlv)
            if tlen < 4:
                break
            if ttype == NLMSGERR_ATTR_MSG:
                text = data[tlv + 4 : tlv + tlen].split(b"\0", 1)[0].decode(errors="replace")
                if text:
                    detail = f"{detail}: {text}"
            tlv += (tlen + 3) & ~3
    return err, detail


def _messages(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    off = 0
    while off + 16 <= len(data):
        length, kind, flags, seq, _pid = struct.unpack_from("IHHII", data, off)
        if length < 16:
            return
        yield off, length, kind, flags, seq
        off += (length + 3) & ~3


def send_batch(sock: socket.socket, items: list[tuple[Step, bytes]]) -> None:
    """Send ``items`` in as few datagrams as fit; raise :class:`NetlinkStepError` for the first refusal.

    Every message is acked (even after a failure the kernel goes on with the rest, which the
    rollback then removes with the namespace), so we always read all acks before returning.
    """
    first_error: NetlinkStepError | None = None
    seq = 0
    pos = 0
    while pos < len(items):
        chunk: list[bytes] = []
        by_seq: dict[int, Step] = {}
        size = 0
        while pos < len(items) and (not chunk or size + len(items[pos][1]) <= CHUNK):
            seq += 1
            step, raw = items[pos]
            chunk.append(_set_seq(raw, seq))
            by_seq[seq] = step
            size += len(raw)
            pos += 1
        sock.send(b"".join(chunk))
        while by_seq:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                pending = ", ".join(s.describe() for s in by_seq.values())
                raise NetlinkStepError(
                    next(iter(by_seq.values())),
                    errno_mod.ETIMEDOUT,
                    f"no answer from the kernel within {TIMEOUT:.0f}s for: {pending}",
                ) from None
            for off, length, kind, flags, mseq in _messages(data):
                if kind != NLMSG_ERROR or mseq not in by_seq:
                    continue
                step = by_seq.pop(mseq)
                err, detail = _parse_error(data, off, length, flags)
                if err and first_error is None:
                    first_error = NetlinkStepError(step, err, detail)
    if first_error is not None:
        raise first_error


@dataclass(frozen=True)
class LinkState:
    """What readiness needs to know of one interface."""

    index: int
    ifname: str
    up: bool
    carrier: bool
    operstate: str


_OPERSTATES = ["UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"]


IFLA_IFNAME = 3
IFLA_OPERSTATE = 16


def _link_state(data: bytes, off: int, length: int) -> LinkState:
    """The few fields readiness needs, read straight from the TLVs.

    pyroute2's full decode of a link message (~50 attributes) costs ~0.4 ms; readiness polls
    every link of every node, so it reads the ifinfomsg header and two attributes itself.
    """
    index, flags = struct.unpack_from("iI", data, off + 16 + 4)
    ifname, oper = "", 0
    pos, end = off + 16 + 16, off + length
    while pos + 4 <= end:
        alen, atype = struct.unpack_from("HH", data, pos)
        if alen < 4:
            break
        if atype == IFLA_IFNAME:
            ifname = data[pos + 4 : pos + alen].split(b"\0", 1)[0].decode()
        elif atype == IFLA_OPERSTATE:
            oper = data[pos + 4]
        pos += (alen + 3) & ~3
    return LinkState(
        index=index,
        ifname=ifname,
        up=bool(flags & IFF_UP),
        carrier=bool(flags & IFF_LOWER_UP),
        operstate=_OPERSTATES[oper] if oper < len(_OPERSTATES) else str(oper),
    )


def dump_links(sock: socket.socket) -> dict[int, LinkState]:
    """Every interface of the socket's namespace, by ifindex (one RTM_GETLINK dump)."""
    req = ifinfmsg()
    sock.send(_set_seq(_encode(req, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP), 1))
    out: dict[int, LinkState] = {}
    while True:
        data = sock.recv(1 << 16)
        for off, length, kind, _flags, _seq in _messages(data):
            if kind == NLMSG_DONE:
                return out
            if kind == NLMSG_ERROR:
                err, detail = _parse_error(data, off, length, 0)
                if err:
                    raise OSError(err, f"link dump: {detail}")
                continue
            state = _link_state(data, off, length)
            out[state.index] = state


def link_alias(sock: socket.socket, index: int) -> str | None:
    """The ifalias of interface ``index`` in the socket's namespace (None when unset)."""
    req = ifinfmsg()
    req["index"] = index
    sock.send(_set_seq(_encode(req, RTM_GETLINK, NLM_F_REQUEST), 1))
    data = sock.recv(1 << 16)
    for off, length, kind, _flags, _seq in _messages(data):
        if kind == NLMSG_ERROR:
            err, detail = _parse_error(data, off, length, 0)
            raise OSError(err, detail)
        msg = ifinfmsg(data[off : off + length])
        msg.decode()
        alias = msg.get_attr("IFLA_IFALIAS")
        return str(alias) if alias is not None else None
    return None


RTM_GETADDR = 22


def dump_addresses(sock: socket.socket) -> list[tuple[int, str, int]]:
    """Every address of the socket's namespace as (ifindex, address, prefixlen)."""
    req = ifaddrmsg()
    sock.send(_set_seq(_encode(req, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP), 1))
    out: list[tuple[int, str, int]] = []
    while True:
        data = sock.recv(1 << 16)
        for off, length, kind, _flags, _seq in _messages(data):
            if kind == NLMSG_DONE:
                return out
            if kind == NLMSG_ERROR:
                err, detail = _parse_error(data, off, length, 0)
                if err:
                    raise OSError(err, f"address dump: {detail}")
                continue
            msg = ifaddrmsg(data[off : off + length])
            msg.decode()
            addr = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            out.append((msg["index"], str(addr), msg["prefixlen"]))
