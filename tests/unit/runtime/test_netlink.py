"""The netlink layer's framing and parsers, on bytes made here: no socket, no root."""

from __future__ import annotations

import errno
import socket
import struct
from typing import Any

from pyroute2 import netlink as pr_netlink
from pyroute2.netlink import rtnl as pr_rtnl
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.runtime import netlink, nlmsg
from tests.unit.apply.pyroute2_reference import encode_message as encode


def header(length: int, kind: int, flags: int = 0, seq: int = 0) -> bytes:
    return struct.pack("IHHII", length, kind, flags, seq, 0)


def error_ack(err: int, seq: int, text: str | None = None) -> bytes:
    """An NLMSG_ERROR as the kernel sends it with NETLINK_CAP_ACK (and extended ack text)."""
    body = struct.pack("i", -err) + header(16, netlink.RTM_NEWLINK, 0, seq)
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


def test_the_kernels_constants_are_pyroute2s() -> None:
    names = [
        "NETLINK_ROUTE", "NETLINK_GENERIC", "SOL_NETLINK", "NETLINK_EXT_ACK", "NLM_F_REQUEST", "NLM_F_ACK",
        "NLM_F_ACK_TLVS", "NLM_F_DUMP", "NLM_F_CREATE", "NLM_F_EXCL", "NLMSG_ERROR", "NLMSG_DONE",
    ]  # fmt: skip
    assert {n: getattr(netlink, n) for n in names} == {n: getattr(pr_netlink, n) for n in names}
    rtm = ["RTM_NEWLINK", "RTM_GETLINK", "RTM_SETLINK", "RTM_NEWADDR", "RTM_GETADDR", "RTM_NEWROUTE", "RTM_GETROUTE"]
    assert {n: getattr(netlink, n) for n in rtm} == {n: getattr(pr_rtnl, n) for n in rtm}
    assert (netlink.GENL_ID_CTRL, netlink.CTRL_CMD_GETFAMILY) == (
        pr_netlink.GENL_ID_CTRL,
        pr_netlink.CTRL_CMD_GETFAMILY,
    )


def test_a_link_dump_request_is_pyroute2s() -> None:
    packed = nlmsg.message(netlink.RTM_GETLINK, netlink.NLM_F_REQUEST | netlink.NLM_F_DUMP, nlmsg.ifinfomsg())
    assert packed == encode(ifinfmsg(), netlink.RTM_GETLINK, netlink.NLM_F_REQUEST | netlink.NLM_F_DUMP)


def _answer(msg: Any, kind: int) -> bytes:
    """What the kernel would send: pyroute2's encoding of ``msg`` as an answer."""
    return encode(msg, kind, 0)


def test_an_address_answer_reads_as_pyroute2_writes_it() -> None:
    msg = ifaddrmsg()
    msg["family"], msg["prefixlen"], msg["index"] = socket.AF_INET6, 64, 7
    msg["attrs"] = [("IFA_ADDRESS", "2001:db8::1"), ("IFA_LABEL", "calmveth1")]
    raw = _answer(msg, netlink.RTM_NEWADDR)
    attrs = nlmsg.parse_attributes(raw, 16 + nlmsg.IFADDRMSG.size)
    assert socket.inet_ntop(socket.AF_INET6, attrs[netlink.IFA_ADDRESS]) == "2001:db8::1"
    assert nlmsg.IFADDRMSG.unpack_from(raw, 16)[1] == 64


def test_a_route_answer_reads_as_pyroute2_writes_it() -> None:
    msg = rtmsg()
    msg["family"], msg["dst_len"] = socket.AF_INET, 32
    msg["attrs"] = [
        ("RTA_DST", "203.0.113.9"),
        ("RTA_OIF", 4),
        ("RTA_GATEWAY", "198.51.100.1"),
        ("RTA_PREFSRC", "198.51.100.7"),
    ]
    attrs = nlmsg.parse_attributes(_answer(msg, netlink.RTM_NEWROUTE), 16 + nlmsg.RTMSG.size)
    assert nlmsg.u32.unpack(attrs[netlink.RTA_OIF])[0] == 4
    assert socket.inet_ntop(socket.AF_INET, attrs[netlink.RTA_GATEWAY]) == "198.51.100.1"
    assert socket.inet_ntop(socket.AF_INET, attrs[netlink.RTA_PREFSRC]) == "198.51.100.7"


def test_a_link_alias_reads_as_pyroute2_writes_it() -> None:
    msg = ifinfmsg()
    msg["index"] = 1
    msg["attrs"] = [("IFLA_IFNAME", "lo"), ("IFLA_IFALIAS", "netlab:bridge3")]
    attrs = nlmsg.parse_attributes(_answer(msg, netlink.RTM_NEWLINK), 16 + nlmsg.IFINFOMSG.size)
    assert attrs[netlink.IFLA_IFALIAS].rstrip(b"\0") == b"netlab:bridge3"


def test_a_family_request_is_pyroute2s() -> None:
    msg = pr_netlink.ctrlmsg()
    msg["cmd"], msg["version"] = pr_netlink.CTRL_CMD_GETFAMILY, 1
    msg["attrs"] = [("CTRL_ATTR_FAMILY_NAME", "NET_DM")]
    head = netlink.GENLMSGHDR.pack(netlink.CTRL_CMD_GETFAMILY, 1, 0)
    ours = nlmsg.message(
        netlink.GENL_ID_CTRL,
        netlink.NLM_F_REQUEST | netlink.NLM_F_ACK,
        head,
        [(netlink.CTRL_ATTR_FAMILY_NAME, "NET_DM")],
    )
    assert ours == encode(msg, netlink.GENL_ID_CTRL, netlink.NLM_F_REQUEST | netlink.NLM_F_ACK)
