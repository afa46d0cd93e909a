"""The netlink layer's framing and parsers, on bytes made here: no socket, no root."""

from __future__ import annotations

import errno
import struct

from pyroute2 import netlink as pr_netlink
from pyroute2.netlink import rtnl as pr_rtnl
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from netlab.runtime import netlink


def header(length: int, kind: int, flags: int = 0, seq: int = 0) -> bytes:
    return struct.pack("IHHII", length, kind, flags, seq, 0)


def error_ack(err: int, seq: int, text: str | None = None) -> bytes:
    """An NLMSG_ERROR as the kernel sends it with NETLINK_CAP_ACK (and extended ack text)."""
    body = struct.pack("i", -err) + header(16, 16, 0, seq)
    flags = 0
    if text is not None:
        payload = text.encode() + b"\0"
        attr = struct.pack("HH", 4 + len(payload), 1) + payload
        body += attr + b"\0" * (-len(attr) % 4)
        flags = netlink.NLM_F_ACK_TLVS
    return header(16 + len(body), netlink.NLMSG_ERROR, flags, seq) + body


def test_messages_walk_a_datagram_by_aligned_lengths() -> None:
    data = error_ack(0, 1) + error_ack(errno.EEXIST, 2, "File exists here")
    found = list(netlink.messages(data))
    assert [(kind, seq) for _off, _len, kind, _flags, seq in found] == [
        (netlink.NLMSG_ERROR, 1),
        (netlink.NLMSG_ERROR, 2),
    ]
    assert found[1][0] == len(error_ack(0, 1))


def test_an_error_ack_carries_the_kernels_words() -> None:
    data = error_ack(errno.EOPNOTSUPP, 7, "Unknown device type")
    ((off, length, _kind, flags, _seq),) = netlink.messages(data)
    err, detail = netlink.parse_error(data, off, length, flags)
    assert err == errno.EOPNOTSUPP
    assert detail == "Operation not supported: Unknown device type"


def test_a_plain_ack_is_errno_zero() -> None:
    data = error_ack(0, 3)
    ((off, length, _kind, flags, _seq),) = netlink.messages(data)
    assert netlink.parse_error(data, off, length, flags) == (0, "")


def test_set_seq_changes_only_the_sequence_number() -> None:
    raw = header(16, netlink.RTM_GETLINK, netlink.NLM_F_REQUEST, 0)
    assert netlink.set_seq(raw, 42) == header(16, netlink.RTM_GETLINK, netlink.NLM_F_REQUEST, 42)


def test_a_link_message_gives_its_state() -> None:
    name = b"calmveth1\0"
    attrs = struct.pack("HH", 4 + len(name), 3) + name
    attrs += b"\0" * (-len(attrs) % 4)
    attrs += struct.pack("HHB3x", 5, 16, 6)  # IFLA_OPERSTATE: UP
    ifinfo = struct.pack("BxHiII", 0, 1, 101, 0x1 | 0x10000, 0)  # up, lower up
    raw = header(16 + len(ifinfo) + len(attrs), 16) + ifinfo + attrs
    state = netlink._link_state(raw)
    assert state == netlink.LinkState(index=101, ifname="calmveth1", up=True, carrier=True, operstate="UP")


def test_a_short_length_ends_the_walk() -> None:
    assert list(netlink.messages(header(8, netlink.NLMSG_DONE) + b"\0" * 8)) == []


def test_the_framings_own_constants_are_pyroute2s() -> None:
    names = [
        "NETLINK_ROUTE", "NETLINK_NETFILTER", "NETLINK_GENERIC", "SOL_NETLINK", "NETLINK_EXT_ACK", "NLM_F_REQUEST",
        "NLM_F_ACK", "NLM_F_ACK_TLVS", "NLM_F_DUMP", "NLMSG_ERROR", "NLMSG_DONE",
    ]  # fmt: skip
    assert {n: getattr(netlink, n) for n in names} == {n: getattr(pr_netlink, n) for n in names}
    assert netlink.RTM_GETLINK == pr_rtnl.RTM_GETLINK
    numbered = [name for name, _kind in ifinfmsg.nla_map]  # pyroute2 numbers them by position
    wanted = ("IFLA_IFNAME", "IFLA_OPERSTATE", "IFLA_IFALIAS")
    assert tuple(numbered.index(n) for n in wanted) == (
        netlink.IFLA_IFNAME,
        netlink.IFLA_OPERSTATE,
        netlink.IFLA_IFALIAS,
    )


def test_the_link_requests_packed_here_read_as_pyroute2s() -> None:
    dump = ifinfmsg(netlink._getlink(0, netlink.NLM_F_REQUEST | netlink.NLM_F_DUMP))
    dump.decode()
    assert (dump["header"]["type"], dump["header"]["flags"], dump["index"]) == (18, 0x301, 0)
    one = ifinfmsg(netlink._getlink(7, netlink.NLM_F_REQUEST))
    one.decode()
    assert (one["header"]["flags"], one["index"], one["attrs"]) == (1, 7, [])


def test_a_link_alias_and_state_read_as_pyroute2_writes_them() -> None:
    msg = ifinfmsg()
    msg["index"], msg["flags"] = 1, 0x1
    msg["attrs"] = [("IFLA_IFNAME", "lo"), ("IFLA_OPERSTATE", "UP"), ("IFLA_IFALIAS", "netlab:bridge3")]
    msg["header"]["type"] = pr_rtnl.RTM_NEWLINK
    msg.encode()
    raw = bytes(msg.data)
    assert netlink._attributes(raw, netlink.IFLA_IFALIAS)[netlink.IFLA_IFALIAS].rstrip(b"\0") == b"netlab:bridge3"
    assert netlink._link_state(raw) == netlink.LinkState(1, "lo", up=True, carrier=False, operstate="UP")
