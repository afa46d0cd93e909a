"""What netlab sent, added to a trace's drops: the headers a tracer could not read, and whose a
drop is that two labs' device names could both claim.

tracefs and perf see a drop's fields (location, reason, protocol), never its headers. But a
packet netlab injected is one netlab knows (:mod:`netlab.traffic.sent` logs every ``inject``):
a drop whose path starts with a transmit on that interface, in the trace's window, gets those
headers.
"""

from __future__ import annotations

from netlab.findings.draft import Draft
from netlab.headers import Packet
from netlab.runtime import journal
from netlab.tracers.placement.attribution import XMIT_EVENTS
from netlab.traffic.sent import Sent, between


def settle(result: Draft, sent: list[Sent], lab: str, start: float, end: float) -> None:
    """Claim the drops another lab could own too (``result.contested``) where what was sent says
    whose they are: the drop's path starts with a transmit on an interface netlab sent from in
    this lab during the trace, and no other lab's log names an interface of that name in the
    window. Two copies of one topology share every device name, and a trace run apart from the
    sender (``netlab trace`` in one terminal, ``netlab inject`` in another) has no process context
    to go by; what is still contested stays counted as ambiguous. ``sent``: this lab's log of
    the window (:func:`netlab.traffic.sent.between`)."""
    if not result.contested:
        return
    mine = {(s.node, s.ifname) for s in sent}
    if not mine:
        return
    theirs = {s.ifname for other in journal.all_labs() if other != lab for s in between(other, start, end)}
    kept = []
    for drop in result.contested:
        first = drop.path[0] if drop.path else None
        if (
            first is not None
            and first.event in XMIT_EVENTS
            and (first.node, first.device) in mine
            and first.device not in theirs
        ):
            result.drops.append(drop)
            result.ambiguous -= 1
        else:
            kept.append(drop)
    result.contested = kept


def describe(result: Draft, sent: list[Sent]) -> None:
    """Give each drop of ``result`` whose headers its tracer could not read those of what netlab
    sent (``sent``, the lab's log of the window), where its path starts with a transmit on the
    interface netlab sent from and that interface sent one kind of packet in the window."""
    if not sent:
        return
    by_interface: dict[tuple[str, str], set[Packet]] = {}
    for s in sent:
        by_interface.setdefault((s.node, s.ifname), set()).add(s.packet)
    for i, drop in enumerate(result.drops):
        if drop.packet.src is not None or drop.packet.marker is not None or not drop.path:
            continue
        first = drop.path[0]
        if first.event not in XMIT_EVENTS or first.node is None:
            continue
        known = by_interface.get((first.node, first.device), set())
        if len(known) == 1:
            result.drops[i] = drop.evolve(packet=next(iter(known)))
