"""TCP's checks on segments of a connection: sequence numbers, acknowledgements, timestamps.

A real connection between ns1 (client) and ns2 (server) exchanges a little data; then the
client's current numbers are read from its own socket (TCP_REPAIR's queue sequences and
timestamp, read and left at once), and ns1 sends the server segments of that connection that
are wrong in one way each, built by scapy. The server's tcp_validate_incoming, tcp_ack and
tcp_data_queue drop each with the reason for the check it failed.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from expected import NO_REASONS, since_6_12
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

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

pytestmark = pytest.mark.netlab_topology("veth-two-ns")
PORT = 7010
# linux/tcp.h: repair mode, and what it reads
TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, TCP_TIMESTAMP, TCP_REPAIR_WINDOW = 19, 20, 21, 24, 29
TCP_RECV_QUEUE, TCP_SEND_QUEUE = 1, 2
MOD = 1 << 32


@dataclass(frozen=True)
class Numbers:
    """The client's side of the connection: what the server expects next from it."""

    port: int
    seq: int  # the client's next sequence number (the server's rcv_nxt)
    ack: int  # what the client has received (the server's snd_nxt)
    tsval: int  # the client's timestamp clock now
    window: int  # the server's receive window as the client last saw it


def _read(sock: socket.socket) -> Numbers:
    """The client socket's numbers, read in repair mode (root; the socket leaves it at once)."""
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
        seq = struct.unpack("I", sock.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0]
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)
        ack = struct.unpack("I", sock.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0]
        tsval = struct.unpack("I", sock.getsockopt(socket.IPPROTO_TCP, TCP_TIMESTAMP, 4))[0]
        window = struct.unpack("5I", sock.getsockopt(socket.IPPROTO_TCP, TCP_REPAIR_WINDOW, 20))[1]
    finally:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 0)
    return Numbers(sock.getsockname()[1], seq, ack, tsval, window)


@contextlib.contextmanager
def connection(lab: Lab, rcvbuf: int | None = None) -> Iterator[Numbers]:
    """A connection from ns1 to ns2's port 7010 that has carried 100 bytes each way (the
    server's receive buffer ``rcvbuf`` bytes, set before it listens, when given)."""
    with (
        lab.node("ns2").socket(socket.AF_INET, socket.SOCK_STREAM) as server,
        lab.node("ns1").socket(socket.AF_INET, socket.SOCK_STREAM) as client,
    ):
        if rcvbuf:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        server.bind(("198.51.100.2", PORT))
        server.listen(1)
        client.connect(("198.51.100.2", PORT))
        conn, _ = server.accept()
        with conn:
            client.sendall(b"c" * 100)
            conn.recv(100)
            conn.sendall(b"s" * 100)
            client.recv(100)
            yield _read(client)


@contextlib.contextmanager
def stalled(lab: Lab) -> Iterator[Numbers]:
    """A connection whose server never reads: the client writes until its 2 KB receive
    buffer is full and it advertises a zero window. The numbers are the server's (what it
    expects next), since the client's own run ahead with the data it could not send."""
    with (
        lab.node("ns2").socket(socket.AF_INET, socket.SOCK_STREAM) as server,
        lab.node("ns1").socket(socket.AF_INET, socket.SOCK_STREAM) as client,
    ):
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        server.bind(("198.51.100.2", PORT))
        server.listen(1)
        client.connect(("198.51.100.2", PORT))
        conn, _ = server.accept()
        with conn:
            client.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                while True:
                    client.send(b"z" * 4096)
            assert until(lambda: _read(client).window == 0, timeout=5), "the server's window never closed"
            mine, theirs = _read(client), _read(conn)
            # the client keeps probing the closed window with fresh timestamps while the trace
            # starts: a timestamp a second ahead stays newer than the last probe's (PAWS
            # refuses only older ones)
            yield Numbers(mine.port, seq=theirs.ack, ack=theirs.seq, tsval=mine.tsval + 1000, window=0)


def segment(
    traffic: Traffic, n: Numbers, *, seq: int, ack: int, flags: str = "PA", tsval: int | None = None, data: bytes = b""
) -> Any:
    """A segment of the connection from the client, with a timestamp option (the client's now)."""
    options = [("NOP", None), ("NOP", None), ("Timestamp", ((n.tsval if tsval is None else tsval) % MOD, 0))]
    return (
        Ether(src=traffic.mac("ns1", "veth1"), dst=traffic.mac("ns2", "veth2"))
        / IP(src="198.51.100.1", dst="198.51.100.2")
        / TCP(sport=n.port, dport=PORT, seq=seq % MOD, ack=ack % MOD, flags=flags, window=502, options=options)
        / Raw(data)
    )


SILENT = Untraced(
    "before 5.17 TCP frees a segment it refuses with __kfree_skb, which fires no tracepoint",
    node="ns2",
    within=("tcp_",),
)


def since(function: str, reason: str, first: str = "5.17") -> Drop | Untraced | NewBehaviour:
    """A check whose reason is named from ``first`` on; 5.10 frees such segments silently."""
    return by_kernel({NO_REASONS: SILENT, f">={first}": Drop(function, reason, "ns2")})


