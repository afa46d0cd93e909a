"""From time-ordered records to attributed drops and per-packet paths.

A packet is followed by its skb address: path events append hops, ``consume_skb`` ends a
delivered packet's path, ``kfree_skb`` ends it with a drop. The hops' device names are decoded
against the lab's link graph (:mod:`netlab.tracers.placement.attribution`); where a packet left a
bridge port after arriving on another port of the same bridge, the bridge is inserted as an
inferred hop (no tracepoint fires for bridge forwarding itself).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from functools import lru_cache

from netlab.headers import Packet
from netlab.tracers.decode.records import Record
from netlab.tracers.events import DropEvent, Hop, Location, TraceResult
from netlab.tracers.kernel import tracepoints
from netlab.tracers.placement.attribution import XMIT_EVENTS, LabMap, claims, decode, last_hop

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
MAX_OPEN = 200_000
#: drops the lab could not claim, kept (with node None) for a rule counter to place; the rest
#: are only counted
UNPLACED_KEEP = 10_000
UNATTRIBUTED, AMBIGUOUS = "unattributed", "ambiguous"
#: a path this lab explains in one way, but another lab that is up could explain too, and the
#: process context does not say whose it is; kept placed, for what netlab sent to settle
#: (:func:`netlab.findings.sent.settle`), and counted as ambiguous until then
CONTESTED = "contested"


_TRACING_FRAME = ("trace_", "__traceiter_", "__bpf_trace", "perf_trace_", "bpf_trace_")


def trim_stack(stack: list[str]) -> tuple[str, ...]:
    """The stack from the function that dropped, without the tracing and freeing frames above it
    (which frames those are depends on how many tracers have the event enabled)."""
    i = 0
    while i < len(stack) and (stack[i].split("+", 1)[0] in DROP_PLUMBING or stack[i].startswith(_TRACING_FRAME)):
        i += 1
    return tuple(stack[i:])


@lru_cache(maxsize=4096)
def location_of(text: str) -> Location:
    return Location.parse(text)


@lru_cache(maxsize=256)
def packet_of(protocol: str) -> Packet:
    return Packet(protocol=int(protocol) if protocol.isdigit() else None)


@contextlib.contextmanager
def without_collection() -> Iterator[None]:
    """No garbage collection while a trace is turned into events. The objects made (records,
    drops, their paths' hops) hold no cycles, but each thousand of them starts a collection that
    walks the whole heap, which they grow: two thirds of the analysis of a 200,000-drop flood."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class Correlator:
    """Feeds on records of one lab's trace; collects its drops and completed paths."""

    def __init__(self, mine: LabMap, others: Iterable[LabMap], tracer: str) -> None:
        self.mine = mine
        self.others = list(others)
        self.tracer = tracer
        #: packets in flight by skb address: their hops' (event, device) and the hops' times
        #: (a plain dict keeps insertion order, so the oldest is evicted first)
        self.open: dict[str, tuple[tuple[tuple[str, str], ...], list[float]]] = {}
        self.drops: list[DropEvent] = []
        self.paths: list[tuple[Hop, ...]] = []
        self.unattributed = 0
        self.ambiguous = 0
        self.unplaced: list[DropEvent] = []
        #: drops placed in this lab that another lab could own too (the first UNPLACED_KEEP)
        self.contested: list[DropEvent] = []
        self.records = 0
        #: where a path ends in this lab, and whether another lab's could end there too
        self._placed: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str] | str | None, bool]] = {}
        self._shapes: dict[tuple[tuple[str, str], ...], list[tuple[int, str, str, str | None, bool]]] = {}

    def result(self, seconds: float, lost: int = 0, notes: tuple[str, ...] = ()) -> TraceResult:
        """What the records fed so far show of the lab, as the tracer's result."""
        return TraceResult(
            self.tracer,
            self.mine.lab,
            drops=tuple(self.drops),
            paths=tuple(self.paths),
            lost=lost,
            unattributed=self.unattributed,
            ambiguous=self.ambiguous,
            seconds=seconds,
            events=self.records,
            unplaced=tuple(self.unplaced),
            contested=tuple(self.contested),
            notes=notes,
        )

    def feed(self, records: Iterable[Record]) -> list[DropEvent]:
        """Consume records (time-ordered); returns the drops they completed."""
        with without_collection():
            return self._feed(records)

    def _feed(self, records: Iterable[Record]) -> list[DropEvent]:
        new: list[DropEvent] = []
        mine, opened = self.mine, self.open
        for rec in records:
            self.records += 1
            fields = rec.fields
            addr = fields.get("skbaddr")
            if addr is None:
                continue
            event = rec.event
            if event in tracepoints.PATH_NAMES:
                device = fields.get("dev") or fields.get("name")
                if not device:
                    continue
                names, times = opened.pop(addr, ((), []))
                hop = (event, device)
                longer = (*names, hop)
                if names and not (mine.knows(device) and decode(mine, longer)):
                    # skb addresses are recycled, sometimes without a free we see (deferred and
                    # cached frees), so a new packet can inherit an old one's address: a hop no
                    # path of the lab reaches from the previous ones, or on a device the lab does
                    # not have, starts a new packet (which, if it then dies, is not this lab's)
                    longer, times = (hop,), []
                times.append(rec.time)
                opened[addr] = (longer, times)
                if len(opened) > MAX_OPEN:
                    del opened[next(iter(opened))]
            elif event == "consume_skb":
                names, times = self.open.pop(addr, ((), []))
                if names:
                    path = self._decoded(names, times)
                    if path:
                        self.paths.append(path)
            elif event == "kfree_skb":
                names, times = self.open.pop(addr, ((), []))
                drop = self._drop(rec, names, times)
                if drop is not None:
                    self.drops.append(drop)
                    new.append(drop)
        return new

    def _decoded(self, names: tuple[tuple[str, str], ...], times: list[float]) -> tuple[Hop, ...] | None:
        shape = self._shapes.get(names)
        if shape is None:
            if len(self._shapes) >= MAX_OPEN:
                self._shapes.clear()
            shape = self._shapes[names] = self._shape(names)
        if not shape:
            return None
        return tuple(Hop(times[i], ev, dev, node, inferred) for i, ev, dev, node, inferred in shape)

    def _shape(self, names: tuple[tuple[str, str], ...]) -> list[tuple[int, str, str, str | None, bool]]:
        """A path's hops without their times (the same for every packet that took it): each
        hop's node where one decoding fits, with the bridge inferred where a frame entered one
        port and left another; hop i takes the time of event i."""
        found = decode(self.mine, names)
        if not found:
            return []
        nodes = found[0] if len(found) == 1 else None
        out: list[tuple[int, str, str, str | None, bool]] = []
        for i, (ev, dev) in enumerate(names):
            if nodes and i > 0 and ev in XMIT_EVENTS and nodes[i - 1] != nodes[i]:  # not queue -> start_xmit
                prev = nodes[i - 1]
                bridge = self.mine.bridge_of.get(prev)
                if bridge and prev[0] == nodes[i][0] and self.mine.bridge_of.get(nodes[i]) == bridge:
                    out.append((i, "bridge", bridge, prev[0], True))
            out.append((i, ev, dev, nodes[i][0] if nodes else None, False))
        return out

    def _place(
        self, names: tuple[tuple[str, str], ...], context: tuple[int | None, bool] | None
    ) -> tuple[str, str | None] | str:
        """(node, device) where a packet that took ``names`` died, or why the lab cannot claim
        it (:data:`UNATTRIBUTED`, :data:`AMBIGUOUS`). Without a path, the process context (the
        namespace the drop ran in) is all there is to go on, and the device is None."""
        if names:
            placed = self._placed.get(names)
            if placed is None:
                if len(self._placed) >= MAX_OPEN:
                    self._placed.clear()
                elsewhere = any(isinstance(last_hop(o, names), tuple) for o in self.others)
                placed = self._placed[names] = (last_hop(self.mine, names), elsewhere)
            where, elsewhere = placed
            if where is None:
                return UNATTRIBUTED
            if not isinstance(where, tuple):  # explanations disagree on where it died
                return AMBIGUOUS
            if elsewhere and not claims(self.mine, context):
                return CONTESTED
            return where
        inode = context[0] if context else None
        if inode is None or inode not in self.mine.netns_inodes:
            return UNATTRIBUTED
        return self.mine.netns_inodes[inode], None

    def contested_spot(self, names: tuple[tuple[str, str], ...]) -> tuple[str, str]:
        """Where this lab would place a contested path (its one explanation of it)."""
        spot = self._placed[names][0]
        assert isinstance(spot, tuple)
        return spot

    def _unplaced(self, failure: str, drop: DropEvent) -> None:
        """Count a drop the lab cannot claim; keep the first :data:`UNPLACED_KEEP` unattributed
        ones (a rule counter may still place them: :mod:`netlab.tracing.rules`)."""
        if failure in (AMBIGUOUS, CONTESTED):
            self.ambiguous += 1
            if failure == CONTESTED and drop.node is not None and len(self.contested) < UNPLACED_KEEP:
                self.contested.append(drop)
            return
        self.unattributed += 1
        if len(self.unplaced) < UNPLACED_KEEP:
            self.unplaced.append(drop)

    def _drop(self, rec: Record, names: tuple[tuple[str, str], ...], times: list[float]) -> DropEvent | None:
        where = self._place(names, rec.context)
        if where == CONTESTED:
            node, device = self.contested_spot(names)
            self._unplaced(where, self._event(rec, node, device, self._decoded(names, times) or ()))
            return None
        if isinstance(where, str):
            self._unplaced(where, self._event(rec, None, None, ()))
            return None
        return self._event(rec, where[0], where[1], self._decoded(names, times) or ())

    def _event(self, rec: Record, node: str | None, device: str | None, path: tuple[Hop, ...]) -> DropEvent:
        return DropEvent(
            time=rec.time,
            location=location_of(rec.fields.get("location", "?")),
            reason=rec.fields.get("reason"),  # None: the kernel has no drop reasons (before 5.17)
            node=node,
            device=device,
            packet=packet_of(rec.fields.get("protocol", "")),
            stack=trim_stack(rec.stack),
            path=path,
            pid=rec.pid,
            tracer=self.tracer,
        )
