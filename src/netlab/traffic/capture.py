"""Capture on any lab interface, from Python or the CLI, with a ready barrier.

``Capture(...)`` returns (or ``with`` enters) only once its socket is bound with its filter
attached (see :mod:`netlab.traffic.packet`): a frame sent after that is never missed. Frames
are read by a background thread into memory, and optionally straight into a pcap file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from netlab import marker
from netlab.errors import NetlabError
from netlab.lab import Lab
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