#: name -> (how the segment is wrong, the drop the server makes of it)
CASES: dict[str, tuple[Callable[[Traffic, Numbers], Any], Drop | Untraced | NewBehaviour]] = {
    "syn-in-window": (
        lambda t, n: segment(t, n, seq=n.seq, ack=n.ack, flags="S"),
        since("tcp_validate_incoming", "TCP_INVALID_SYN"),
    ),
    "beyond-the-window": (
        lambda t, n: segment(t, n, seq=n.seq + (1 << 29), ack=n.ack, data=b"z" * 10),
        since("tcp_validate_incoming", "TCP_INVALID_SEQUENCE"),
    ),
    "all-before-the-window": (
        lambda t, n: segment(t, n, seq=n.seq - 60, ack=n.ack, data=b"c" * 10),
        # 6.1 has the name but says TCP_INVALID_SEQUENCE for both sides of the window
        by_kernel(
            {
                NO_REASONS: SILENT,
                "5.17-6.11": Drop("tcp_validate_incoming", "TCP_INVALID_SEQUENCE", "ns2"),
                ">=6.12": Drop("tcp_validate_incoming", "TCP_OLD_SEQUENCE", "ns2"),
            }
        ),
    ),
    "data-already-received": (
        lambda t, n: segment(t, n, seq=n.seq - 10, ack=n.ack, data=b"c" * 10),
        since("tcp_data_queue", "TCP_OLD_DATA"),
    ),
    "at-the-windows-right-edge": (
        lambda t, n: segment(t, n, seq=n.seq + n.window, ack=n.ack, data=b"z" * 10),
        since("tcp_data_queue", "TCP_OVERWINDOW"),
    ),
    "timestamp-older-than-the-last": (
        lambda t, n: segment(t, n, seq=n.seq, ack=n.ack, tsval=n.tsval - 100_000, data=b"z" * 10),
        since("tcp_validate_incoming", "TCP_RFC7323_PAWS"),
    ),
    "ack-of-data-never-sent": (
        lambda t, n: segment(t, n, seq=n.seq, ack=n.ack + 100_000, data=b"z" * 10),
        since("tcp_v4_do_rcv", "TCP_ACK_UNSENT_DATA"),
    ),
    "ack-older-than-the-window": (
        lambda t, n: segment(t, n, seq=n.seq, ack=n.ack - (1 << 30), data=b"z" * 10),
        since("tcp_v4_do_rcv", "TCP_TOO_OLD_ACK"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_segments_tcp_refuses(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory, case: str) -> None:
    """A SYN inside an established connection (TCP_INVALID_SYN); data starting beyond the
    receive window (TCP_INVALID_SEQUENCE) or ending before it (TCP_OLD_SEQUENCE); data the
    server already has (TCP_OLD_DATA) or starting exactly at the window's right edge
    (TCP_OVERWINDOW); a timestamp older than the last one seen (PAWS, RFC 7323); an ACK of data
    the server never sent (TCP_ACK_UNSENT_DATA) or older than its whole window (TCP_TOO_OLD_ACK).
    Each sent twice; the server drops both (5.10 frees them without a tracepoint)."""
    build, expected = CASES[case]
    with connection(netlab_lab) as numbers, netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", [build(netlab_traffic, numbers)] * 2)
    assert_dropped(t.result, expected, count=2)


def test_a_segment_already_queued_out_of_order_is_merged_away(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """Data 100 bytes ahead of what the server expects waits in its out-of-order queue; the
    same segment again brings nothing new and is dropped (TCP_OFOMERGE; 5.10 frees it without a
    tracepoint)."""
    with connection(netlab_lab) as n, netlab_trace(netlab_lab) as t:
        ahead = segment(netlab_traffic, n, seq=n.seq + 100, ack=n.ack, data=b"q" * 10)
        netlab_traffic.send("ns1", "veth1", [ahead, ahead])
    assert_dropped(t.result, since("tcp_data_queue", "TCP_OFOMERGE"), count=1)


def test_a_syn_ack_that_acknowledges_the_wrong_number(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """ns1 connects to 198.51.100.3, whose MAC it is told is ns2's (ns2 does not own the
    address and refuses to route its SYN). A SYN-ACK from 198.51.100.3 that does not
    acknowledge ns1's SYN is refused by the connecting socket itself, in SYN-SENT
    (TCP_INVALID_ACK_SEQUENCE from 6.12; NOT_SPECIFIED in 6.1), which answers with a reset."""
    ns1 = netlab_lab.node("ns1")
    ns1.run(
        ["ip", "neigh", "add", "198.51.100.3", "lladdr", netlab_traffic.mac("ns2", "veth2"), "dev", "veth1"], check=True
    )
    with ns1.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            client.connect(("198.51.100.3", 7011))
        port = client.getsockname()[1]
        frame = (
            Ether(src=netlab_traffic.mac("ns2", "veth2"), dst=netlab_traffic.mac("ns1", "veth1"))
            / IP(src="198.51.100.3", dst="198.51.100.1")
            / TCP(sport=7011, dport=port, seq=1000, ack=12345, flags="SA", window=502)
        )
        with netlab_trace(netlab_lab) as t:
            netlab_traffic.send("ns2", "veth2", [frame, frame])
    expected = by_kernel(since_6_12("tcp_v4_do_rcv", "TCP_INVALID_ACK_SEQUENCE", "ns1"))
    assert_dropped(t.result, expected, at_least=1)


def test_data_into_a_closed_window(netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory) -> None:
    """The server never reads and its window is zero; a segment of new data at exactly the
    sequence it expects cannot be taken. 6.1 and 6.12's tcp_data_queue drop it for the window
    (TCP_ZEROWINDOW); by 6.18 tcp_sequence refuses it first, since it ends beyond the window
    while data waits unread (TCP_INVALID_END_SEQUENCE; the reason is new in that cycle, 6.12
    does not define it). 5.10 frees it without a tracepoint."""
    with stalled(netlab_lab) as n, netlab_trace(netlab_lab) as t:
        netlab_traffic.send("ns1", "veth1", [segment(netlab_traffic, n, seq=n.seq, ack=n.ack, data=b"o" * 10)] * 2)
    table: dict[str, Drop | Untraced] = {
        NO_REASONS: SILENT,
        "5.17-6.12": Drop("tcp_data_queue", "TCP_ZEROWINDOW", "ns2"),
        ">=6.18": Drop("tcp_validate_incoming", "TCP_INVALID_END_SEQUENCE", "ns2"),
    }
    expected = by_kernel(table)
    assert_dropped(t.result, expected, count=2)


def test_out_of_order_data_beyond_the_receive_buffer(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """200 one-byte segments, each a byte apart so none can merge, wait out of order in a
    server whose receive buffer is 32 KB: each costs a whole skb of memory, and the buffer
    is full long before the window. 6.1 makes room by pruning the queue's tail
    (TCP_OFO_QUEUE_PRUNE); from 6.12 a segment that would land last is refused instead
    (PROTO_MEM in tcp_data_queue), and one that lands inside the queue still prunes what lies
    beyond it. 5.10 frees both without a tracepoint."""
    with connection(netlab_lab, rcvbuf=32768) as n, netlab_trace(netlab_lab) as t:
        ahead = [segment(netlab_traffic, n, seq=n.seq + 10 + 2 * i, ack=n.ack, data=b"o") for i in range(200)]
        inside = segment(netlab_traffic, n, seq=n.seq + 10 + 2 * 50 + 1, ack=n.ack, data=b"i")
        netlab_traffic.send("ns1", "veth1", [*ahead, inside])
    table: dict[str, Drop | Untraced] = {
        NO_REASONS: SILENT,
        "5.17-6.11": Drop("tcp_prune_ofo_queue", "TCP_OFO_QUEUE_PRUNE", "ns2"),
        ">=6.12": Drop("tcp_data_queue", "PROTO_MEM", "ns2"),
    }
    refused = by_kernel(table)
    assert_dropped(t.result, refused, at_least=50)
    assert_dropped(t.result, since("tcp_prune_ofo_queue", "TCP_OFO_QUEUE_PRUNE"), at_least=1)


def test_data_for_a_socket_its_application_closed(
    netlab_lab: Lab, netlab_traffic: Traffic, netlab_trace: TraceFactory
) -> None:
    """The server's application shuts its connection down both ways (and keeps the socket); the
    client has not, and writes. Nobody will ever read that data, so the server's socket, in
    FIN-WAIT-2, drops it and resets the connection (TCP_ABORT_ON_DATA from 6.12, counted as
    TCPAbortOnData; NOT_SPECIFIED in 6.1, and 5.10 traces the same place). A socket the
    application had closed instead would be a time-wait socket by then, which resets without
    this check."""
    with (
        netlab_lab.node("ns2").socket(socket.AF_INET, socket.SOCK_STREAM) as server,
        netlab_lab.node("ns1").socket(socket.AF_INET, socket.SOCK_STREAM) as client,
    ):
        server.bind(("198.51.100.2", PORT))
        server.listen(1)
        client.connect(("198.51.100.2", PORT))
        conn, _ = server.accept()
        with conn:
            conn.shutdown(socket.SHUT_RDWR)
            assert until(lambda: _peer_closed(client), 5), "the server's FIN never came"
            with netlab_trace(netlab_lab) as t:
                client.send(b"late")
                # the client had the FIN: the reset reaches it in CLOSE-WAIT, as EPIPE
                reset = until(lambda: client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.EPIPE, 5)
                assert reset, "the server never reset the connection"
    table = {
        NO_REASONS: Drop("tcp_v4_do_rcv", None, "ns2"),
        "5.17-6.11": Drop("tcp_v4_do_rcv", "NOT_SPECIFIED", "ns2"),
        ">=6.12": Drop("tcp_v4_do_rcv", "TCP_ABORT_ON_DATA", "ns2"),
    }
    assert_dropped(t.result, by_kernel(table), count=1)


def _peer_closed(sock: socket.socket) -> bool:
    """Has the peer's FIN arrived (a peek reads the end of the stream)?"""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
