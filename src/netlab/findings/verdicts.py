"""A trace's verdicts on the frames a capture saw: a pcapng an engineer can hand on, where every
frame whose packet was dropped carries a comment Wireshark shows and filters
(``frame.comment contains "NETFILTER_DROP"``).

A drop is matched to a captured frame only on evidence: netlab's marker in the packet (bpftrace
reads it from the dropped skb; the same marker in a frame is the same packet), or the headers
bpftrace read (addresses, protocol, ports) on the device the drop was placed on, the latest such
frame seen there before the drop. What cannot be matched that way is not guessed: it is counted,
and the trace's own result still lists it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from netlab import marker
from netlab.headers import Packet, packet_of
from netlab.tracers.events import DropEvent, TraceResult
from netlab.traffic.capture import Seen
from netlab.traffic.pcapng import PcapngWriter

#: a frame is captured a little after the hop the tracer saw, never long after the drop
SLACK = 0.05


def comment(drop: DropEvent) -> str:
    """The packet comment of a dropped frame: what, where and why, in one line."""
    where = ", ".join(
        part
        for part in (
            f"node {drop.node}" if drop.node else "",
            f"device {drop.device}" if drop.device else "",
            f"at {drop.location}",
        )
        if part
    )
    text = f"netlab: dropped ({drop.reason or 'no reason: kernel before 5.17'}), {where}"
    return f"{text}, rule: {drop.rule}" if drop.rule else text


def _fits(seen: Packet, dropped: Packet) -> bool:
    """Do the frame's headers agree with every header the tracer read?"""
    facts = ("src", "dst", "l4", "sport", "dport")
    return all(getattr(dropped, f) is None or getattr(seen, f) == getattr(dropped, f) for f in facts)


def match(
    seen: Sequence[Seen], drops: Sequence[DropEvent], to_wall: Callable[[float], float] | None
) -> tuple[dict[int, DropEvent], int]:
    """Which frame (index into ``seen``) each drop was, and how many drops matched none.
    ``to_wall`` turns a drop's time into the capture's clock; None when the tracer's clock is
    not known (then only markers match)."""
    by_marker: dict[str, list[int]] = {}
    for i, s in enumerate(seen):
        found = marker.find(s.frame.data)
        if found is not None:
            by_marker.setdefault(str(found), []).append(i)
    headers: dict[int, Packet] = {}
    taken: dict[int, DropEvent] = {}
    missed = 0
    for drop in sorted(drops, key=lambda d: d.time):
        pick: int | None = None
        if drop.packet.marker is not None:
            free = [i for i in by_marker.get(drop.packet.marker, []) if i not in taken]
            here = [i for i in free if (seen[i].node, seen[i].ifname) == (drop.node, drop.device)]
            pool = here or free
            pick = pool[-1] if pool else None  # the last place the packet was seen
        elif drop.packet.src is not None and drop.device is not None and to_wall is not None:
            before = to_wall(drop.time) + SLACK
            for i in range(len(seen) - 1, -1, -1):
                s = seen[i]
                if i in taken or (s.node, s.ifname) != (drop.node, drop.device) or s.frame.timestamp > before:
                    continue
                if i not in headers:
                    headers[i] = packet_of(s.frame.data, 0)
                if _fits(headers[i], drop.packet):
                    pick = i
                    break
        if pick is None:
            missed += 1
        else:
            taken[pick] = drop
    return taken, missed


def monotonic_to_wall() -> Callable[[float], float]:
    """CLOCK_MONOTONIC seconds (bpftrace's nsecs) to the wall clock the capture stamps with."""
    offset = time.time() - time.monotonic()
    return lambda t: t + offset


def write(path: Path, seen: Sequence[Seen], result: TraceResult, to_wall: Callable[[float], float] | None) -> str:
    """Write the pcapng; returns a line saying what it holds."""
    taken, missed = match(seen, [*result.drops, *result.unplaced], to_wall)
    writer = PcapngWriter(path)
    try:
        for i, s in enumerate(seen):
            drop = taken.get(i)
            writer.write(f"{s.node}:{s.ifname}", s.frame, comment(drop) if drop else None)
    finally:
        writer.close()
    said = f"{path}: {len(seen)} frames, {len(taken)} with the verdict of their drop"
    if missed:
        said += f"; {missed} drops matched no captured frame (no marker or headers to go by, or never captured)"
    return said
