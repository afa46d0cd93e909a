"""ICMP echo's wire format and reply matching (no root, no lab)."""

from __future__ import annotations

import struct

import pytest
from scapy.utils import checksum

from netlab.traffic.ping import PingResult, reply_of, request


def test_ipv4_request_checksums_to_zero_and_ipv6_leaves_it_to_the_kernel() -> None:
    v4 = request(4, ident=0x1234, seq=7, size=56)
    assert len(v4) == 8 + 56 and v4[0] == 8 and checksum(v4) == 0
    v6 = request(6, ident=0x1234, seq=7, size=56)
    assert v6[0] == 128 and struct.unpack_from("!H", v6, 2)[0] == 0


def test_only_replies_to_our_identifier_count() -> None:
    ip_header = bytes([0x45]) + bytes(19)
    reply = struct.pack("!BBHHH", 0, 0, 0, 0x1234, 9) + bytes(8)
    assert reply_of(4, ip_header + reply, 0x1234) == 9
    assert reply_of(4, ip_header + reply, 0x4321) is None  # another ping's
    echo = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 9)  # our own request, looped back
    assert reply_of(4, ip_header + echo, 0x1234) is None
    assert reply_of(6, struct.pack("!BBHHH", 129, 0, 0, 0x1234, 3), 0x1234) == 3
    assert reply_of(6, b"\x81", 0x1234) is None


def test_summary_reads_like_pings() -> None:
    result = PingResult("client", "203.0.113.2", 4, 3, (0.2, 0.3, 0.4), 0.61)
    assert result.loss == pytest.approx(25.0)
    assert result.summary() == (
        "4 packets transmitted, 3 received, 25% packet loss, time 610ms\nrtt min/avg/max = 0.200/0.300/0.400 ms"
    )
    assert "rtt" not in PingResult("client", "203.0.113.2", 2, 0, (), 1.0).summary()
