"""One line per frame, for ``netlab capture``: scapy's summary plus the marker, if any."""

from __future__ import annotations

import time

from scapy.layers.l2 import Ether

from netlab import marker
from netlab.traffic.packet import Frame


def summary(frame: Frame) -> str:
    """``12:00:01.123456 > Ether / IP / UDP ... [marker 1a2b3c4d:0]``."""

    stamp = time.strftime("%H:%M:%S", time.localtime(frame.timestamp)) + f"{frame.timestamp % 1:.6f}"[1:]
    direction = ">" if frame.outgoing else "<"
    text = Ether(frame.data).summary()
    found = marker.find(frame.data)
    tag = f" [marker {found}]" if found else ""
    return f"{stamp} {direction} {text} ({frame.wire_length} bytes){tag}"
