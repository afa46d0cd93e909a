"""TCP-MD5 (RFC 2385), the signature BGP sessions still run on: each side holds a key per peer,
and a segment whose signature is missing, unexpected or wrong is dropped before TCP looks at it.

The keys are set with the TCP_MD5SIG socket option on the listener (for the client's address)
and on the client (for the server's); the client's connect then gets no answer, and its SYN and
the SYN's retransmission are what the server drops.
"""

from __future__ import annotations

import socket
import struct

import pytest
from expected import located

from netlab.testing import Drop, Lab, NewBehaviour, TraceFactory, assert_dropped, by_kernel

pytestmark = pytest.mark.netlab_topology("veth-two-ns")
TCP_MD5SIG = 14  # linux/tcp.h


def md5sig(peer: str, key: bytes) -> bytes:
    """``struct tcp_md5sig`` for ``peer`` (IPv4, any port) and ``key``."""
    address = (struct.pack("=H", socket.AF_INET) + struct.pack("!H", 0) + socket.inet_aton(peer)).ljust(128, b"\0")
    return address + struct.pack("=BBHi", 0, 0, len(key), 0) + key.ljust(80, b"\0")


def reason(name: str) -> Drop | NewBehaviour:
    return by_kernel(located("tcp_v4_rcv", name, "ns2"))


@pytest.mark.parametrize(
    ("server_key", "client_key", "expected"),
    [
        (b"bgp-secret", None, "TCP_MD5NOTFOUND"),
        (None, b"bgp-secret", "TCP_MD5UNEXPECTED"),
        (b"bgp-secret", b"another", "TCP_MD5FAILURE"),
    ],
    ids=["signature-missing", "signature-unexpected", "signature-wrong"],
)
def test_tcp_md5_signatures(
    netlab_lab: Lab, netlab_trace: TraceFactory, server_key: bytes | None, client_key: bytes | None, expected: str
) -> None:
    """A listener with a key for its peer drops a SYN without a signature (TCP_MD5NOTFOUND); one
    without keys drops a signed SYN (TCP_MD5UNEXPECTED); a signature made with another key does
    not verify (TCP_MD5FAILURE). All in tcp_v4_rcv, before the listener sees the SYN."""
    server = netlab_lab.node("ns2").socket(socket.AF_INET, socket.SOCK_STREAM)
    client = netlab_lab.node("ns1").socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            if server_key:
                server.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5sig("198.51.100.1", server_key))
            if client_key:
                client.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5sig("198.51.100.2", client_key))
        except OSError as exc:
            pytest.skip(f"this kernel has no TCP-MD5 (CONFIG_TCP_MD5SIG): {exc.strerror}")
        server.bind(("198.51.100.2", 179))
        server.listen(1)
        client.settimeout(1.5)  # the SYN, and its retransmission after 1 s
        with netlab_trace(netlab_lab) as t, pytest.raises(OSError):
            client.connect(("198.51.100.2", 179))
    finally:
        client.close()
        server.close()
    assert_dropped(t.result, reason(expected), at_least=1)
