"""The one netlink layer: sockets inside a namespace, framing, acks with the kernel's own
error text, and the two link queries that run on every ``up`` and ``down``.

Messages are built and read with pyroute2's message classes (:mod:`netlab.apply.rtnl`,
:mod:`netlab.runtime.queries`); this module frames them. Every message goes through
:func:`exchange`, which sends a batch in as few datagrams as fit and reads every answer by
sequence number: a node's whole build phase is one datagram, and a single query is a batch of
one. pyroute2's own sockets wait for each request's answer before sending the next, which is
why the framing is here. Sockets are opened *inside* a lab's namespace.

What stays packed by hand here, and why: the framing's constants and the readers of
:func:`dump_links` and :func:`link_alias`, because importing any pyroute2 module loads the whole
library (a third of ``netlab down``'s time), and readiness reads every link of every node
several times while a lab comes up, where a full decode of each link costs more than the rest.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from netlab.runtime.netns import open_socket

# include/uapi/linux/netlink.h, rtnetlink.h
NETLINK_ROUTE = 0
NETLINK_NETFILTER = 12
NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # acks echo only the request's header
NETLINK_EXT_ACK = 11
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_ACK_TLVS = 0x200
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_GETLINK = 18
NLMSGERR_ATTR_MSG = 1  # the extended ack's text
HEADER = struct.Struct("IHHII")  # nlmsghdr: length, type, flags, seq, pid
IFINFOMSG = struct.Struct("BxHiII")  # family, pad, type, index, flags, change
TIMEOUT = 10.0
#: the most bytes one datagram of a batch carries (the kernel's receive buffer takes far more)
CHUNK = 32 * 1024

__all__ = [
    "NETLINK_GENERIC",
    "NETLINK_NETFILTER",
    "NETLINK_ROUTE",
    "NLMSG_ERROR",
    "LinkState",
    "dump_links",
    "exchange",
    "link_alias",
    "messages",
    "open_route_socket",
    "parse_error",
    "request",
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


def _getlink(index: int, flags: int) -> bytes:
    """RTM_GETLINK for interface ``index`` (0 with NLM_F_DUMP: all of them)."""
    body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)
    return HEADER.pack(HEADER.size + len(body), RTM_GETLINK, flags, 0, 0) + body


def _attributes(raw: bytes, *wanted: int) -> dict[int, bytes]:
    """The ``wanted`` attributes of a link message, first of each kind; stops once it has them
    all (the name and the state come before the statistics)."""
    found: dict[int, bytes] = {}
    pos = HEADER.size + IFINFOMSG.size
    end = min(len(raw), HEADER.unpack_from(raw)[0])
    while pos + 4 <= end and len(found) < len(wanted):
        alen, atype = struct.unpack_from("HH", raw, pos)
        if alen < 4:
            break
        if atype in wanted:
            found.setdefault(atype, raw[pos + 4 : pos + alen])
        pos += (alen + 3) & ~3
    return found


def _link_state(raw: bytes) -> LinkState:
    """The few fields readiness needs."""
    _family, _type, index, flags, _change = IFINFOMSG.unpack_from(raw, HEADER.size)
    attrs = _attributes(raw, IFLA_IFNAME, IFLA_OPERSTATE)
    oper = attrs.get(IFLA_OPERSTATE, b"\0")[0]
    return LinkState(
        index=index,
        ifname=attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(),
        up=bool(flags & IFF_UP),
        carrier=bool(flags & IFF_LOWER_UP),
        operstate=_OPERSTATES[oper] if oper < len(_OPERSTATES) else str(oper),
    )


def dump_links(sock: socket.socket) -> dict[int, LinkState]:
    """Every interface of the socket's namespace, by ifindex (one RTM_GETLINK dump)."""
    states = (_link_state(raw) for raw in request(sock, _getlink(0, NLM_F_REQUEST | NLM_F_DUMP)))
    return {state.index: state for state in states}


def link_alias(sock: socket.socket, index: int) -> str | None:
    """The ifalias of interface ``index`` in the socket's namespace (None when unset)."""
    for raw in request(sock, _getlink(index, NLM_F_REQUEST)):
        alias = _attributes(raw, IFLA_IFALIAS).get(IFLA_IFALIAS)
        return alias.split(b"\0", 1)[0].decode(errors="replace") if alias is not None else None
    return None
