"""Questions to the kernel over netlink, asked and answered with pyroute2's message classes:
a namespace's addresses, its route to an address, its interfaces with their veth peers and
drop counters, the ids it gave other namespaces, its nftables tables and chains, whether a
generic-netlink family exists, and the socket that hears nf_tables' rule traces.

Every question goes through :func:`netlab.runtime.netlink.exchange` on a socket opened inside
the namespace asked about; pyroute2 builds the request and reads the answer, so its attribute
tables (kept right across kernels by its maintainers) are the ones netlab relies on.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink import (
    CTRL_CMD_GETFAMILY,
    GENL_ID_CTRL,
    NETLINK_ADD_MEMBERSHIP,
    NETLINK_GENERIC,
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    SOL_NETLINK,
    ctrlmsg,
)
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES
from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_GETCHAIN, NFT_MSG_GETTABLE, nft_chain_msg, nft_table_msg
from pyroute2.netlink.rtnl import RTM_GETADDR, RTM_GETLINK, RTM_GETNSID, RTM_GETROUTE
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.nsidmsg import nsidmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.runtime.netlink import NETLINK_NETFILTER, open_route_socket, request
from netlab.runtime.netns import open_socket

NFNLGRP_NFTRACE = 9
SO_RCVBUFFORCE = 33
NFTRACE_BUFFER = 8 << 20


def _ask(sock: socket.socket, msg: Any, kind: int, flags: int, answer: type[Any]) -> list[Any]:
    """Send pyroute2 message ``msg`` as ``kind``; the answers decoded as ``answer`` messages."""
    msg["header"]["type"] = kind
    msg["header"]["flags"] = flags
    msg.encode()
    out = []
    for raw in request(sock, bytes(msg.data)):
        decoded = answer(raw)
        decoded.decode()
        out.append(decoded)
    return out


def dump_addresses(sock: socket.socket) -> list[tuple[int, str, int]]:
    """Every address of the socket's namespace as (ifindex, address, prefixlen)."""
    out: list[tuple[int, str, int]] = []
    for msg in _ask(sock, ifaddrmsg(), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, ifaddrmsg):
        address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if address is not None:
            out.append((msg["index"], address, msg["prefixlen"]))
    return out


def route_get(sock: socket.socket, address: str) -> tuple[int, str | None, str | None]:
    """How the socket's namespace reaches ``address`` (``ip route get``): (output ifindex,
    gateway or None, preferred source or None); OSError when it has no route."""
    msg = rtmsg()
    six = ":" in address
    msg["family"] = socket.AF_INET6 if six else socket.AF_INET
    msg["dst_len"] = 128 if six else 32
    msg["attrs"] = [("RTA_DST", address)]
    for answer in _ask(sock, msg, RTM_GETROUTE, NLM_F_REQUEST, rtmsg):
        return answer.get_attr("RTA_OIF") or 0, answer.get_attr("RTA_GATEWAY"), answer.get_attr("RTA_PREFSRC")
    raise OSError(0, f"no answer for a route to {address}")


@dataclass(frozen=True)
class Interface:
    """An interface as a whole-machine trace needs it: its name, where its veth peer is, and
    its drop counters."""

    index: int
    ifname: str
    #: the peer's ifindex (IFLA_LINK) and the peer's namespace as this one numbers it
    #: (IFLA_LINK_NETNSID); None when the kernel gives none (not a veth, or the same namespace)
    link: int | None
    link_netnsid: int | None
    rx_dropped: int
    tx_dropped: int


def dump_interfaces(sock: socket.socket) -> list[Interface]:
    """Every interface of the socket's namespace with its peer and drop counters (one dump)."""
    out = []
    for msg in _ask(sock, ifinfmsg(), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, ifinfmsg):
        stats = msg.get_attr("IFLA_STATS64") or {}
        out.append(
            Interface(
                index=msg["index"],
                ifname=msg.get_attr("IFLA_IFNAME") or "",
                link=msg.get_attr("IFLA_LINK"),
                link_netnsid=msg.get_attr("IFLA_LINK_NETNSID"),
                rx_dropped=stats.get("rx_dropped", 0),
                tx_dropped=stats.get("tx_dropped", 0),
            )
        )
    return out


