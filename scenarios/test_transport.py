"""UDP, TCP and ICMP refusing packets, and sockets refusing data."""

from __future__ import annotations

import contextlib
import ctypes
import socket
import struct
from collections.abc import Iterator

import pytest
from expected import NO_REASONS, located, since_6_12, udp

from netlab.testing import (
    Drop,
    Lab,
    NewBehaviour,
    TraceFactory,
    Traffic,
    Untraced,
    assert_dropped,
    by_kernel,
    until,
)

TCP_LISTENER_SILENT = Untraced(
    "before 5.17 tcp_rcv_state_process discards such segments with __kfree_skb, which fires no tracepoint",
    node="ns-calm2",
    within=("tcp_",),
)
EXPECT: dict[str, Drop | Untraced | NewBehaviour] = {
    "udp_closed": udp("NO_SOCKET", "ns-calm2"),
    "tcp_closed": by_kernel(located("tcp_v4_rcv", "NO_SOCKET", "ns-calm2")),
    "udp_csum": udp("UDP_CSUM", "ns-calm2"),
    "tcp_csum": by_kernel(located("tcp_v4_rcv", "TCP_CSUM", "ns-calm2")),
    "icmp_csum": by_kernel(located("icmp_rcv", "ICMP_CSUM", "ns-calm2")),
    "tcp_flags": by_kernel(
        {NO_REASONS: TCP_LISTENER_SILENT, ">=5.17": Drop("tcp_rcv_state_process", "TCP_FLAGS", "ns-calm2")}
    ),
    "tcp_reset": by_kernel(
        {NO_REASONS: TCP_LISTENER_SILENT, ">=5.17": Drop("tcp_rcv_state_process", "TCP_RESET", "ns-calm2")}
    ),
    "rcvbuf": by_kernel(located("udp_queue_rcv_one_skb", "SOCKET_RCVBUFF", "ns-calm2")),
    "filter": by_kernel(located("udp_queue_rcv_one_skb", "SOCKET_FILTER", "ns-calm2")),
    "xfrm": by_kernel(located("udp_queue_rcv_one_skb", "XFRM_POLICY", "ns-calm2")),
    "minttl": by_kernel(since_6_12("tcp_v4_rcv", "TCP_MINTTL", "ns-calm2")),
    "packet_full": by_kernel(since_6_12("packet_rcv", "PACKET_SOCK_ERROR", "ns-calm2")),
    # the purge's reason came in 6.12's cycle, and skb_queue_purge became a wrapper then
    "purged": by_kernel(
        {
            NO_REASONS: Drop("skb_queue_purge", None, "ns-calm2"),
            "5.17-6.11": Drop("skb_queue_purge", "NOT_SPECIFIED", "ns-calm2"),
            ">=6.12": Drop("skb_queue_purge_reason", "QUEUE_PURGE", "ns-calm2"),
        }
    ),
}
pytestmark = pytest.mark.netlab_topology("bridge3")
SO_ATTACH_FILTER = 26
ETH_P_IP = 0x0800
SOL_PACKET, PACKET_IGNORE_OUTGOING = 263, 23  # linux/socket.h, linux/if_packet.h
IP_MINTTL = 21  # linux/in.h


@contextlib.contextmanager
def listening(lab: Lab, port: int) -> Iterator[socket.socket]:
    sock = lab.node("ns-calm2").socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("198.51.100.2", port))
    sock.listen(1)
    try:
        yield sock
    finally:
        sock.close()


