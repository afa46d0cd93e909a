"""ICMP echo that waits for its replies, from a node of a lab: ping's own summary, in Python.

A burst of injected echo requests is not N pings: the kernel's selftests (br_netfilter.sh, for
one) depend on each request being answered before the next, and on a reply's absence being
seen as a loss. Here one raw ICMP (or ICMPv6) socket made inside the node sends a request every
``interval`` seconds and matches replies by identifier and sequence, so the result says what
ping says: sent, received, loss, and the round-trip times.

The source address is the one the node's routing picks (it is a normal socket of the node); a
destination may be a broadcast address (``SO_BROADCAST`` is set), in which case every host that
answers counts once per request.
"""

from __future__ import annotations

import ipaddress
import secrets
import select
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from scapy.layers.inet import ICMP
from scapy.layers.inet6 import ICMPv6EchoRequest
from scapy.packet import Raw

from netlab.errors import NetlabError
from netlab.lab import Lab
from netlab.runtime.netns import open_socket

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}


@dataclass(frozen=True)
class PingResult:
    """What ``ping -c COUNT`` would print at its end."""

    node: str
    dst: str
    sent: int
    received: int
    rtts_ms: tuple[float, ...]
    seconds: float

    @property
    def loss(self) -> float:
        """Lost requests, in percent (a broadcast ping may answer more than it asked)."""
        return max(0.0, 100.0 * (self.sent - self.received) / self.sent) if self.sent else 0.0

    def summary(self) -> str:
        """ping's two summary lines."""
        head = (
            f"{self.sent} packets transmitted, {self.received} received, {self.loss:.0f}% packet loss,"
            f" time {self.seconds * 1000:.0f}ms"
        )
        if not self.rtts_ms:
            return head
        low, high = min(self.rtts_ms), max(self.rtts_ms)
        avg = sum(self.rtts_ms) / len(self.rtts_ms)
        return f"{head}\nrtt min/avg/max = {low:.3f}/{avg:.3f}/{high:.3f} ms"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "node": self.node,
            "dst": self.dst,
            "sent": self.sent,
            "received": self.received,
            "loss_percent": round(self.loss, 1),
            "rtts_ms": [round(r, 3) for r in self.rtts_ms],
            "seconds": round(self.seconds, 3),
        }


def request(version: int, ident: int, seq: int, size: int) -> bytes:
    """One echo request (scapy fills in ICMP's checksum; ICMPv6's is the kernel's to fill in,
    it needs the addresses)."""
    payload = struct.pack("!d", time.monotonic()) + bytes(max(0, size - 8))
    if version == 6:
        return bytes(ICMPv6EchoRequest(id=ident, seq=seq, data=payload, cksum=0))
    return bytes(ICMP(type=ECHO_REQUEST[4], id=ident, seq=seq) / Raw(payload))


def reply_of(version: int, packet: bytes, ident: int) -> int | None:
    """The sequence number of an echo reply to us, else None (a raw IPv4 socket hands over the
    IP header too; an ICMPv6 one only the message)."""
    if version == 4:
        if len(packet) < 20:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < 8:
        return None
    kind, _code, _sum, their_id, seq = struct.unpack_from("!BBHHH", packet)
    return seq if kind == ECHO_REPLY[version] and their_id == ident else None


def ping(
    lab: Lab,
    node: str,
    dst: str,
    *,
    count: int = 3,
    interval: float = 0.2,
    timeout: float = 1.0,
    size: int = 56,
) -> PingResult:
    """``count`` echo requests from ``node`` to ``dst``, ``interval`` apart, each answered or
    given up ``timeout`` seconds after it was sent."""
    if count < 1:
        raise NetlabError(f"count must be at least 1, got {count}")
    if interval <= 0 or timeout <= 0:
        raise NetlabError("interval and timeout must be positive")
    try:
        version = ipaddress.ip_address(dst).version
    except ValueError:
        raise NetlabError(f"bad address '{dst}'") from None
    netns = lab.node(node).netns
    family, proto = (socket.AF_INET, socket.IPPROTO_ICMP) if version == 4 else (socket.AF_INET6, socket.IPPROTO_ICMPV6)
    sock = open_socket(netns, family, socket.SOCK_RAW, proto)
    ident = secrets.randbits(16)
    sent_at: dict[int, float] = {}
    rtts: list[tuple[int, float]] = []  # (sequence, ms) per reply
    start = time.monotonic()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        for seq in range(count):
            sent_at[seq] = time.monotonic()
            try:
                sock.sendto(request(version, ident, seq, size), (dst, 0))
            except OSError as exc:
                raise NetlabError(f"{node}: cannot send to {dst}: {exc.strerror}") from None
            last = seq == count - 1
            until = sent_at[seq] + (timeout if last else interval)
            _collect(sock, version, ident, sent_at, rtts, timeout=timeout, until=until, early=last)
    finally:
        sock.close()
    return PingResult(node, dst, count, len(rtts), tuple(ms for _seq, ms in rtts), time.monotonic() - start)


def _collect(
    sock: socket.socket,
    version: int,
    ident: int,
    sent_at: dict[int, float],
    rtts: list[tuple[int, float]],
    *,
    timeout: float,
    until: float,
    early: bool,
) -> None:
    """Replies until ``until`` (or, if ``early``, until every request has one); a reply later
    than ``timeout`` after its request is a loss, as in ping."""
    answered = {seq for seq, _rtt in rtts}
    while (left := until - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return
        packet = sock.recv(65535)
        now = time.monotonic()
        seq = reply_of(version, packet, ident)
        if seq is not None and seq in sent_at and now - sent_at[seq] <= timeout:
            rtts.append((seq, (now - sent_at[seq]) * 1000))
            answered.add(seq)
            if early and len(answered) == len(sent_at):
                return
