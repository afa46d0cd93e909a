"""What netlab itself sent into a lab, so that a tracer which cannot read packets can still say
what a dropped one was.

tracefs and perf see a drop's fields (location, reason, protocol), never its headers. But a
packet netlab injected is one netlab knows: ``inject`` appends one line per call to
``/run/netlab/LAB.sent`` (when, from which node and interface, and the headers of what it sent,
parsed from the frame itself), and at the end of a trace a drop whose path starts with a
transmit on that interface, in that window, gets those headers (its marker reads
``RUN:*``: one of that run's frames). A line per call, in its own file rather than the lab's
journal (which records what must be removed); ``down`` removes it with the journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

from netlab.runtime import journal
from netlab.runtime.journal import sent_path
from netlab.tracers.events import Packet, TraceResult

#: the path events of a frame leaving an interface
XMIT = frozenset({"net_dev_start_xmit", "net_dev_queue"})


@dataclass(frozen=True)
class Sent:
    """One ``inject`` call: its frames' headers, from where, when (wall clock)."""

    time: float
    node: str
    ifname: str
    packet: Packet


def record(lab: str, node: str, ifname: str, packet: Packet) -> None:
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


def settle(result: TraceResult, lab: str, start: float, end: float) -> None:
    """Claim the drops another lab could own too (``result.contested``) where what was sent says
    whose they are: the drop's path starts with a transmit on an interface netlab sent from in
    this lab during the trace, and no other lab's log names an interface of that name in the
    window. Two copies of one topology share every device name, and a trace run apart from the
    sender (``netlab trace`` in one terminal, ``netlab inject`` in another) has no process context
    to go by; what is still contested stays counted as ambiguous (in place)."""
    if not result.contested:
        return
    mine = {(s.node, s.ifname) for s in between(lab, start, end)}
    if not mine:
        return
    theirs = {s.ifname for other in journal.all_labs() if other != lab for s in between(other, start, end)}
    kept = []
    for drop in result.contested:
        first = drop.path[0] if drop.path else None
        if (
            first is not None
            and first.event in XMIT
            and (first.node, first.device) in mine
            and first.device not in theirs
        ):
            result.drops.append(drop)
            result.ambiguous -= 1
        else:
            kept.append(drop)
    result.contested = kept
    result.drops.sort(key=lambda d: d.time)


def describe(result: TraceResult, lab: str, start: float, end: float) -> None:
    """Give each drop of ``result`` whose headers its tracer could not read those of what netlab
    sent, where its path starts with a transmit on the interface netlab sent from and that
    interface sent one kind of packet in the window (in place)."""
    sent = between(lab, start, end)
    if not sent:
        return
    by_interface: dict[tuple[str, str], set[Packet]] = {}
    for s in sent:
        by_interface.setdefault((s.node, s.ifname), set()).add(s.packet)
    for i, drop in enumerate(result.drops):
        if drop.packet.src is not None or drop.packet.marker is not None or not drop.path:
            continue
        first = drop.path[0]
        if first.event not in XMIT or first.node is None:
            continue
        known = by_interface.get((first.node, first.device), set())
        if len(known) == 1:
            result.drops[i] = drop.evolve(packet=next(iter(known)))


def _fields(packet: Packet) -> dict[str, Any]:
    return {k: v for k, v in asdict(packet).items() if v is not None}
