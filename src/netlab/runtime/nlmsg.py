"""rtnetlink requests packed with :mod:`struct`: the kernel's ABI, without a message library.

``netlab up`` of linear50 sends ~350 requests. Built and encoded through pyroute2's message
classes they cost ~80 ms of Python and ~35 ms of importing pyroute2, which was a fifth of the
whole ``up``; packed here they cost ~4 ms. The few answers run-time code reads (a link's alias,
addresses, a route, a generic-netlink family) are walked by :func:`parse_attributes`. The tests
pack every kind of step both ways and compare the bytes with pyroute2's, and decode answers
both ways, so the attribute numbers are checked against an independent source, not only
against the kernel headers they were copied from.

An attribute value is ``bytes`` (sent as is), ``str`` (NUL-terminated), a :class:`Nested`
list of attributes, or an :class:`Int`: the integer and its format (``u8``, ``u16``, ``u32``,
``be16``).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from typing import NamedTuple

HEADER = struct.Struct("IHHII")  # nlmsghdr: length, type, flags, seq, pid
IFINFOMSG = struct.Struct("BxHiII")  # family, pad, type, index, flags, change
IFADDRMSG = struct.Struct("BBBBI")  # family, prefixlen, flags, scope, index
NFGENMSG = struct.Struct("BBH")  # family, version, res_id (big-endian in the kernel; 0 here)
RTMSG = struct.Struct("BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
RTATTR = struct.Struct("HH")  # length, type

u8 = struct.Struct("B")
u16 = struct.Struct("H")
u32 = struct.Struct("I")
be16 = struct.Struct(">H")


class Int(NamedTuple):
    """An integer attribute and how it is packed."""

    value: int
    form: struct.Struct


class Nested(NamedTuple):
    """An attribute whose payload is ``head`` (a fixed header, may be empty) then attributes."""

    attrs: Sequence[Attr]
    head: bytes = b""


Value = bytes | str | Int | Nested
Attr = tuple[int, Value]


def _payload(value: Value) -> bytes:
    if isinstance(value, Int):
        return value.form.pack(value.value)
    if isinstance(value, Nested):
        return value.head + attributes(value.attrs)
    if isinstance(value, str):
        return value.encode() + b"\0"
    return value


def attributes(attrs: Sequence[Attr]) -> bytes:
    """Attributes as TLVs, each padded to 4 bytes."""
    out = bytearray()
    for kind, value in attrs:
        payload = _payload(value)
        out += RTATTR.pack(RTATTR.size + len(payload), kind)
        out += payload
        out += b"\0" * (-len(payload) % 4)
    return bytes(out)


def message(kind: int, flags: int, head: bytes, attrs: Sequence[Attr] = ()) -> bytes:
    """One netlink message (sequence 0: the sender numbers it, see :func:`set_seq`)."""
    body = head + attributes(attrs)
    return HEADER.pack(HEADER.size + len(body), kind, flags, 0, 0) + body


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0, family: int = socket.AF_UNSPEC) -> bytes:
    """``struct ifinfomsg``."""
    return IFINFOMSG.pack(family, 0, index, flags, change)


def ifaddrmsg(family: int, prefixlen: int, index: int, flags: int = 0, scope: int = 0) -> bytes:
    """``struct ifaddrmsg``."""
    return IFADDRMSG.pack(family, prefixlen, flags, scope, index)


def rtmsg(family: int, dst_len: int, *, table: int, protocol: int, scope: int, kind: int) -> bytes:
    """``struct rtmsg`` (no source prefix, tos or flags: a lab's routes have none)."""
    return RTMSG.pack(family, dst_len, 0, 0, table, protocol, scope, kind, 0)


def parse_attributes(raw: bytes, offset: int) -> dict[int, bytes]:
    """The attributes of one message from ``offset`` (after its fixed header) as kind -> payload;
    the first of a kind wins, nested ones are left packed (:func:`parse_nested` opens one)."""
    end = min(len(raw), HEADER.unpack_from(raw)[0])
    return parse_nested(raw[offset:end])


def parse_nested(payload: bytes) -> dict[int, bytes]:
    """The attributes packed one after another in ``payload`` (a nested attribute's, or a
    message's past its headers) as kind -> payload; the first of a kind wins."""
    out: dict[int, bytes] = {}
    offset = 0
    while offset + RTATTR.size <= len(payload):
        length, kind = RTATTR.unpack_from(payload, offset)
        if length < RTATTR.size:
            break
        out.setdefault(kind & 0x3FFF, payload[offset + RTATTR.size : offset + length])  # without NLA_F_NESTED/BYTEORDER
        offset += (length + 3) & ~3
    return out


def text(value: bytes | None) -> str:
    """A NUL-terminated string attribute as text ('' when absent)."""
    return (value or b"").split(b"\0", 1)[0].decode(errors="replace")


def mac(text: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` as the 6 bytes of IFLA_ADDRESS."""
    return bytes(int(part, 16) for part in text.split(":"))


def ip(text: str) -> bytes:
    """An IPv4 or IPv6 address in network order."""
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
