"""Recipes build the frames they promise, markers survive, malformations break one thing."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import LLC, STP, Dot3, Ether
from scapy.utils import checksum, rdpcap

from netlab import marker
from netlab.errors import NetlabError
from netlab.traffic import recipes
from netlab.traffic.bpf import compile_filter
from netlab.traffic.packet import Frame
from netlab.traffic.pcap import write

SRC = "02:00:00:00:00:01"
DST = "02:00:00:00:00:02"


def spec(**kw: object) -> recipes.FrameSpec:
    base: dict[str, object] = {
        "src_mac": SRC,
        "run": 0x1234,
        "count": 3,
        "dst_mac": DST,
        "src_ip": "198.51.100.1",
        "dst_ip": "198.51.100.2",
    }
    base.update(kw)
    return recipes.FrameSpec(**base)  # type: ignore[arg-type]


def test_stp_bpdu() -> None:
    frames = recipes.build("stp", spec(dst_mac=None))
    assert len(frames) == 3
    pkt = Dot3(frames[1])
    assert pkt.dst == "01:80:c2:00:00:00" and pkt.src == SRC
    assert pkt[LLC].dsap == 0x42 and STP in pkt
    assert marker.find(frames[1]) == marker.Marker(0x1234, 1)
    assert pkt.len < 0x600  # an 802.3 length field, not an ethertype


def test_rstp_bpdu() -> None:
    pkt = Dot3(recipes.build("rstp", spec(dst_mac=None, count=1))[0])
    assert pkt[STP].version == 2 and pkt[STP].bpdutype == 2


def test_ethertype_and_pause() -> None:
    (frame,) = recipes.build("ethertype", spec(count=1, dst_mac=None, ethertype=0x88B5))
    assert Ether(frame).type == 0x88B5 and Ether(frame).dst == "ff:ff:ff:ff:ff:ff"
    assert len(frame) >= 60
    (pause,) = recipes.build("pause", spec(count=1, dst_mac=None))
    assert Ether(pause).type == 0x8808 and Ether(pause).dst == "01:80:c2:00:00:01"
    assert struct.unpack_from("!H", pause, 14)[0] == 1  # PAUSE opcode


@pytest.mark.parametrize(("name", "layer"), [("udp", UDP), ("icmp", ICMP), ("tcp-syn", TCP)])
def test_ipv4_recipes_have_valid_checksums(name: str, layer: type) -> None:
    (frame,) = recipes.build(name, spec(count=1))
    pkt = Ether(frame)
    assert layer in pkt
    sent_ip, sent_l4 = pkt[IP].chksum, pkt[layer].chksum
    del pkt[IP].chksum
    del pkt[layer].chksum
    again = Ether(bytes(pkt))
    assert (again[IP].chksum, again[layer].chksum) == (sent_ip, sent_l4)


def test_ipv6_udp() -> None:
    (frame,) = recipes.build("udp", spec(count=1, src_ip="2001:db8::1", dst_ip="2001:db8::2"))
    assert IPv6 in Ether(frame)


def test_malformations() -> None:
    (good,) = recipes.build("udp", spec(count=1))
    assert Ether(recipes.malform(good, "ip-csum"))[IP].chksum != Ether(good)[IP].chksum
    bad_l4 = Ether(recipes.malform(good, "l4-csum"))
    assert bad_l4[UDP].chksum != Ether(good)[UDP].chksum and bad_l4[IP].chksum == Ether(good)[IP].chksum
    ihl = recipes.malform(good, "ihl")
    assert ihl[14] & 0x0F == 4
    assert checksum(ihl[14:30]) == 0  # header checksum still right
    tot = recipes.malform(good, "tot-len")
    assert struct.unpack_from("!H", tot, 16)[0] > len(tot) - 14
    assert checksum(tot[14:34]) == 0
    assert len(recipes.malform(good, "truncated")) == 24


def test_bad_input() -> None:
    with pytest.raises(NetlabError, match=r"unknown recipe 'bogus' \(known: stp, rstp"):
        recipes.recipe("bogus")
    with pytest.raises(NetlabError, match="needs --dst"):
        recipes.build("udp", spec(dst_ip=None))
    with pytest.raises(NetlabError, match="applies to IP recipes"):
        recipes.build("stp", spec(bad="ip-csum"))


def test_marker_roundtrip() -> None:
    m = marker.Marker(marker.new_run(), 7)
    assert marker.find(b"xx" + m.encode() + b"yy") == m
    assert marker.find(b"NLMK\x00") is None


def test_bpf_compiles_without_interfaces() -> None:
    program = compile_filter("udp port 9999")
    assert len(program) % 8 == 0 and len(program) > 8
    with pytest.raises(NetlabError, match="bad capture filter"):
        compile_filter("udp prot 9")


def test_pcap_readable_by_scapy(tmp_path: Path) -> None:
    frames = [Frame(f, 1700000000.123456789, False, len(f)) for f in recipes.build("icmp", spec())]
    path = tmp_path / "x.pcap"
    assert write(path, frames) == 3
    read = rdpcap(str(path))
    assert len(read) == 3 and ICMP in read[0]
    assert abs(float(read[0].time) - 1700000000.123456789) < 1e-6
