"""Matching drops to captured frames, and the pcapng that carries them (read back by tshark)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from netlab.findings.verdicts import comment, match, write
from netlab.headers import Packet
from netlab.marker import Marker
from netlab.tracers.events import DropEvent, Location, TraceResult
from netlab.traffic.capture import Seen
from netlab.traffic.packet import Frame


def frame(t: float, dport: int, mark: Marker | None = None, outgoing: bool = False) -> Frame:
    payload = mark.encode() if mark else b"x"
    data = bytes(Ether() / IP(src="198.51.100.1", dst="198.51.100.2") / UDP(sport=40000, dport=dport) / Raw(payload))
    return Frame(data, t, outgoing, len(data))


def drop(t: float, packet: Packet, node: str = "ns2", device: str | None = "veth2") -> DropEvent:
    return DropEvent(t, Location("__udp4_lib_rcv", 0x4BC), "NO_SOCKET", node, device, packet=packet)


def test_a_marker_matches_the_frame_on_the_drops_device() -> None:
    m = Marker(7, 1)
    seen = [Seen("ns1", "veth1", frame(1.0, 9, m, outgoing=True)), Seen("ns2", "veth2", frame(1.0001, 9, m))]
    taken, missed = match(seen, [drop(5.0, Packet(marker=str(m)))], to_wall=None)
    assert list(taken) == [1] and missed == 0


def test_headers_match_the_latest_such_frame_before_the_drop_and_nothing_is_guessed() -> None:
    seen = [Seen("ns2", "veth2", frame(t, dport)) for t, dport in ((1.0, 9), (2.0, 9), (2.5, 53), (3.0, 9))]
    headers = Packet(src="198.51.100.1", dst="198.51.100.2", l4="udp", dport=9)
    taken, missed = match(seen, [drop(2.01, headers)], to_wall=lambda t: t)
    assert list(taken) == [1] and missed == 0  # not 3.0: that frame came after the drop
    # the tracer's clock unknown, or no headers, or no device: no match, counted
    assert match(seen, [drop(2.01, headers)], to_wall=None) == ({}, 1)
    assert match(seen, [drop(2.01, Packet(protocol=0x800))], to_wall=lambda t: t) == ({}, 1)
    assert match(seen, [drop(2.01, headers, device=None)], to_wall=lambda t: t) == ({}, 1)


def test_the_comment_says_what_where_and_why() -> None:
    d = drop(1.0, Packet()).evolve(reason="NETFILTER_DROP", rule="inet filt inp handle 2: udp dport 7777 drop")
    assert comment(d) == (
        "netlab: dropped (NETFILTER_DROP), node ns2, device veth2, at __udp4_lib_rcv+0x4bc,"
        " rule: inet filt inp handle 2: udp dport 7777 drop"
    )


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark (scripts/bootstrap.sh installs it) is missing")
def test_the_pcapng_reads_back_in_tshark_with_interfaces_and_comments(tmp_path: Path) -> None:
    m = Marker(9, 0)
    seen = [Seen("ns1", "veth1", frame(1.5, 9, m, outgoing=True)), Seen("ns2", "veth2", frame(1.5001, 9, m))]
    result = TraceResult(tracer="bpftrace", lab="l", seconds=1.0, drops=(drop(2.0, Packet(marker=str(m))),))
    path = tmp_path / "t.pcapng"
    assert write(path, seen, result, None) == f"{path}: 2 frames, 1 with the verdict of their drop"
    shown = subprocess.run(
        [
            *("tshark", "-r", str(path), "-T", "fields", "-E", "separator=|"),
            *("-e", "frame.interface_name", "-e", "frame.time_epoch", "-e", "udp.dstport", "-e", "frame.comment"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert [line.split("|")[0] for line in shown] == ["ns1:veth1", "ns2:veth2"]
    assert shown[0].split("|")[1].startswith("1.500000000")
    assert shown[1].split("|")[3].startswith("netlab: dropped (NO_SOCKET), node ns2, device veth2")
    assert shown[0].split("|")[3] == ""
