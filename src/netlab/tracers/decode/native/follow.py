"""The native walker in the tracefs tracer's terms: pages in, :class:`DropEvent` and paths out.

:class:`NativeDecoder` is one CPU's reader (a page -> packed records, and the process context
of each drop's pid while that process is still there); :class:`NativeCorrelator` is the
:class:`~netlab.tracers.placement.correlate.Correlator` whose per-record loop runs in C. Every decision
stays in Python and is the same code as the pure-Python path: whether a hop continues a
packet (``decode`` against the lab's link graph, asked once per distinct step), where a drop
belongs (``Correlator._place``), how a path reads (``Correlator._decoded``). Stacks are not
handled here: with ``--stack`` the tracer decodes in Python (a stack is a debugging aid, not a
flood).
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Callable, Iterable

from netlab.headers import Packet
from netlab.tracers.decode.native import (
    CONSUME,
    DONE,
    DROP,
    NAME_LEN,
    NEED_STEP,
    NO_REASON,
    OUT_FORMAT,
    OUT_FULL,
    OUT_SIZE,
    PATH,
    Rec,
    Spec,
)
from netlab.tracers.decode.ringbuf import EventFormat
from netlab.tracers.events import DropEvent, Hop
from netlab.tracers.kernel import tracepoints
from netlab.tracers.placement.attribution import ContextCache, LabMap, decode
from netlab.tracers.placement.correlate import CONTESTED, MAX_OPEN, Correlator, location_of, without_collection

REC_SIZE = ctypes.sizeof(Rec)
#: what drops of one (path, location, reason, protocol, pid) share: their fields, their path's
#: hops without times, and why the lab cannot claim them (None: it can)
Template = tuple[dict[str, object], list[tuple[int, tuple[str, str, str | None, bool]]], str | None]
#: the smallest entry of a ring-buffer page: a 4-byte header and 4 bytes of data
MIN_ENTRY = 8
OUT_BATCH = 8192


def specs(formats: Iterable[EventFormat]) -> tuple[ctypes.Array[Spec], list[str]]:
    """The C description of each event: its kind and where its fields are, found by name."""
    out: list[Spec] = []
    names: list[str] = []
    for fmt in formats:
        if fmt.name == tracepoints.DROP[1]:
            kind = DROP
        elif fmt.name == tracepoints.FREE[1]:
            kind = CONSUME
        elif fmt.name in tracepoints.PATH_NAMES:
            kind = PATH
        else:
            continue
        spec = Spec(type_id=fmt.id, kind=kind, event=len(names))
        for field, prefix in (("skbaddr", "skb"), ("location", "loc"), ("reason", "reason"), ("protocol", "proto")):
            f = fmt.fields.get(field)
            ok = f is not None and f.kind == "int"
            setattr(spec, f"{prefix}_off", f.offset if ok and f is not None else -1)
            setattr(spec, f"{prefix}_size", f.size if ok and f is not None else 0)
        name = fmt.fields.get("dev") or fmt.fields.get("name")
        if name is not None and name.kind in ("data_loc", "chars"):
            spec.name_off, spec.name_size, spec.name_loc = name.offset, name.size, int(name.kind == "data_loc")
        else:
            spec.name_off, spec.name_size, spec.name_loc = -1, 0, 0
        out.append(spec)
        names.append(fmt.name)
    return (Spec * len(out))(*out), names


class NativeDecoder:
    """One CPU's pages -> packed records (bytes) for :meth:`NativeCorrelator.follow`."""

    def __init__(self, lib: ctypes.CDLL, table: ctypes.Array[Spec], cpu: int, contexts: ContextCache) -> None:
        self.lib, self.table, self.cpu, self.contexts = lib, table, cpu, contexts
        self._cap = os.sysconf("SC_PAGE_SIZE") // MIN_ENTRY + 1  # a page's entries, all of them
        self._buf = (Rec * self._cap)()
        self._pids = (ctypes.c_int32 * 64)()

    def feed(self, page: bytes) -> bytes:
        """The records of one page; the contexts of its drops' processes are taken now."""
        lib, buf = self.lib, self._buf
        n = lib.rw_decode(page, len(page), 8, self.table, len(self.table), self.cpu, buf, self._cap)
        if not n:
            return b""
        for i in range(lib.rw_drop_pids(buf, n, self._pids, len(self._pids))):
            self.contexts.get(self._pids[i])
        return ctypes.string_at(buf, n * REC_SIZE)

    def flush(self) -> bytes:
        """Nothing is held back: stacks, the reason the Python decoder holds a record, are not read here."""
        return b""


