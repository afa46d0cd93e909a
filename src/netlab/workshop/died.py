"""Where a failed check's own packets died, in the words the attendee needs next.

A ``ping``, ``flow`` or ``drop`` check sends its own traffic under a trace (the lab is otherwise
quiet), so when it fails the trace already knows the answer the hint used to send the attendee
off to find: the node, the device, the kernel function, the drop reason and, where a firewall
dropped it, the exact rule or chain policy. This turns a trace result into those lines, with the
``netlab explain`` command for each reason.
"""

from __future__ import annotations

from netlab.tracers.events import DropEvent, TraceResult, reason_text

#: drops shown per failed check; the rest are counted
SHOWN = 4


def _own(drop: DropEvent, addresses: frozenset[str]) -> bool:
    """Whether ``drop`` can be one of the check's packets: addresses the tracer read must be the
    check's own (tracefs reads none, and then the quiet lab's drops are the check's)."""
    known = {a for a in (drop.packet.src, drop.packet.dst) if a is not None}
    return not addresses or not known or bool(known & addresses)


def where_it_died(result: TraceResult, addresses: frozenset[str] = frozenset()) -> list[str]:
    """One line per place the check's packets died (most first), then the explain commands.

    ``addresses``: the check's endpoints, to leave out drops of other traffic where the tracer
    read the packet's addresses.
    """
    drops = [d for d in result.drops if _own(d, addresses)]
    if not drops:
        return []
    places: dict[tuple[str | None, str | None, str, str | None, str | None], int] = {}
    for d in drops:
        key = (d.node, d.device, d.base, d.reason, d.rule)
        places[key] = places.get(key, 0) + 1
    ranked = sorted(places.items(), key=lambda kv: -kv[1])
    lines = []
    for (node, device, function, reason, rule), count in ranked[:SHOWN]:
        where = f"node {node or '?'}" + (f", device {device}" if device else "")
        packets = f"{count} packet{'s' if count != 1 else ''}"
        lines.append(f"died: {where}, in {function}, reason {reason_text(reason)} ({packets})")
        if rule is not None:
            lines.append(f"  dropped by {rule}")
    if len(ranked) > SHOWN:
        lines.append(f"... and {sum(n for _k, n in ranked[SHOWN:])} more elsewhere (netlab trace shows them all)")
    reasons = sorted({r for (_n, _d, _f, r, _rule) in places if r is not None})
    if reasons:
        lines.append(f"why: netlab explain {' '.join(reasons)}")
    return lines
