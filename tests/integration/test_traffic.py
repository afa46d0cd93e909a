"""Traffic on the real kernel: injection and capture inside nodes, TCP flows across labs."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from netlab import marker
from netlab.errors import NetlabError
from netlab.lab import Lab
from netlab.model.loader import load_text
from netlab.pytest_plugin.plugin import LabFactory
from netlab.runtime import wait
from netlab.testing import lose_every_nth_tcp_packet
from netlab.traffic.capture import Capture
from netlab.traffic.flow import tcp_flow
from netlab.traffic.inject import inject, send
from netlab.traffic.packet import PacketSocket
from tests.integration.conftest import netlab_cli


def rx_dropped(lab: Lab, node: str, ifname: str) -> int:
    out = lab.node(node).run(["cat", f"/sys/class/net/{ifname}/statistics/rx_dropped"], check=True)
    return int(out.stdout)


def test_stp_bpdus_are_flooded_by_a_bridge_without_stp(netlab_up: LabFactory, tmp_path: Path) -> None:
    lab = netlab_up("bridge3")
    pcap = tmp_path / "stp.pcap"
    with Capture(lab, "ns-calm2", "calmveth2", expression="stp", pcap=pcap) as cap:
        sent = inject(lab, "ns-calm1", "calmveth1", "stp", count=5)
        seen = cap.wait(5, timeout=5)
    assert sent.sent == 5
    assert len([f for f in seen if marker.find(f.data) and marker.find(f.data).run == sent.run]) == 5  # type: ignore[union-attr]
    out = subprocess.run(["tcpdump", "-r", str(pcap), "-n", "-e"], capture_output=True, text=True, check=True)
    assert out.stdout.count("STP 802.1d, Config") == 5


def _wait_counter(lab: Lab, node: str, ifname: str, target: int) -> int:
    return wait.poll(lambda: rx_dropped(lab, node, ifname), lambda value: value >= target, 2)


def test_unknown_ethertype_reaches_ns_calm2_and_counts_as_rx_dropped(netlab_up: LabFactory) -> None:
    """No protocol handler takes ethertype 0x88b5: each frame is dropped in
    __netif_receive_skb_core and counted in rx_dropped -- unless a packet socket (tcpdump, a
    capture) is open on the device, which counts as a delivery: the observer hides the drops."""
    lab = netlab_up("bridge3")
    before = rx_dropped(lab, "ns-calm2", "calmveth2")
    inject(lab, "ns-calm1", "calmveth1", "ethertype", count=3, ethertype=0x88B5)
    assert _wait_counter(lab, "ns-calm2", "calmveth2", before + 3) == before + 3

    with Capture(lab, "ns-calm2", "calmveth2", expression="ether proto 0x88b5") as cap:
        sent = inject(lab, "ns-calm1", "calmveth1", "ethertype", count=3, ethertype=0x88B5)
        assert len(cap.wait(3, timeout=5)) == 3
    assert len(cap.marked(sent.run)) == 3  # the frames did reach ns-calm2
    assert rx_dropped(lab, "ns-calm2", "calmveth2") == before + 3  # and were not counted


def test_udp_to_a_closed_port_arrives_with_its_marker(netlab_up: LabFactory) -> None:
    lab = netlab_up("bridge3")
    with Capture(lab, "ns-calm2", "calmveth2", expression="udp port 9999") as cap:
        sent = inject(lab, "ns-calm1", "calmveth1", "udp", dst="198.51.100.2", dport=9999, count=4)
        cap.wait(4, timeout=5)
    assert [marker.find(f.data) for f in cap.marked(sent.run)] == list(sent.markers)


def test_spoofed_source_and_broadcast_arrive_as_asked(netlab_up: LabFactory) -> None:
    """--src puts any source address in the IP header; --broadcast sends to ff:ff:ff:ff:ff:ff."""
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    lab = netlab_up("bridge3")
    with Capture(lab, "ns-calm2", "calmveth2", expression="udp port 9999") as cap:
        sent = inject(
            lab, "ns-calm1", "calmveth1", "udp", dst="198.51.100.255", src="203.0.113.7", broadcast=True, count=2
        )
        cap.wait(2, timeout=5)
    frames = [Ether(f.data) for f in cap.marked(sent.run)]
    assert len(frames) == 2
    assert all(f.dst == "ff:ff:ff:ff:ff:ff" and f[IP].src == "203.0.113.7" for f in frames)


def test_ping_waits_for_replies_in_both_ip_versions(netlab_up: LabFactory) -> None:
    """Across two routers and back, each request answered before the next; a host that is not
    there answers nothing, and the loss is counted."""
    from netlab.traffic.ping import ping

    lab = netlab_up("routed3")
    for dst in ("203.0.113.2", "2001:db8:3::2"):
        result = ping(lab, "client", dst, count=3, interval=0.05, timeout=2)
        assert (result.sent, result.received, result.loss) == (3, 3, 0.0), result
        assert all(0 < rtt < 2000 for rtt in result.rtts_ms)
    lost = ping(lab, "client", "203.0.113.99", count=2, interval=0.05, timeout=0.3)
    assert (lost.received, lost.loss) == (0, 100.0)


def test_tcp_flow_across_bridge3_and_without_the_forward_rule(netlab_up: LabFactory) -> None:
    lab = netlab_up("bridge3")
    result = tcp_flow(lab, "ns-calm1", "ns-calm2", 1 << 20)
    assert result.verified and result.bytes_received == 1 << 20
    lab.node("host").run(["iptables", "-w", "-D", "FORWARD", "-i", "calmbr", "-j", "ACCEPT"], check=True)
    with pytest.raises(NetlabError, match=r"TCP connect from 'ns-calm1' to 198\.51\.100\.2:5201"):
        tcp_flow(lab, "ns-calm1", "ns-calm2", 1 << 16, connect_timeout=1.5)


def test_lossy_flow_completes_with_retransmissions(netlab_up: LabFactory) -> None:
    lab = netlab_up("bridge3")
    lose_every_nth_tcp_packet(lab.node("host"), 20)
    result = tcp_flow(lab, "ns-calm1", "ns-calm2", 4 << 20, timeout=60)
    assert result.verified
    assert result.retransmissions > 0


def test_ipv6_flow_on_routed3(netlab_up: LabFactory) -> None:
    lab = netlab_up("routed3")
    result = tcp_flow(lab, "client", "server", 256 << 10, address="2001:db8:3::2")
    assert result.verified


def test_lab_interface_named_like_a_host_interface_sends_nothing_on_the_host(netlab_up: LabFactory) -> None:
    up = [
        n
        for _i, n in socket.if_nameindex()
        if n != "lo" and Path(f"/sys/class/net/{n}/operstate").read_text().strip() == "up"
    ]
    if not up:
        pytest.skip("the host has no interface that is up to compare against")
    host_if = up[0]
    link = f"links: [{{endpoints: [a:{host_if}, b:{host_if}]}}]\n"
    topo, _ = load_text("name: samename\nipv6: false\nnodes:\n  a: {}\n  b: {}\n" + link)
    lab = netlab_up(topo)
    host = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B5))
    host.bind((host_if, socket.htons(0x88B5)))
    host.settimeout(0.5)
    try:
        with Capture(lab, "b", host_if, expression="ether proto 0x88b5") as cap:
            sent = inject(lab, "a", host_if, "ethertype", count=50, ethertype=0x88B5)
            assert len(cap.wait(50, timeout=5)) == 50
        with pytest.raises(TimeoutError):
            host.recv(2048)  # nothing of ours ever reached the host's interface
    finally:
        host.close()
    assert len(cap.marked(sent.run)) == 50


def test_capture_ready_barrier_1000_rounds(netlab_up: LabFactory) -> None:
    """Start a capture, send exactly one frame right after, and capture exactly that one."""
    lab = netlab_up("veth-two-ns")
    ns1, ns2 = lab.node("ns1").netns, lab.node("ns2").netns
    frame_for = {}
    with PacketSocket.sender(ns1, "veth1") as out:
        for i in range(1000):
            payload = marker.Marker(0xC0FFEE, i).encode()
            frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb6" + payload + bytes(40)
            frame_for[i] = frame
            with PacketSocket.capture(ns2, "veth2", "ether proto 0x88b6") as cap:
                out.send([frame])
                got = cap.receive(timeout=2)
                assert got is not None, f"round {i}: the frame sent right after capture start was missed"
                assert marker.find(got.data) == marker.Marker(0xC0FFEE, i)
                assert cap.receive(timeout=0) is None, f"round {i}: more than one frame"


def test_raw_send_of_scapy_packets_and_the_capture_saved_afterwards(netlab_up: LabFactory, tmp_path: Path) -> None:
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    lab = netlab_up("veth-two-ns")
    with Capture(lab, "ns2", "veth2", expression="ether proto 0x88b7") as cap:
        send(lab, "ns1", "veth1", [Ether(dst="ff:ff:ff:ff:ff:ff", type=0x88B7) / Raw(b"x" * 50)] * 3)
        assert len(cap.wait(3, timeout=5)) == 3
    assert cap.save(tmp_path / "after.pcap") == 3
    out = subprocess.run(
        ["tcpdump", "-r", str(tmp_path / "after.pcap"), "-n", "-e"], capture_output=True, text=True, check=False
    )
    assert out.stdout.count("ethertype Unknown (0x88b7)") == 3, out.stdout + out.stderr


BAD_TRAFFIC = [
    (["inject", "nosuchlab", "a", "eth0", "stp"], "no lab named 'nosuchlab' is up"),
    (["inject", "{lab}", "nosuchnode", "veth1", "stp"], "has no node 'nosuchnode'"),
    (["inject", "{lab}", "ns1", "nosuchif", "stp"], "has no interface 'nosuchif'"),
    (["inject", "{lab}", "ns1", "veth1", "bogus"], "unknown recipe 'bogus'"),
    (["inject", "{lab}", "ns1", "veth1", "udp", "--dst", "198.51.100.300"], "bad address '198.51.100.300'"),
    (["inject", "{lab}", "ns1", "veth1", "stp", "--count", "0"], "count must be at least 1"),
    (["inject", "{lab}", "ns1", "veth1", "ethertype", "0xzz"], "is not a number"),
    (["inject", "{lab}", "ns1", "veth1", "udp", "--dst", "198.51.100.2", "--src", "x"], "bad source address 'x'"),
    (["inject", "{lab}", "ns1", "veth1", "stp", "--src", "192.0.2.1"], "recipe 'stp' has no IP header for --src"),
    (["inject", "{lab}", "ns1", "veth1", "udp", "--dst", "198.51.100.2", "--src", "2001:db8::1"], "different IP"),
    (["inject", "{lab}", "ns1", "veth1", "stp", "--broadcast", "--dst-mac", "02:00:00:00:00:01"], "not both"),
    (["capture", "{lab}", "ns1", "nosuchif", "--count", "1"], "no interface 'nosuchif'"),
    (["capture", "{lab}", "ns1", "veth1", "--filter", "udp prot 9"], "bad capture filter"),
    (["flow", "{lab}", "ns1", "nosuchnode"], "has no node 'nosuchnode'"),
    (["ping", "{lab}", "ns1", "198.51.100.300"], "bad address '198.51.100.300'"),
    (["ping", "{lab}", "nosuchnode", "198.51.100.2"], "has no node 'nosuchnode'"),
    (["flow", "{lab}", "ns1", "ns2", "--bytes", "0"], "size must be positive"),
    (["flow", "{lab}", "ns1", "ns2", "--bytes", "lots"], "is not a size"),
]


def test_bad_traffic_input_gives_one_message(netlab_up: LabFactory) -> None:
    lab = netlab_up("veth-two-ns")
    for argv, message in BAD_TRAFFIC:
        result = netlab_cli(*[a.format(lab=lab.name) for a in argv])
        assert result.returncode != 0, argv
        assert message in result.stderr, (argv, result.stderr)
        assert "Traceback" not in result.stderr, argv


def test_cli_inject_capture_flow(netlab_up: LabFactory, tmp_path: Path) -> None:
    lab = netlab_up("bridge3")
    pcap = tmp_path / "cli.pcap"
    cap = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netlab",
            "capture",
            lab.name,
            "ns-calm2",
            "calmveth2",
            "-w",
            str(pcap),
            "--count",
            "5",
            "--timeout",
            "10",
            "--filter",
            "stp",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert cap.stderr is not None
    assert "ready" in cap.stderr.readline()
    assert netlab_cli("inject", lab.name, "ns-calm1", "calmveth1", "stp", "--count", "5").returncode == 0
    out, _ = cap.communicate(timeout=15)
    assert out.count("[marker") == 5
    flow = netlab_cli("flow", lab.name, "ns-calm1", "ns-calm2", "--bytes", "1M")
    assert flow.returncode == 0 and "1048576 of 1048576 bytes verified" in flow.stdout