class FloodDrop(DropEvent):
    """A :class:`DropEvent` whose path is made when it is first read.

    A flood's drops share a handful of paths and differ only in their hops' times, and making
    three hop objects per drop was most of the tracer's remaining time (0.5 s of 200,000
    drops). So a drop keeps its path's shape (shared) and its hops' times, and :attr:`path`
    puts them together on first use; to everything that reads it (equality, ``as_dict``,
    reports) it is the same field. Made only by :meth:`from_shared`.
    """

    @classmethod
    def from_shared(
        cls,
        shared: dict[str, object],
        time: float,
        hops: list[tuple[int, tuple[str, str, str | None, bool]]] | tuple[()],
        times: list[float],
        at: int = 0,
    ) -> FloodDrop:
        """An event from the fields it shares with others (all but the time and the hops'
        times, which are ``times[at:]``: a batch's list, shared too), without the frozen
        dataclass's per-field ``object.__setattr__``."""
        drop = object.__new__(cls)
        own = drop.__dict__
        own.update(shared)
        own["time"] = time
        own["_hops"] = hops
        own["_times"] = times
        own["_at"] = at
        return drop

    @property  # a field to its readers, made on first read
    def path(self) -> tuple[Hop, ...]:
        own = self.__dict__
        made: tuple[Hop, ...] | None = own.get("_path")
        if made is None:
            times, at = own["_times"], own["_at"]
            made = own["_path"] = tuple(tuple.__new__(Hop, (times[at + i], *rest)) for i, rest in own["_hops"])
        return made