def nsid_of(sock: socket.socket, netns_fd: int) -> int | None:
    """The id the socket's namespace has given the namespace behind ``netns_fd`` (how its
    veths name their peers' namespace), or None when it has given it none. Only asks: an id is
    never assigned by this (RTM_GETNSID, unlike RTM_NEWNSID)."""
    msg = nsidmsg()
    msg["attrs"] = [("NETNSA_FD", netns_fd)]
    try:
        answers = _ask(sock, msg, RTM_GETNSID, NLM_F_REQUEST, nsidmsg)
    except OSError:
        return None
    for answer in answers:
        nsid = answer.get_attr("NETNSA_NSID")
        if nsid is not None:
            signed = nsid - (1 << 32) if nsid >= 1 << 31 else nsid  # NETNSA_NSID_NOT_ASSIGNED is -1
            return signed if signed >= 0 else None
    return None


def nft_dump(netns: str | None, kind: int, answer: type[Any], family: int = 0) -> list[Any]:
    """The answers of one nf_tables dump (tables, chains, rules) in ``netns``, of one table
    family (0: all); none where nf_tables is not loaded (the dump's subsystem then does not
    exist)."""
    msg = answer()
    msg["nfgen_family"] = family
    with open_route_socket(netns, NETLINK_NETFILTER) as sock:
        try:
            return _ask(sock, msg, (NFNL_SUBSYS_NFTABLES << 8) | kind, NLM_F_REQUEST | NLM_F_DUMP, answer)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOENT, errno.EPROTONOSUPPORT, errno.EINVAL):
                return []
            raise


def nft_tables(netns: str | None) -> set[tuple[int, str]]:
    """The nftables tables in ``netns`` as (family, name); family as nfgenmsg has it
    (``socket.AF_INET``: ip, ``AF_INET6``: ip6, 1: inet, 3: arp, 5: netdev, 7: bridge). One dump,
    no program run."""
    return {
        (m["nfgen_family"], m.get_attr("NFTA_TABLE_NAME")) for m in nft_dump(netns, NFT_MSG_GETTABLE, nft_table_msg)
    }


def nft_chains(netns: str | None) -> set[tuple[int, str, str]]:
    """The nftables chains in ``netns`` as (family, table, chain), family as in :func:`nft_tables`."""
    return {
        (m["nfgen_family"], m.get_attr("NFTA_CHAIN_TABLE"), m.get_attr("NFTA_CHAIN_NAME"))
        for m in nft_dump(netns, NFT_MSG_GETCHAIN, nft_chain_msg)
    }


def nft_table_families(netns: str | None) -> set[int]:
    """The families of the nftables tables in ``netns`` (see :func:`nft_tables`)."""
    return {family for family, _name in nft_tables(netns)}


def open_nftrace(netns: str) -> socket.socket:
    """A non-blocking socket in ``netns`` that receives nf_tables' rule traces (NFT_MSG_TRACE,
    multicast to NFNLGRP_NFTRACE) of packets marked with ``meta nftrace set 1`` there. Its
    buffer is forced large (root): a burst of traced packets must not overflow it."""
    sock = open_socket(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, NFTRACE_BUFFER)
        sock.bind((0, 0))
        sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTRACE)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def genl_family_exists(name: str) -> bool:
    """Does the generic-netlink controller know family ``name`` (NET_DM: dropwatch)?"""
    msg = ctrlmsg()
    msg["cmd"], msg["version"] = CTRL_CMD_GETFAMILY, 1
    msg["attrs"] = [("CTRL_ATTR_FAMILY_NAME", name)]
    with open_route_socket(None, NETLINK_GENERIC) as sock:
        sock.settimeout(2)
        try:
            _ask(sock, msg, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, ctrlmsg)
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # the controller's answer for a family it does not have
                return False
            raise
    return True
