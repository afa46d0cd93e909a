"""The one netlink layer: sockets inside a namespace, framing, acks with the kernel's own
error text, dumps, and the few link and address queries run-time code asks.

Messages are packed and their attributes read by :mod:`netlab.runtime.nlmsg` (struct, the
kernel's ABI; the tests compare every kind with pyroute2's encoding and decoding), so nothing
at run time imports a netlink library: pyroute2's package import alone cost ~200 ms. Every
message goes through :func:`exchange`, which sends a batch in as few datagrams as fit and reads
every answer by sequence number: a node's whole build phase is one datagram (see
:mod:`netlab.apply.rtnl`), and a single query is a batch of one. Sockets are opened *inside* a
lab's namespace.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

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
#: the most bytes one datagram of a batch carries (the kernel's receive buffer takes far more)
CHUNK = 32 * 1024

__all__ = [
    "NETLINK_GENERIC",
    "NETLINK_ROUTE",
    "NLMSG_ERROR",
    "Interface",
    "LinkState",
    "dump_addresses",
    "dump_interfaces",
    "dump_links",
    "exchange",
    "genl_family_exists",
    "link_alias",
    "messages",
    "nft_chains",
    "nft_table_families",
    "nft_tables",
    "nsid_of",
    "open_nftrace",
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


class Answer:
    """What the kernel said to one message of an :func:`exchange`: the messages it answered with
    (a dump's entries, a query's reply) and its verdict (errno 0: done)."""

    __slots__ = ("detail", "errno", "payloads")

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.errno = 0
        self.detail = ""


class NoAnswerError(TimeoutError):
    """The kernel did not answer every message within :data:`TIMEOUT`; ``pending`` are the
    indexes (in the list given to :func:`exchange`) of those it left unanswered."""

    def __init__(self, pending: list[int]) -> None:
        super().__init__(f"no answer from the kernel within {TIMEOUT:.0f}s")
        self.pending = pending


def exchange(sock: socket.socket, raws: Sequence[bytes], *, chunk: int = CHUNK) -> list[Answer]:
    """Send ``raws`` in as few datagrams as fit (``chunk`` bytes) and read until the kernel has
    answered each: its ack or error, the end of its dump, or (a query without ``NLM_F_ACK``) its
    reply. The one way netlab talks netlink: a single request is a batch of one.

    The kernel goes on after a refused message, so every answer is read before returning; each
    :class:`Answer` carries its own errno, for the caller to word."""
    answers = [Answer() for _ in raws]
    pos = 0
    while pos < len(raws):
        waiting: dict[int, int] = {}  # seq -> index
        datagram = bytearray()
        while pos < len(raws) and (not datagram or len(datagram) + len(raws[pos]) <= chunk):
            waiting[pos + 1] = pos
            datagram += set_seq(raws[pos], pos + 1)
            pos += 1
        sock.send(bytes(datagram))
        while waiting:
            try:
                data = sock.recv(1 << 16)
            except TimeoutError:
                raise NoAnswerError(sorted(waiting.values())) from None
            for off, length, kind, flags, seq in messages(data):
                index = waiting.get(seq)
                if index is None:
                    continue  # an answer to a message of an earlier exchange
                answer, sent_flags = answers[index], HEADER.unpack_from(raws[index])[2]
                if kind == NLMSG_ERROR:
                    answer.errno, answer.detail = parse_error(data, off, length, flags)
                elif kind != NLMSG_DONE:
                    answer.payloads.append(data[off : off + length])
                    if sent_flags & NLM_F_DUMP == NLM_F_DUMP or sent_flags & NLM_F_ACK:
                        continue  # more to come: the dump's end, or the ack
                del waiting[seq]
    return answers


def request(sock: socket.socket, raw: bytes) -> list[bytes]:
    """One message's answers (a dump's entries, a query's reply, nothing for an ack); raise
    :class:`OSError` with the kernel's words when it refuses."""
    (answer,) = exchange(sock, [raw])
    if answer.errno:
        raise OSError(answer.errno, answer.detail)
    return answer.payloads


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
IFLA_IFALIAS = 20
IFA_ADDRESS = 1
IFA_LOCAL = 2
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PREFSRC = 7
# generic netlink's controller (include/uapi/linux/genetlink.h)
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_NAME = 2
GENLMSGHDR = struct.Struct("BBH")  # cmd, version, reserved


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
    for raw in request(sock, nlmsg.message(RTM_GETLINK, NLM_F_REQUEST, nlmsg.ifinfomsg(index))):
        alias = nlmsg.parse_attributes(raw, HEADER.size + nlmsg.IFINFOMSG.size).get(IFLA_IFALIAS)
        return alias.split(b"\0", 1)[0].decode(errors="replace") if alias is not None else None
    return None