class NativeCorrelator(Correlator):
    """A :class:`Correlator` fed with packed records of each CPU instead of Records."""

    def __init__(
        self,
        lib: ctypes.CDLL,
        mine: LabMap,
        others: Iterable[LabMap],
        tracer: str,
        *,
        events: list[str],
        symbolize: Callable[[int], str],
        reasons: dict[int, str],
        has_protocol: bool = True,
    ) -> None:
        super().__init__(mine, others, tracer)
        self.lib = lib
        self.state = lib.rw_new(MAX_OPEN)
        if not self.state:
            raise MemoryError("the native trace walker could not allocate its tables")
        self.events, self.symbolize, self.reasons = events, symbolize, reasons
        self.has_protocol = has_protocol
        #: interned paths (node 0 is the empty path) and hops, as C numbers them
        self._nodes: list[tuple[tuple[str, str], ...]] = [()]
        self._node_ids: dict[tuple[tuple[str, str], ...], int] = {(): 0}
        self._hops: list[tuple[str, str]] = []
        self._templates: dict[tuple[int, int, int, int, int], Template] = {}
        self._out = (ctypes.c_char * (OUT_SIZE * OUT_BATCH))()
        self._times = (ctypes.c_double * (OUT_BATCH * 4))()

    def close(self) -> None:
        """Free the C tables (the correlator's results stay)."""
        if self.state:
            self.lib.rw_free(self.state)
            self.state = None

    def __del__(self) -> None:
        self.close()

    def follow(self, per_cpu: list[bytearray], contexts: ContextCache) -> list[DropEvent]:
        """Consume each CPU's records (each time-ordered); returns the drops they completed."""
        lib, state = self.lib, self.state
        runs = [(ctypes.c_char * len(b)).from_buffer(b) for b in per_cpu if b]  # alive till the end
        if not runs:
            return []
        keep = (ctypes.c_void_p * len(runs))(*(ctypes.addressof(r) for r in runs))
        lens = (ctypes.c_long * len(runs))(*(len(r) // REC_SIZE for r in runs))
        if lib.rw_begin(state, len(runs), keep, lens) != DONE:
            raise MemoryError("the native trace walker ran out of memory")
        new: list[DropEvent] = []
        with without_collection():
            self._run(state, new, contexts)
        self.records = lib.rw_records(state)
        return new

    def _run(self, state: int, new: list[DropEvent], contexts: ContextCache) -> None:
        lib = self.lib
        nout, ntimes = ctypes.c_long(), ctypes.c_long()
        node, hop = ctypes.c_uint32(), ctypes.c_uint32()
        while True:
            status = lib.rw_follow(
                state, self._out, OUT_BATCH, ctypes.byref(nout), self._times, len(self._times), ctypes.byref(ntimes)
            )
            if nout.value:
                self._results(nout.value, self._times[: ntimes.value], contexts, new)
            if status == DONE:
                break
            if status == NEED_STEP:
                lib.rw_need(state, ctypes.byref(node), ctypes.byref(hop))
                self._step(node.value, hop.value)
            elif status != OUT_FULL:
                raise MemoryError("the native trace walker ran out of memory")

    def _hop(self, hop: int) -> tuple[str, str]:
        while len(self._hops) <= hop:
            event, name = ctypes.c_int32(), ctypes.create_string_buffer(NAME_LEN)
            self.lib.rw_hop(self.state, len(self._hops), ctypes.byref(event), name)
            self._hops.append((self.events[event.value], name.value.decode(errors="replace")))
        return self._hops[hop]

    def _step(self, node: int, hop: int) -> None:
        """Does ``hop`` continue the packet that took path ``node``? The same rule as
        :meth:`Correlator.feed`: a hop the lab cannot reach from there starts a new packet
        (skb addresses are recycled without a free we see)."""
        names, step = self._nodes[node], self._hop(hop)
        longer, restart = (*names, step), False
        if names and not (self.mine.knows(step[1]) and decode(self.mine, longer)):
            longer, restart = (step,), True
        nxt = self._node_ids.get(longer)
        if nxt is None:
            nxt = self._node_ids[longer] = len(self._nodes)
            self._nodes.append(longer)
        if self.lib.rw_set_step(self.state, node, hop, nxt, int(restart)):
            raise MemoryError("the native trace walker ran out of memory")

    def _results(self, n: int, times: list[float], contexts: ContextCache, new: list[DropEvent]) -> None:
        """DropEvents and paths of one batch of C's results: the loop a flood runs 200,000 times.
        What drops of one path, location, reason, protocol and process share is worked out once
        (:meth:`_template`); each drop then only adds its time and its hops' times."""
        nodes, templates, from_shared = self._nodes, self._templates, FloodDrop.from_shared
        for ts, loc, kind, pid, reason, protocol, node, ntimes, at, _cpu in struct.iter_unpack(
            OUT_FORMAT, memoryview(self._out)[: n * OUT_SIZE]
        ):
            if kind == CONSUME:
                path = self._path(nodes[node], times[at : at + ntimes], ts)
                if path:
                    self.paths.append(path)
                continue
            key = (node, loc, reason, protocol, pid)
            template = templates.get(key)
            if template is None:
                template = self._template(key, contexts)
            shared, hops, failure = template
            if failure == CONTESTED:
                # placed as this lab would place it, kept for what netlab sent to settle
                drop = from_shared(shared, ts / 1e9, (), [])
                drop.__dict__["_path"] = self._path(nodes[node], times[at : at + ntimes], ts)
                self._unplaced(failure, drop)
                continue
            if failure is not None:
                self._unplaced(failure, DropEvent.from_fields({**shared, "time": ts / 1e9, "path": ()}))
                continue
            if ntimes >= len(hops):
                drop = from_shared(shared, ts / 1e9, hops, times, at)
            else:
                drop = from_shared(shared, ts / 1e9, (), [])
                drop.__dict__["_path"] = self._path(nodes[node], times[at : at + ntimes], ts)
            self.drops.append(drop)
            new.append(drop)

    def _template(self, key: tuple[int, int, int, int, int], contexts: ContextCache) -> Template:
        """The fields drops of one (path, location, reason, protocol, pid) share, their path's
        hops without times, and why they are not this lab's (None: they are)."""
        node, loc, reason, protocol, pid = key
        names = self._nodes[node]
        where = self._place(names, contexts.get(pid) if pid > 0 else None)
        spot = self.contested_spot(names) if where == CONTESTED else where
        placed = not isinstance(spot, str)
        fields: dict[str, object] = {
            "location": location_of(self.symbolize(loc)),
            "reason": None if reason == NO_REASON else (self.reasons.get(reason) or f"REASON_{reason}"),
            "node": spot[0] if not isinstance(spot, str) else None,
            "device": spot[1] if not isinstance(spot, str) else None,
            "packet": Packet(protocol=protocol if self.has_protocol else None),
            "stack": (),
            "pid": pid,
            "tracer": self.tracer,
            "rule": None,
            "comm": None,
        }
        hops = [(i, (ev, dev, nd, inferred)) for i, ev, dev, nd, inferred in self._shape_of(names)] if placed else []
        if where == CONTESTED:
            hops = []  # its path is built per drop (see _consume), as for a path cut short
        template: Template = (fields, hops, where if isinstance(where, str) else None)
        if len(self._templates) >= MAX_OPEN:
            self._templates.clear()
        self._templates[key] = template
        return template

    def _path(self, names: tuple[tuple[str, str], ...], hop_times: list[float], ts: int) -> tuple[Hop, ...]:
        """A path whose hops outnumber the times C kept (16): the later hops take the last time."""
        hop_times = hop_times or [ts / 1e9]
        return self._decoded(names, hop_times + hop_times[-1:] * (len(names) - len(hop_times))) or ()

    def _shape_of(self, names: tuple[tuple[str, str], ...]) -> list[tuple[int, str, str, str | None, bool]]:
        shape = self._shapes.get(names)
        if shape is None:
            self._decoded(names, [0.0] * len(names))  # computes and caches the shape
            shape = self._shapes.get(names, [])
        return shape
