"""The one netlink layer: sockets inside a namespace, framing, acks with the kernel's own
error text, dumps, and the few link and address queries run-time code asks.

Requests a lab's build sends are packed by :mod:`netlab.runtime.nlmsg`; answers that need more
than a flag or two are decoded by pyroute2's classes (``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``,
``ctrlmsg``), imported by the functions that decode, so that ``netlab up`` and ``down``, which
only pack and read acks, never import pyroute2. What is ours is the transport: we frame and
send ourselves because a node's whole build phase fits in one datagram (see
:mod:`netlab.apply.rtnl`), and because a socket must be opened *inside* a lab's namespace.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from netlab.runtime import nlmsg
from netlab.runtime.netns import open_socket

# the kernel's constants (include/uapi/linux/netlink.h, rtnetlink.h); the tests check them
# against pyroute2's
NETLINK_ROUTE = 0
NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_ACK_TLVS = 0x200
NLM_F_DUMP = 0x300
NLM_F_CREATE = 0x400
NLM_F_EXCL = 0x200
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
NETLINK_CAP_ACK = 10  # (not among pyroute2's constants) acks echo only the request's header
NLMSGERR_ATTR_MSG = 1  # the extended ack's text
HEADER = nlmsg.HEADER
TIMEOUT = 10.0

__all__ = [
    "NETLINK_GENERIC",
    "NETLINK_ROUTE",
    "NLMSG_ERROR",
    "LinkState",
    "dump_addresses",
    "dump_links",
    "encode",
    "genl_family_exists",
    "link_alias",
    "messages",
    "nft_table_families",
    "open_route_socket",
    "parse_error",
    "request",
    "route_get",
    "set_seq",
]


def open_route_socket(netns: str | None, protocol: int = NETLINK_ROUTE) -> socket.socket:
    """A netlink socket (inside ``netns``; None: this namespace) that returns short acks with
    the kernel's error text."""
    if netns is None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, protocol)
    else:
        sock = open_socket(netns, socket.AF_NETLINK, socket.SOCK_DGRAM, protocol)
    sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    sock.bind((0, 0))
    sock.settimeout(TIMEOUT)
    return sock


def encode(msg: Any, kind: int, flags: int) -> bytes:
    """``msg`` (a pyroute2 message) as bytes, with its type and flags."""
    msg["header"]["type"] = kind
    msg["header"]["flags"] = flags
    msg.encode()
    return bytes(msg.data)


def set_seq(raw: bytes, seq: int) -> bytes:
    """``raw`` with its sequence number set (how an ack is matched to its message)."""
    return raw[:8] + struct.pack("I", seq) + raw[12:]


def messages(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """(offset, length, type, flags, seq) of each message in a datagram."""
    off = 0
    while off + HEADER.size <= len(data):
        length, kind, flags, seq, _pid = HEADER.unpack_from(data, off)
        if length < HEADER.size:
            return
        yield off, length, kind, flags, seq
        off += (length + 3) & ~3


def parse_error(data: bytes, off: int, length: int, flags: int) -> tuple[int, str]:
    """(errno, the kernel's words) of an NLMSG_ERROR; errno 0 is an ack."""
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


def request(sock: socket.socket, raw: bytes) -> list[bytes]:
    """Send one request (``NLM_F_DUMP`` or not) and collect its answers until the kernel is
    done; raise :class:`OSError` with the kernel's words when it refuses."""
    sock.send(set_seq(raw, 1))
    dumping = HEADER.unpack_from(raw)[2] & NLM_F_DUMP == NLM_F_DUMP
    out: list[bytes] = []
    while True:
        data = sock.recv(1 << 16)
        for off, length, kind, flags, _seq in messages(data):
            if kind == NLMSG_DONE:
                return out
            if kind == NLMSG_ERROR:
                err, detail = parse_error(data, off, length, flags)
                if err:
                    raise OSError(err, detail)
                return out  # the ack of a request that answers nothing
            out.append(data[off : off + length])
            if not dumping:
                return out


@dataclass(frozen=True)
class LinkState:
    """What readiness needs to know of one interface."""

    index: int
    ifname: str
    up: bool
    carrier: bool
    operstate: str


_OPERSTATES = ["UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"]
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
IFLA_IFNAME = 3
IFLA_OPERSTATE = 16


def _link_state(raw: bytes) -> LinkState:
    """The few fields readiness needs, read straight from the TLVs.

    pyroute2's full decode of a link message (~50 attributes) costs ~0.4 ms; readiness polls
    every link of every node, so it reads the ifinfomsg header and two attributes itself.
    """
    index, flags = struct.unpack_from("iI", raw, 16 + 4)
    ifname, oper = None, None
    pos = 16 + 16
    while pos + 4 <= len(raw) and (ifname is None or oper is None):  # both come first, before the stats
        alen, atype = struct.unpack_from("HH", raw, pos)
        if alen < 4:
            break
        if atype == IFLA_IFNAME:
            ifname = raw[pos + 4 : pos + alen].split(b"\0", 1)[0].decode()
        elif atype == IFLA_OPERSTATE:
            oper = raw[pos + 4]
        pos += (alen + 3) & ~3
    ifname, oper = ifname or "", oper or 0
    return LinkState(
        index=index,
        ifname=ifname,
        up=bool(flags & IFF_UP),
        carrier=bool(flags & IFF_LOWER_UP),
        operstate=_OPERSTATES[oper] if oper < len(_OPERSTATES) else str(oper),
    )


def dump_links(sock: socket.socket) -> dict[int, LinkState]:
    """Every interface of the socket's namespace, by ifindex (one RTM_GETLINK dump)."""
    answers = request(sock, nlmsg.message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, nlmsg.ifinfomsg()))
    states = (_link_state(raw) for raw in answers)
    return {state.index: state for state in states}


