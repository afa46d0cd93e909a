"""One object with every traffic action on a live lab, for scenarios and notebooks."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from netlab.lab import Lab
from netlab.traffic.capture import Capture
from netlab.traffic.flow import FlowResult, tcp_flow
from netlab.traffic.inject import Injection, inject, send
from netlab.traffic.ping import PingResult, ping
from netlab.traffic.resolve import interface_mac


class Traffic:
    """Traffic helpers bound to one lab."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def inject(self, node: str, ifname: str, recipe: str, **options: Any) -> Injection:
        """Send frames of a recipe; see :func:`netlab.traffic.inject.inject`."""
        return inject(self.lab, node, ifname, recipe, **options)

    def send(self, node: str, ifname: str, frames: Iterable[Any]) -> int:
        """Send raw frames or scapy packets."""
        return send(self.lab, node, ifname, frames)

    def capture(self, node: str, ifname: str, expression: str | None = None, pcap: Path | None = None) -> Capture:
        """Start a capture (ready when this returns)."""
        return Capture(self.lab, node, ifname, expression=expression, pcap=pcap)

    def flow(self, src: str, dst: str, size: int, **options: Any) -> FlowResult:
        """A verified TCP flow; see :func:`netlab.traffic.flow.tcp_flow`."""
        return tcp_flow(self.lab, src, dst, size, **options)

    def ping(self, node: str, dst: str, **options: Any) -> PingResult:
        """ICMP echo with replies awaited; see :func:`netlab.traffic.ping.ping`."""
        return ping(self.lab, node, dst, **options)

    def mac(self, node: str, ifname: str) -> str:
        """The MAC of an interface of the lab."""
        return interface_mac(self.lab.node(node).netns, ifname)