def dump_addresses(sock: socket.socket) -> list[tuple[int, str, int]]:
    """Every address of the socket's namespace as (ifindex, address, prefixlen)."""
    out: list[tuple[int, str, int]] = []
    head = nlmsg.ifaddrmsg(socket.AF_UNSPEC, 0, 0)
    for raw in request(sock, nlmsg.message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, head)):
        family, prefixlen, _flags, _scope, index = nlmsg.IFADDRMSG.unpack_from(raw, HEADER.size)
        attrs = nlmsg.parse_attributes(raw, HEADER.size + nlmsg.IFADDRMSG.size)
        packed = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
        if packed is not None:
            out.append((index, socket.inet_ntop(family, packed), prefixlen))
    return out


def route_get(sock: socket.socket, address: str) -> tuple[int, str | None, str | None]:
    """How the socket's namespace reaches ``address`` (``ip route get``): (output ifindex,
    gateway or None, preferred source or None); OSError when it has no route."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    head = nlmsg.RTMSG.pack(family, 128 if family == socket.AF_INET6 else 32, 0, 0, 0, 0, 0, 0, 0)
    for raw in request(sock, nlmsg.message(RTM_GETROUTE, NLM_F_REQUEST, head, [(RTA_DST, nlmsg.ip(address))])):
        got = raw[HEADER.size]
        attrs = nlmsg.parse_attributes(raw, HEADER.size + nlmsg.RTMSG.size)

        def text(kind: int, attrs: dict[int, bytes] = attrs, got: int = got) -> str | None:
            value = attrs.get(kind)
            return socket.inet_ntop(got, value) if value is not None else None

        oif = attrs.get(RTA_OIF)
        return (nlmsg.u32.unpack(oif)[0] if oif else 0), text(RTA_GATEWAY), text(RTA_PREFSRC)
    raise OSError(0, f"no answer for a route to {address}")


NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETTABLE = 1
NFT_MSG_TRACE = 17
NFT_MSG_GETCHAIN = 4
NFTA_TABLE_NAME = 1
NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME = 1, 3
NFNLGRP_NFTRACE = 9
NETLINK_ADD_MEMBERSHIP = 1
SO_RCVBUFFORCE = 33
NFTRACE_BUFFER = 8 << 20


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


IFLA_LINK = 5
IFLA_STATS64 = 23
IFLA_LINK_NETNSID = 37
RTM_GETNSID = 90
NETNSA_NSID, NETNSA_FD = 1, 3
STATS64_DROPPED = struct.Struct("QQ")  # rx_dropped, tx_dropped: the 7th and 8th u64 of rtnl_link_stats64


def dump_interfaces(sock: socket.socket) -> list[Interface]:
    """Every interface of the socket's namespace with its peer and drop counters (one dump)."""
    answers = request(sock, nlmsg.message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, nlmsg.ifinfomsg()))
    out = []
    for raw in answers:
        index = struct.unpack_from("i", raw, 16 + 4)[0]
        attrs = nlmsg.parse_attributes(raw, 16 + 16)
        stats = attrs.get(IFLA_STATS64, b"")
        rx, tx = STATS64_DROPPED.unpack_from(stats, 48) if len(stats) >= 64 else (0, 0)
        link = attrs.get(IFLA_LINK)
        nsid = attrs.get(IFLA_LINK_NETNSID)
        out.append(
            Interface(
                index=index,
                ifname=nlmsg.text(attrs.get(IFLA_IFNAME)),
                link=struct.unpack("i", link[:4])[0] if link and len(link) >= 4 else None,
                link_netnsid=struct.unpack("i", nsid[:4])[0] if nsid and len(nsid) >= 4 else None,
                rx_dropped=rx,
                tx_dropped=tx,
            )
        )
    return out


