"""TCP flows between two nodes over real kernel sockets, verified end to end.

Both sockets are ordinary kernel TCP sockets, each created inside its node's namespace (the
thread enters the namespace only to create the socket). The client sends a deterministic byte
stream; the server hashes what it receives and sends the digest back, so a flow reports not
only bytes but whether every byte arrived intact and in order. Retransmissions and RTT come
from the sender's TCP_INFO, read after the transfer.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from netlab.errors import NetlabError
from netlab.lab import Lab
from netlab.traffic.resolve import owner_of

TCP_INFO = 11
CHUNK = 64 * 1024
_TCPI_RTT = 68
_TCPI_TOTAL_RETRANS = 100
_TCPI_SEGS_OUT = 136


@dataclass(frozen=True)
class FlowResult:
    """The outcome of one flow."""

    src: str
    dst: str
    address: str
    port: int
    bytes_sent: int
    bytes_received: int
    verified: bool
    seconds: float
    retransmissions: int
    segments_out: int
    rtt_ms: float

    @property
    def throughput_mbit(self) -> float:
        """Goodput in Mbit/s."""
        return self.bytes_received * 8 / self.seconds / 1e6 if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived throughput."""
        return {**asdict(self), "throughput_mbit": round(self.throughput_mbit, 2)}


def pattern(size: int) -> bytes:
    """The deterministic stream the client sends (sha256 chained blocks)."""
    out = bytearray()
    block = b"netlab"
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:size])


def tcp_info(sock: socket.socket) -> tuple[int, int, float]:
    """(total retransmissions, segments out, smoothed RTT in ms) of a TCP socket."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 256)
    rtt_us = struct.unpack_from("I", raw, _TCPI_RTT)[0]
    retrans = struct.unpack_from("I", raw, _TCPI_TOTAL_RETRANS)[0]
    segs_out = struct.unpack_from("I", raw, _TCPI_SEGS_OUT)[0] if len(raw) >= _TCPI_SEGS_OUT + 4 else 0
    return retrans, segs_out, rtt_us / 1000


def _destination(lab: Lab, dst: str, address: str | None) -> str:
    if address is not None:
        if owner_of(lab, address) is None:
            raise NetlabError(f"no node of lab '{lab.name}' has address {address}")
        return address
    found = lab.node(dst).addresses(version=4) or lab.node(dst).addresses(version=6)
    if not found:
        raise NetlabError(f"node '{dst}' has no address to connect to")
    return found[0]


def tcp_flow(
    lab: Lab,
    src: str,
    dst: str,
    size: int,
    *,
    address: str | None = None,
    port: int = 5201,
    timeout: float = 30.0,
    connect_timeout: float = 5.0,
) -> FlowResult:
    """Send ``size`` bytes from node ``src`` to node ``dst`` over TCP and verify them."""
    if size <= 0:
        raise NetlabError(f"--bytes must be positive, got {size}")
    target = _destination(lab, dst, address)
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    data = pattern(size)
    server = lab.node(dst).socket(family, socket.SOCK_STREAM)
    client = lab.node(src).socket(family, socket.SOCK_STREAM)
    outcome: dict[str, Any] = {}
    with contextlib.closing(server), contextlib.closing(client):
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind((target, port))
        except OSError as exc:
            raise NetlabError(f"cannot listen on {target}:{port} in node '{dst}': {exc.strerror}") from None
        server.listen(1)
        server.settimeout(connect_timeout + timeout)
        receiver = threading.Thread(target=_serve, args=(server, size, timeout, outcome), daemon=True)
        receiver.start()
        client.settimeout(connect_timeout)
        started = time.monotonic()
        try:
            client.connect((target, port))
        except (TimeoutError, OSError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror
            raise NetlabError(
                f"TCP connect from '{src}' to {target}:{port} ({dst}) {reason} after {connect_timeout:g}s",
                hint="traffic is dropped on the path: netlab trace tells where",
            ) from None
        client.settimeout(timeout)
        try:
            client.sendall(data)
            client.shutdown(socket.SHUT_WR)
            digest = _recv_exact(client, 32)
        except (TimeoutError, OSError) as exc:
            raise NetlabError(f"TCP flow {src} -> {dst} stalled: {exc}") from None
        seconds = time.monotonic() - started
        retrans, segs_out, rtt = tcp_info(client)
        receiver.join(timeout=5)
    if "error" in outcome:
        raise NetlabError(f"TCP flow {src} -> {dst}: receiver failed: {outcome['error']}")
    return FlowResult(
        src=src,
        dst=dst,
        address=target,
        port=port,
        bytes_sent=size,
        bytes_received=outcome.get("received", 0),
        verified=digest == hashlib.sha256(data).digest() and outcome.get("received") == size,
        seconds=seconds,
        retransmissions=retrans,
        segments_out=segs_out,
        rtt_ms=rtt,
    )


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _serve(server: socket.socket, size: int, timeout: float, outcome: dict[str, Any]) -> None:
    try:
        conn, _ = server.accept()
    except OSError as exc:
        outcome["error"] = f"no connection: {exc}"
        return
    with conn:
        conn.settimeout(timeout)
        digest = hashlib.sha256()
        received = 0
        try:
            while True:
                chunk = conn.recv(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                received += len(chunk)
            conn.sendall(digest.digest())
        except OSError as exc:
            outcome["error"] = str(exc)
        outcome["received"] = received
