"""From time-ordered records to attributed drops and per-packet paths.

A packet is followed by its skb address: path events append hops, ``consume_skb`` ends a
delivered packet's path, ``kfree_skb`` ends it with a drop. The hops' device names are decoded
against the lab's link graph (:mod:`netlab.tracers.attribution`); where a packet left a
bridge port after arriving on another port of the same bridge, the bridge is inserted as an
inferred hop (no tracepoint fires for bridge forwarding itself).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from netlab.tracers.attribution import LabMap, claims, continues, decode, last_hop
from netlab.tracers.events import DropEvent, Hop, Location, Packet
from netlab.tracers.records import Record

DROP_PLUMBING = frozenset(
    {
        "trace_event_raw_event_kfree_skb",
        "sk_skb_reason_drop",
        "kfree_skb_reason",
        "kfree_skb_list_reason",
        "__kfree_skb_reason",
        "kfree_skb",
    }
)
PATH_EVENTS = frozenset({"net_dev_start_xmit", "netif_rx", "netif_receive_skb", "net_dev_queue"})
MAX_OPEN = 200_000


_TRACING_FRAME = ("trace_", "__traceiter_", "__bpf_trace", "perf_trace_", "bpf_trace_")


def trim_stack(stack: list[str]) -> tuple[str, ...]:
    """The stack from the function that dropped, without the tracing and freeing frames above it
    (which frames those are depends on how many tracers have the event enabled)."""
    i = 0
    while i < len(stack) and (stack[i].split("+", 1)[0] in DROP_PLUMBING or stack[i].startswith(_TRACING_FRAME)):
        i += 1
    return tuple(stack[i:])


class Correlator:
    """Feeds on records of one lab's trace; collects its drops and completed paths."""

    def __init__(self, mine: LabMap, others: Iterable[LabMap], tracer: str) -> None:
        self.mine = mine
        self.others = list(others)
        self.tracer = tracer
        self.open: OrderedDict[str, list[tuple[float, str, str]]] = OrderedDict()
        self.drops: list[DropEvent] = []
        self.paths: list[tuple[Hop, ...]] = []
        self.unattributed = 0
        self.ambiguous = 0
        self.ambiguous_paths: list[list[tuple[str, str]]] = []

    def feed(self, records: Iterable[Record]) -> list[DropEvent]:
        """Consume records (time-ordered); returns the drops they completed."""
        new: list[DropEvent] = []
        for rec in records:
            addr = rec.skbaddr
            if addr is None:
                continue
            if rec.event in PATH_EVENTS and rec.device:
                hops = self.open.pop(addr, [])
                if hops and not continues(self.mine, [(e, d) for _t, e, d in hops], rec.event, rec.device):
                    hops = []  # a recycled skb address: this is a new packet
                hops.append((rec.time, rec.event, rec.device))
                self.open[addr] = hops
                if len(self.open) > MAX_OPEN:
                    self.open.popitem(last=False)
            elif rec.event == "consume_skb":
                hops = self.open.pop(addr, [])
                if hops:
                    path = self._decoded(hops)
                    if path:
                        self.paths.append(path)
            elif rec.event == "kfree_skb":
                drop = self._drop(rec, self.open.pop(addr, []))
                if drop is not None:
                    self.drops.append(drop)
                    new.append(drop)
        return new

    def _decoded(self, hops: list[tuple[float, str, str]]) -> tuple[Hop, ...] | None:
        names = [(ev, dev) for _t, ev, dev in hops]
        found = decode(self.mine, names)
        if not found:
            return None
        nodes = found[0] if len(found) == 1 else None
        out: list[Hop] = []
        for i, (t, ev, dev) in enumerate(hops):
            here = nodes[i] if nodes else None
            if nodes and i > 0 and ev in ("net_dev_start_xmit", "net_dev_queue"):
                prev = nodes[i - 1]
                bridge = self.mine.bridge_of.get(prev)
                if bridge and prev[0] == nodes[i][0] and self.mine.bridge_of.get(nodes[i]) == bridge:
                    out.append(Hop(t, "bridge", bridge, prev[0], inferred=True))
            out.append(Hop(t, ev, dev, here[0] if here else None))
        return tuple(out)

    def _drop(self, rec: Record, hops: list[tuple[float, str, str]]) -> DropEvent | None:
        names = [(ev, dev) for _t, ev, dev in hops]
        node: str | None = None
        device: str | None = None
        if names:
            where = last_hop(self.mine, names)
            if where is None:
                self.unattributed += 1
                return None
            if not isinstance(where, tuple):  # explanations disagree on where it died
                self.ambiguous += 1
                self.ambiguous_paths.append(names)
                return None
            elsewhere = any(isinstance(last_hop(o, names), tuple) for o in self.others)
            if elsewhere and not claims(self.mine, rec.context):
                self.ambiguous += 1
                return None
            node, device = where
        else:
            inode = rec.context[0] if rec.context else None
            if inode is None or inode not in self.mine.netns_inodes:
                self.unattributed += 1
                return None
            node = self.mine.netns_inodes[inode]
        path = self._decoded(hops) or ()
        protocol = int(rec.fields["protocol"]) if rec.fields.get("protocol", "").isdigit() else None
        return DropEvent(
            time=rec.time,
            location=Location.parse(rec.fields.get("location", "?")),
            reason=rec.fields.get("reason"),  # None: the kernel has no drop reasons (before 5.17)
            node=node,
            device=device,
            packet=Packet(protocol=protocol),
            stack=trim_stack(rec.stack),
            path=path,
            pid=rec.pid,
            tracer=self.tracer,
        )