def link_alias(sock: socket.socket, index: int) -> str | None:
    """The ifalias of interface ``index`` in the socket's namespace (None when unset)."""
    from netlab.pyroute import ifinfmsg

    req = ifinfmsg()
    req["index"] = index
    for raw in request(sock, encode(req, RTM_GETLINK, NLM_F_REQUEST)):
        msg = ifinfmsg(raw)
        msg.decode()
        alias = msg.get_attr("IFLA_IFALIAS")
        return str(alias) if alias is not None else None
    return None


def dump_addresses(sock: socket.socket) -> list[tuple[int, str, int]]:
    """Every address of the socket's namespace as (ifindex, address, prefixlen)."""
    from netlab.pyroute import ifaddrmsg

    out: list[tuple[int, str, int]] = []
    for raw in request(sock, encode(ifaddrmsg(), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP)):
        msg = ifaddrmsg(raw)
        msg.decode()
        addr = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        out.append((msg["index"], str(addr), msg["prefixlen"]))
    return out


def route_get(sock: socket.socket, address: str) -> tuple[int, str | None, str | None]:
    """How the socket's namespace reaches ``address`` (``ip route get``): (output ifindex,
    gateway or None, preferred source or None); OSError when it has no route."""
    from netlab.pyroute import rtmsg

    version = 6 if ":" in address else 4
    req = rtmsg()
    req["family"] = socket.AF_INET6 if version == 6 else socket.AF_INET
    req["dst_len"] = 128 if version == 6 else 32
    req["attrs"] = [("RTA_DST", address)]
    for raw in request(sock, encode(req, RTM_GETROUTE, NLM_F_REQUEST)):
        msg = rtmsg(raw)
        msg.decode()
        return msg.get_attr("RTA_OIF"), msg.get_attr("RTA_GATEWAY"), msg.get_attr("RTA_PREFSRC")
    raise OSError(0, f"no answer for a route to {address}")


NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETTABLE = 1
NFGENMSG = struct.Struct("BBH")  # family, version, res_id (big-endian in the kernel; 0 here)


def nft_table_families(netns: str | None) -> set[int]:
    """The families (``socket.AF_INET``: ip, ``AF_INET6``: ip6, 1: inet, 7: bridge, 5: netdev) of
    the nftables tables in ``netns``: one dump, no program run. An empty set where nf_tables is
    not loaded (the dump's subsystem then does not exist)."""
    body = NFGENMSG.pack(socket.AF_UNSPEC, 0, 0)
    kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE
    raw = HEADER.pack(HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, 0, 0) + body
    with open_route_socket(netns, NETLINK_NETFILTER) as sock:
        try:
            answers = request(sock, raw)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOENT, errno.EPROTONOSUPPORT, errno.EINVAL):
                return set()
            raise
    return {a[HEADER.size] for a in answers if len(a) > HEADER.size}


def genl_family_exists(name: str) -> bool:
    """Does the generic-netlink controller know family ``name`` (NET_DM: dropwatch)?"""
    from netlab.pyroute import netlink

    msg = netlink.ctrlmsg()
    msg["cmd"] = netlink.CTRL_CMD_GETFAMILY
    msg["version"] = 1
    msg["attrs"] = [("CTRL_ATTR_FAMILY_NAME", name)]
    with open_route_socket(None, NETLINK_GENERIC) as sock:
        sock.settimeout(2)
        try:
            request(sock, encode(msg, netlink.GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK))
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # the controller's answer for a family it does not have
                return False
            raise
    return True
