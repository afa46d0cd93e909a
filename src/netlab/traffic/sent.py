"""What netlab itself sent into a lab, so that a tracer which cannot read packets can still say
what a dropped one was.

tracefs and perf see a drop's fields (location, reason, protocol), never its headers. But a
packet netlab injected is one netlab knows: ``inject`` appends one line per call to
``/run/netlab/LAB.sent`` (when, from which node and interface, and the headers of what it sent,
parsed from the frame itself), and at the end of a trace a drop whose path starts with a
transmit on that interface, in that window, gets those headers (:mod:`netlab.findings.sent`).
A line per call, in its own file rather than the lab's
journal (which records what must be removed); ``down`` removes it with the journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

from netlab.headers import Packet
from netlab.runtime.journal import sent_path


@dataclass(frozen=True)
class Sent:
    """One ``inject`` call: its frames' headers, from where, when (wall clock)."""

    time: float
    node: str
    ifname: str
    packet: Packet


def append(lab: str, node: str, ifname: str, packet: Packet) -> None:
    """Append one call's line (one ``write(2)`` on an ``O_APPEND`` fd; a lab that is not up,
    or a run directory that cannot be written, is no reason to fail the send)."""
    entry = {"time": time.time(), "node": node, "ifname": ifname, "packet": _fields(packet)}
    with contextlib.suppress(OSError):
        fd = os.open(sent_path(lab), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
        finally:
            os.close(fd)


def between(lab: str, start: float, end: float) -> list[Sent]:
    """What was sent into ``lab`` from ``start`` to ``end`` (wall clock); malformed lines skipped."""
    try:
        text = sent_path(lab).read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            data: dict[str, Any] = json.loads(line)
            sent = Sent(float(data["time"]), str(data["node"]), str(data["ifname"]), Packet(**data["packet"]))
        except (ValueError, KeyError, TypeError):
            continue
        if start <= sent.time <= end:
            out.append(sent)
    return out


def _fields(packet: Packet) -> dict[str, Any]:
    return {k: v for k, v in asdict(packet).items() if v is not None}