def nsid_of(sock: socket.socket, netns_fd: int) -> int | None:
    """The id the socket's namespace has given the namespace behind ``netns_fd`` (how its
    veths name their peers' namespace), or None when it has given it none. Only asks: an id is
    never assigned by this (RTM_GETNSID, unlike RTM_NEWNSID)."""
    head = struct.pack("Bxxx", socket.AF_UNSPEC)  # rtgenmsg, aligned
    raw = nlmsg.message(RTM_GETNSID, NLM_F_REQUEST, head, [(NETNSA_FD, struct.pack("I", netns_fd))])
    try:
        answers = request(sock, raw)
    except OSError:
        return None
    for answer in answers:
        value = nlmsg.parse_attributes(answer, 16 + 4).get(NETNSA_NSID)
        if value and len(value) >= 4:
            nsid = struct.unpack("i", value[:4])[0]
            return nsid if nsid >= 0 else None
    return None


def _nft_dump(netns: str | None, kind: int) -> list[bytes]:
    """The answers of one nf_tables dump (tables, chains) in ``netns``; none where nf_tables is
    not loaded (the dump's subsystem then does not exist)."""
    body = nlmsg.NFGENMSG.pack(socket.AF_UNSPEC, 0, 0)
    raw = HEADER.pack(HEADER.size + len(body), (NFNL_SUBSYS_NFTABLES << 8) | kind, NLM_F_REQUEST | NLM_F_DUMP, 0, 0)
    with open_route_socket(netns, NETLINK_NETFILTER) as sock:
        try:
            return [a for a in request(sock, raw + body) if len(a) > HEADER.size]
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOENT, errno.EPROTONOSUPPORT, errno.EINVAL):
                return []
            raise


def _nft_names(answer: bytes, *kinds: int) -> list[str]:
    attrs = nlmsg.parse_attributes(answer, HEADER.size + nlmsg.NFGENMSG.size)
    return [nlmsg.text(attrs.get(k)) for k in kinds]


def nft_tables(netns: str | None) -> set[tuple[int, str]]:
    """The nftables tables in ``netns`` as (family, name); family as nfgenmsg has it
    (``socket.AF_INET``: ip, ``AF_INET6``: ip6, 1: inet, 3: arp, 5: netdev, 7: bridge). One dump,
    no program run."""
    return {(a[HEADER.size], _nft_names(a, NFTA_TABLE_NAME)[0]) for a in _nft_dump(netns, NFT_MSG_GETTABLE)}


def nft_chains(netns: str | None) -> set[tuple[int, str, str]]:
    """The nftables chains in ``netns`` as (family, table, chain), family as in :func:`nft_tables`."""
    out = set()
    for answer in _nft_dump(netns, NFT_MSG_GETCHAIN):
        table, chain = _nft_names(answer, NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME)
        out.add((answer[HEADER.size], table, chain))
    return out


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
    head = GENLMSGHDR.pack(CTRL_CMD_GETFAMILY, 1, 0)
    raw = nlmsg.message(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, head, [(CTRL_ATTR_FAMILY_NAME, name)])
    with open_route_socket(None, NETLINK_GENERIC) as sock:
        sock.settimeout(2)
        try:
            request(sock, raw)
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # the controller's answer for a family it does not have
                return False
            raise
    return True