def test_udp_to_a_closed_port(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """No socket is bound to UDP port 9999 in ns-calm2: __udp4_lib_rcv answers with ICMP port
    unreachable and drops the datagram (NO_SOCKET). From 7.x the compiler inlines
    __udp4_lib_rcv into udp_rcv, so the drop is located in udp_rcv there; before 5.17 the
    location is all the kernel says."""
    with netlab_trace(netlab_lab, stack=True) as t:
        sent = netlab_traffic.inject("ns-calm1", "calmveth1", "udp", dst="198.51.100.2", dport=9999, count=3)
    hits = assert_dropped(t.result, EXPECT["udp_closed"], count=3)
    assert hits[0].stack and hits[0].stack[0].startswith(hits[0].location.function)
    assert sent.sent == 3


def test_tcp_syn_to_a_closed_port(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """A SYN to a port nobody listens on: tcp_v4_rcv sends a RST and drops the SYN (NO_SOCKET).
    The RST comes back to ns-calm1, where no socket sent the SYN either, and dies the same way."""
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns-calm1", "calmveth1", "tcp-syn", dst="198.51.100.2", dport=7, count=2)
    assert_dropped(t.result, EXPECT["tcp_closed"], count=2)
    assert_dropped(t.result, by_kernel(located("tcp_v4_rcv", "NO_SOCKET", "ns-calm1")), count=2)


@pytest.mark.parametrize(("recipe", "key"), [("udp", "udp_csum"), ("tcp-syn", "tcp_csum"), ("icmp", "icmp_csum")])
def test_bad_transport_checksum(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory, recipe: str, key: str
) -> None:
    """A frame from a packet socket has no checksum offload, so the receiver verifies the
    UDP/TCP/ICMP checksum in software and drops a wrong one (UDP_CSUM, TCP_CSUM, ICMP_CSUM),
    before it even looks for a socket."""
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns-calm1", "calmveth1", recipe, dst="198.51.100.2", bad="l4-csum", count=2)
    assert_dropped(t.result, EXPECT[key], count=2)


@pytest.mark.parametrize(("flags", "key"), [("F", "tcp_flags"), ("R", "tcp_reset")])
def test_listening_socket_refuses_odd_segments(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory, flags: str, key: str
) -> None:
    """A listening socket accepts SYNs only. A lone FIN is TCP_FLAGS; a RST for a connection
    that does not exist is TCP_RESET (both in tcp_rcv_state_process). Before 5.17 the kernel
    threw these away with __kfree_skb, which has no tracepoint: 5.10 traces nothing at all,
    which is why such drops were invisible to dropwatch too."""
    with listening(netlab_lab, 8080), netlab_trace(netlab_lab) as t:
        netlab_traffic.inject(
            "ns-calm1", "calmveth1", "tcp-syn", dst="198.51.100.2", dport=8080, tcp_flags=flags, count=2
        )
    assert_dropped(t.result, EXPECT[key], count=2)


def test_a_listener_that_wants_segments_from_its_own_link_only(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """IP_MINTTL 255 (RFC 5082, GTSM): a listener accepts only segments no router has
    forwarded, as BGP speakers do. SYNs with TTL 64 are dropped before the socket sees them
    (TCP_MINTTL from 6.12; before, NOT_SPECIFIED in the same place) and counted as
    TCPMinTTLDrop."""
    with listening(netlab_lab, 179) as sock, netlab_trace(netlab_lab) as t:
        sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, 255)
        netlab_traffic.inject("ns-calm1", "calmveth1", "tcp-syn", dst="198.51.100.2", dport=179, ttl=64, count=2)
    assert_dropped(t.result, EXPECT["minttl"], count=2)


def test_full_udp_receive_buffer(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """A UDP socket that does not read, with the smallest receive buffer, fills after a
    datagram or two; the rest are dropped on enqueue (SOCKET_RCVBUFF, also counted as
    Udp RcvbufErrors)."""
    sock = netlab_lab.node("ns-calm2").socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    sock.bind(("198.51.100.2", 5000))
    try:
        with netlab_trace(netlab_lab) as t:
            netlab_traffic.inject(
                "ns-calm1", "calmveth1", "udp", dst="198.51.100.2", dport=5000, payload=1000, count=50
            )
    finally:
        sock.close()
    assert_dropped(t.result, EXPECT["rcvbuf"], at_least=40)


def test_frames_a_packet_socket_never_read_die_when_it_closes(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """A packet socket (as tcpdump opens) bound to calmveth2 gets a copy of every frame; closed
    unread, its queue is purged, and the copies with it (QUEUE_PURGE from 6.12). Placed on
    ns-calm2, where the frames arrived, though the close ran in the test's own process."""
    sock = netlab_lab.node("ns-calm2").socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    # only what arrives: not the ICMP errors ns-calm2 sends back for the closed port
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.bind(("calmveth2", ETH_P_IP))
    before = _snmp(netlab_lab, "ns-calm2", "Udp", "NoPorts")
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns-calm1", "calmveth1", "udp", dst="198.51.100.2", dport=5002, count=3)
        # the socket's copy is queued before IP sees the datagram, and UDP finds no port for it
        arrived = until(lambda: _snmp(netlab_lab, "ns-calm2", "Udp", "NoPorts") == before + 3, 5)
        assert arrived, "the datagrams never arrived"
        sock.close()
    # at least: now and then a fourth IPv4 frame reaches calmveth2 meanwhile, and its copy waits too
    assert_dropped(t.result, EXPECT["purged"], at_least=3)


def test_a_packet_socket_that_never_reads_overflows(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """A packet socket with the smallest receive buffer, never read: after a copy or two it is
    full, and packet_rcv drops the copies of the rest (PACKET_SOCK_ERROR from 6.12, counted in
    the socket's PACKET_STATISTICS drops), while the datagrams themselves go on to UDP."""
    sock = netlab_lab.node("ns-calm2").socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    sock.bind(("calmveth2", ETH_P_IP))
    try:
        with netlab_trace(netlab_lab) as t:
            netlab_traffic.inject(
                "ns-calm1", "calmveth1", "udp", dst="198.51.100.2", dport=5003, payload=1000, count=50
            )
    finally:
        sock.close()
    assert_dropped(t.result, EXPECT["packet_full"], at_least=40)


def _snmp(lab: Lab, node: str, protocol: str, name: str) -> int:
    """Counter ``name`` of ``protocol`` in the node's /proc/net/snmp (read from inside it)."""
    with lab.node(node).entered(), open("/proc/thread-self/net/snmp") as f:
        header, values = [line.split() for line in f if line.startswith(f"{protocol}:")][:2]
    return int(dict(zip(header[1:], values[1:], strict=True))[name])


def test_socket_filter_refuses_everything(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """A classic BPF filter on the socket that returns 0 ("accept no bytes") makes the kernel
    drop every datagram for that socket (SOCKET_FILTER), as tcpdump-style filters do."""
    sock = netlab_lab.node("ns-calm2").socket(socket.AF_INET, socket.SOCK_DGRAM)
    reject_all = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0))  # BPF_RET | BPF_K, 0
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", 1, ctypes.addressof(reject_all)))
    sock.bind(("198.51.100.2", 5001))
    try:
        with netlab_trace(netlab_lab) as t:
            netlab_traffic.inject("ns-calm1", "calmveth1", "udp", dst="198.51.100.2", dport=5001, count=2)
    finally:
        sock.close()
    assert_dropped(t.result, EXPECT["filter"], count=2)


def test_an_ipsec_policy_that_blocks_what_arrives(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """An XFRM (IPsec) policy in ns-calm2 blocks what comes in from ns-calm1: the datagrams
    reach a listening UDP socket, and the socket's policy check refuses them (XFRM_POLICY)."""
    calm2 = netlab_lab.node("ns-calm2")
    selector = ["src", "198.51.100.1/32", "dst", "198.51.100.2/32"]
    calm2.run(["ip", "xfrm", "policy", "add", *selector, "dir", "in", "action", "block"], check=True)
    with calm2.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("198.51.100.2", 7003))
        with netlab_trace(netlab_lab) as t:
            netlab_traffic.inject("ns-calm1", "calmveth1", "udp", dst="198.51.100.2", dport=7003, count=3)
    assert_dropped(t.result, EXPECT["xfrm"], count=3)
