"""Every frame of the scope's interfaces while a trace runs, for a pcapng whose dropped frames
carry their verdicts (``netlab trace --pcap``, ``--netlab-pcap``): a
:class:`~netlab.traffic.capture.LabCapture` as a collector."""

from __future__ import annotations

from pathlib import Path

from netlab.findings import verdicts
from netlab.scope import Scope
from netlab.tracers.events import TraceResult
from netlab.tracing.collector import Collector
from netlab.traffic.capture import LabCapture, Seen


class Capture(Collector):
    """A capture of every interface of the scope (lo aside)."""

    name = "capture"

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.seen: list[Seen] = []
        self._running: LabCapture | None = None

    def start(self) -> None:
        self._running = LabCapture(self.scope)

    def stop(self) -> None:
        if self._running is not None:
            self.seen = self._running.stop()
            self._running = None

    def write(self, path: Path, result: TraceResult, monotonic_times: bool) -> str:
        """The pcapng of what was captured, each dropped frame commented with its verdict;
        returns what was written. ``monotonic_times``: the drops' times are CLOCK_MONOTONIC."""
        to_wall = verdicts.monotonic_to_wall() if monotonic_times else None
        return verdicts.write(path, self.seen, result, to_wall)
