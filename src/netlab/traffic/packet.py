"""AF_PACKET sockets inside a node: send bursts of frames, receive with kernel timestamps.

A socket is created while the thread is inside the node's namespace and bound to the
interface by name, which the kernel resolves in *that* namespace; an interface called ``eth0``
in a lab is therefore never confused with the host's ``eth0``. One socket serves a whole burst.

Capture sockets are opened with protocol 0, which receives nothing, get their BPF filter, and
only then are bound with ETH_P_ALL: when :meth:`PacketSocket.capture` returns, every later
frame on the interface that passes the filter is queued, and nothing from before slipped in
unfiltered. That is the ready barrier captures rely on.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import select
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

from netlab.errors import NetlabError
from netlab.runtime import wait
from netlab.runtime.netns import entered
from netlab.traffic.bpf import compile_filter

ETH_P_ALL = 0x0003
SOL_SOCKET = 1
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
SO_RCVBUF = 8
PACKET_OUTGOING = 4
MAX_FRAME = 65536


@dataclass(frozen=True)
class Frame:
    """A frame seen on an interface."""

    data: bytes
    timestamp: float
    outgoing: bool
    wire_length: int


class PacketSocket:
    """A packet socket bound to one interface of one namespace."""

    def __init__(self, sock: socket.socket, netns: str, ifname: str) -> None:
        self.sock = sock
        self.netns = netns
        self.ifname = ifname

    @classmethod
    def sender(cls, netns: str, ifname: str) -> PacketSocket:
        """A socket to send frames on ``ifname`` (it receives nothing)."""
        with entered(netns):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                sock.bind((ifname, 0))
            except OSError as exc:
                sock.close()
                raise _no_interface(netns, ifname, exc) from None
        return cls(sock, netns, ifname)

    @classmethod
    def capture(cls, netns: str, ifname: str, expression: str | None = None, rcvbuf: int = 8 << 20) -> PacketSocket:
        """A socket that sees every frame on ``ifname`` matching ``expression`` from now on."""
        program = compile_filter(expression) if expression else None
        with entered(netns):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                sock.setsockopt(SOL_SOCKET, SO_RCVBUF, rcvbuf)
                sock.setsockopt(SOL_SOCKET, SO_TIMESTAMPNS, 1)
                if program is not None:
                    _attach(sock, program)
                sock.bind((ifname, ETH_P_ALL))
            except OSError as exc:
                sock.close()
                raise _no_interface(netns, ifname, exc) from None
        return cls(sock, netns, ifname)

    def send(self, frames: Iterable[bytes]) -> int:
        """Send every frame on the one socket; returns how many went out.

        ENOBUFS means the device's egress did not take the frame: a full queue, which is
        retried, or a qdisc or tc filter that drops it, which retrying only repeats (each try
        is one more drop in a trace). A frame refused for as long as
        :data:`~netlab.runtime.wait.FRAME_REFUSED` allows ends the send with that said."""
        sent = 0
        for frame in frames:
            try:
                self._send(frame)
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    raise NetlabError(
                        f"{self.netns}:{self.ifname}: the device's egress refused frame {sent + 1} for"
                        f" {wait.FRAME_REFUSED.timeout:g} s (ENOBUFS): a qdisc or tc filter dropping it?"
                        f" (tc -s qdisc show dev {self.ifname} inside the node); {sent} frames went out",
                    ) from None
                raise NetlabError(f"{self.netns}:{self.ifname}: sending a frame failed: {exc.strerror}") from None
            sent += 1
        return sent

    def _send(self, frame: bytes) -> None:
        try:
            self.sock.send(frame)
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            # retried only now: a tenacity loop for every frame of a burst costs more than the send
            wait.FRAME_REFUSED.retry(functools.partial(self.sock.send, frame), wait.TRANSIENT_SEND)

    def receive(self, timeout: float | None) -> Frame | None:
        """The next frame, or None when ``timeout`` seconds pass without one."""
        if timeout is not None:
            ready, _, _ = select.select([self.sock], [], [], max(timeout, 0))
            if not ready:
                return None
        data, ancillary, _flags, address = self.sock.recvmsg(MAX_FRAME, 64, socket.MSG_TRUNC)
        stamp = time.time()
        for level, kind, value in ancillary:
            if level == SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(value) >= 16:
                sec, nsec = struct.unpack("qq", value[:16])
                stamp = sec + nsec / 1e9
        return Frame(
            data=data[:MAX_FRAME], timestamp=stamp, outgoing=address[2] == PACKET_OUTGOING, wire_length=len(data)
        )

    def close(self) -> None:
        """Close the socket."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> PacketSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _attach(sock: socket.socket, program: bytes) -> None:

    buf = ctypes.create_string_buffer(program)
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buf))
    sock.setsockopt(SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _no_interface(netns: str, ifname: str, exc: OSError) -> NetlabError:
    if exc.errno in (errno.ENODEV, errno.ENXIO):
        return NetlabError(f"no interface '{ifname}' in namespace {netns}")
    return NetlabError(f"{netns}:{ifname}: {exc.strerror}")
