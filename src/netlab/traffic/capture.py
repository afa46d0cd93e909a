"""Capture on any lab interface, from Python or the CLI, with a ready barrier.

``Capture(...)`` returns (or ``with`` enters) only once its socket is bound with its filter
attached (see :mod:`netlab.traffic.packet`): a frame sent after that is never missed. Frames
are read by a background thread into memory, and optionally straight into a pcap file.
"""

from __future__ import annotations

import contextlib
import selectors
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from netlab import marker
from netlab.errors import NetlabError
from netlab.lab import Lab
from netlab.runtime import netlink
from netlab.scope import Scope
from netlab.traffic.packet import Frame, PacketSocket
from netlab.traffic.pcap import PcapWriter, write


class Capture:
    """Frames seen on one interface of one node, from the moment of construction."""

    def __init__(
        self,
        lab: Lab,
        node: str,
        ifname: str,
        *,
        expression: str | None = None,
        pcap: Path | None = None,
        limit: int | None = None,
    ) -> None:
        self.node = node
        self.ifname = ifname
        self.frames: list[Frame] = []
        self._limit = limit
        self._sock = PacketSocket.capture(lab.node(node).netns, ifname, expression)
        self._writer = PcapWriter(pcap) if pcap else None
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"capture {node}:{ifname}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            frame = self._sock.receive(timeout=0.05)
            if frame is None:
                continue
            with self._changed:
                self.frames.append(frame)
                if self._writer:
                    self._writer.write(frame)
                self._changed.notify_all()
            if self._limit is not None and len(self.frames) >= self._limit:
                break

    def wait(self, count: int, timeout: float) -> list[Frame]:
        """Block until ``count`` frames arrived or ``timeout`` passed; returns what arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.frames) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return list(self.frames)

    def follow(self, count: int | None = None, timeout: float | None = None) -> Iterator[Frame]:
        """Each frame as it arrives, until ``count`` frames or ``timeout`` seconds (None: until
        the caller stops, e.g. on Ctrl-C, which the waits let through every 0.2 s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        shown = 0
        while count is None or shown < count:
            with self._changed:
                while len(self.frames) <= shown:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return
                    self._changed.wait(0.2 if left is None else min(left, 0.2))
                batch = self.frames[shown:] if count is None else self.frames[shown:count]
            for frame in batch:
                shown += 1
                yield frame

    def marked(self, run: int) -> list[Frame]:
        """Captured frames carrying a marker of injection run ``run``."""
        with self._changed:
            return [f for f in self.frames if (m := marker.find(f.data)) is not None and m.run == run]

    def save(self, path: Path) -> int:
        """Write what was captured so far to a pcap file (for a capture started without
        ``pcap=``); returns how many frames."""

        with self._changed:
            frames = list(self.frames)
        return write(path, frames)

    def stop(self) -> list[Frame]:
        """Stop capturing; returns everything captured."""
        self._stop.set()
        self._thread.join(timeout=5)
        if self._thread.is_alive():  # pragma: no cover - receive() polls every 50 ms
            raise NetlabError(f"capture on {self.node}:{self.ifname} did not stop")
        self._sock.close()
        if self._writer:
            self._writer.close()
        return list(self.frames)

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


@dataclass(frozen=True)
class Seen:
    """A frame as one interface of one node saw it."""

    node: str
    ifname: str
    frame: Frame


class LabCapture:
    """Every frame on every interface of a lab (lo aside; devices added since it came up too),
    from construction to :meth:`stop`: one packet socket per interface, read by one thread.

    A packet socket on a device is a protocol handler of its own: while it is open, a frame no
    other protocol wants is delivered to it instead of being dropped (UNHANDLED_PROTO, and
    ``rx_dropped``, stay still, as they do under tcpdump). Keeps at most ``limit`` frames and
    counts the rest in ``missed``.
    """

    def __init__(self, lab: Scope, limit: int = 100_000) -> None:
        self.seen: list[Seen] = []
        self.missed = 0
        self._limit = limit
        self._socks: dict[int, tuple[str, str, PacketSocket]] = {}
        self._stop = threading.Event()
        try:
            for node in lab.nodes.values():
                with contextlib.closing(netlink.open_route_socket(node.netns)) as route:
                    names = sorted(link.ifname for link in netlink.dump_links(route).values() if link.ifname != "lo")
                for ifname in names:
                    sock = PacketSocket.capture(node.netns, ifname)
                    self._socks[sock.sock.fileno()] = (node.name, ifname, sock)
        except BaseException:
            self._close()
            raise
        self._thread = threading.Thread(target=self._run, name="lab capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with selectors.DefaultSelector() as sel:
            for fd in self._socks:
                sel.register(fd, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.05):
                    self._take(self._socks[key.fd])
            for entry in self._socks.values():  # what arrived before the stop
                while self._take(entry):
                    pass

    def _take(self, entry: tuple[str, str, PacketSocket]) -> bool:
        node, ifname, sock = entry
        frame = sock.receive(timeout=0)
        if frame is None:
            return False
        if len(self.seen) < self._limit:
            self.seen.append(Seen(node, ifname, frame))
        else:
            self.missed += 1
        return True

    def stop(self) -> list[Seen]:
        """Stop capturing; every frame seen, in the order they were read."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._close()
        return sorted(self.seen, key=lambda s: s.frame.timestamp)

    def _close(self) -> None:
        for _node, _ifname, sock in self._socks.values():
            sock.close()
        self._socks.clear()
