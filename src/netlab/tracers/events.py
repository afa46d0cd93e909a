"""Trace results as data: drops, packet paths, and what could not be seen.

Everything here is JSON-ready (``as_dict``) so the CLI, the pytest report and the workshop
material all speak the same shape.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

from netlab.headers import Packet

_SUFFIX = re.compile(r"(\.(constprop|isra|part|cold|llvm|lto_priv|localalias)(\.\d+)?)+$")


def base_function(name: str) -> str:
    """``__netif_receive_skb_core.constprop.0`` -> ``__netif_receive_skb_core``.

    GCC and LLVM clone and split functions and name the copies with suffixes; a scenario that
    expects a drop in ``__netif_receive_skb_core`` must match every such copy.
    """
    return _SUFFIX.sub("", name)


NO_REASON = "unknown (kernel has no drop reasons)"


def reason_text(reason: str | None) -> str:
    """A drop reason as people read it; ``None`` is a kernel before 5.17, which has none."""
    return reason if reason is not None else NO_REASON


def _hex_or_none(text: str) -> int | None:
    try:
        return int(text, 16) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Location:
    """A kernel code location as ``function+offset``, in the kernel's own spelling."""

    function: str
    offset: int = 0
    size: int | None = None

    @property
    def base(self) -> str:
        """The function name without compiler suffixes."""
        return base_function(self.function)

    def __str__(self) -> str:
        return f"{self.function}+{self.offset:#x}"

    @classmethod
    def parse(cls, text: str) -> Location:
        """``ip_rcv_finish_core+0x25b/0x470`` (or without offset/size) -> Location. A number that
        does not parse (dropwatch on 6.1 printed a size cut to ``/0x`` once) is left unknown:
        the function is what matters, and a drop is never lost over its offset."""
        name, _, rest = text.partition("+")
        offset, _, size = rest.partition("/")
        known_offset, known_size = _hex_or_none(offset), _hex_or_none(size)
        return cls(name, known_offset or 0, known_size)


class Hop(NamedTuple):
    """One step of a packet's path: an event on a device (or a bridge inferred from the topology).

    A named tuple rather than a dataclass: a flood makes hundreds of thousands of them.
    """

    time: float
    event: str
    device: str
    node: str | None = None
    inferred: bool = False


@dataclass(frozen=True)
class DropEvent:
    """One packet dropped by the kernel."""

    time: float
    location: Location
    reason: str | None  # None: the kernel has no drop reasons (before 5.17); the location is the answer
    node: str | None
    device: str | None
    packet: Packet = field(default_factory=Packet)
    stack: tuple[str, ...] = ()
    path: tuple[Hop, ...] = ()
    pid: int | None = None
    tracer: str = ""
    #: the firewall rule or chain policy that dropped it, where the node's counters can tell
    #: (:mod:`netlab.tracing.rules`): "filter/FORWARD policy DROP", "filter/INPUT rule 2: -A ..."
    rule: str | None = None
    #: the process the drop ran in (a sender, or whatever the softirq interrupted), where known
    comm: str | None = None

    def evolve(self, **changes: Any) -> DropEvent:
        """The same drop with ``changes`` (a rule named, a node placed, headers known); always a
        plain DropEvent, whatever made this one."""
        values = {f.name: getattr(self, f.name) for f in fields(DropEvent)}
        return DropEvent(**{**values, **changes})

    @classmethod
    def from_fields(cls, values: dict[str, Any]) -> DropEvent:
        """A DropEvent from a dict of all its fields (a template's, in the native tracer)."""
        return cls(**values)

    @property
    def function(self) -> str:
        """The dropping function as the kernel spells it."""
        return self.location.function

    @property
    def base(self) -> str:
        """The dropping function without compiler suffixes."""
        return self.location.base

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        out = asdict(self)
        out["location"] = str(self.location)
        out["function"] = self.function
        out["function_base"] = self.base
        out["packet"] = {k: v for k, v in asdict(self.packet).items() if v is not None}
        out["path"] = [h._asdict() for h in self.path]
        return out


@dataclass(frozen=True)
class CounterDelta:
    """How much a counter of a node moved during a trace."""

    node: str
    scope: str  # "dev:calmveth2", "snmp:Udp", "netstat:TcpExt", "iptables:filter/FORWARD"
    name: str
    delta: int


@dataclass(frozen=True)
class Call:
    """One function entry seen by the function tracers (ftrace)."""

    time: float
    cpu: int
    pid: int
    function: str
    parent: str | None = None
    depth: int = 0
    duration_us: float | None = None


def devices(path: tuple[Hop, ...]) -> list[str]:
    """The devices a path crossed, in order, each once per visit."""
    out: list[str] = []
    for hop in path:
        if not out or out[-1] != hop.device:
            out.append(hop.device)
    return out


@dataclass(frozen=True)
class TraceResult:
    """What one trace saw of one lab: built once (by the tracer, then by
    :mod:`netlab.findings`, which adds what only the lab knows) and not changed after."""

    tracer: str
    lab: str
    drops: tuple[DropEvent, ...] = ()
    paths: tuple[tuple[Hop, ...], ...] = ()
    lost: int = 0
    unattributed: int = 0
    ambiguous: int = 0
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    counters: tuple[CounterDelta, ...] = ()
    calls: tuple[Call, ...] = ()
    #: drops counted in the kernel without per-packet events: (node, function, reason) -> count
    totals: Mapping[tuple[str | None, str, str | None], int] = field(default_factory=dict)
    #: trace records read and analysed (drops, path events, frees), for throughput figures
    events: int = 0
    #: drops the tracer could not place in this lab (node None; the first 10,000 of
    #: ``unattributed``), for the rule counters to place where they can
    unplaced: tuple[DropEvent, ...] = ()
    #: drops placed in this lab that another lab up with the same device names could own too,
    #: not in ``drops`` (counted in ``ambiguous``) unless what netlab sent settles whose they are
    contested: tuple[DropEvent, ...] = ()

    @property
    def total_drops(self) -> int:
        """Every drop seen, per packet or counted."""
        return len(self.drops) + sum(self.totals.values())

    def counter(self, node: str, name: str, scope: str | None = None) -> int:
        """The total delta of counter ``name`` in ``node`` (optionally one scope)."""
        return sum(c.delta for c in self.counters if c.node == node and c.name == name and scope in (None, c.scope))

    def summary(self) -> list[tuple[str | None, str | None, str, str | None, int]]:
        """(node, device, function, reason, count), most frequent first."""
        counts: Counter[tuple[str | None, str | None, str, str | None]] = Counter(
            (d.node, d.device, d.base, d.reason) for d in self.drops
        )
        for (node, function, reason), n in self.totals.items():
            counts[(node, None, function, reason)] += n
        return [(*key, n) for key, n in counts.most_common()]

    def unplaced_summary(self) -> list[tuple[str, str | None, int]]:
        """(function, reason, count) of the drops kept unplaced, most frequent first."""
        counts = Counter((d.base, d.reason) for d in self.unplaced)
        return [(function, reason, n) for (function, reason), n in counts.most_common()]

    def rules(self) -> list[tuple[str | None, str, int]]:
        """(node, rule, count) of the drops a named firewall rule made, most frequent first."""
        counts = Counter((d.node, d.rule) for d in self.drops if d.rule is not None)
        return [(node, rule, n) for (node, rule), n in counts.most_common() if rule is not None]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "tracer": self.tracer,
            "lab": self.lab,
            "seconds": round(self.seconds, 3),
            "lost": self.lost,
            "unattributed": self.unattributed,
            "unplaced": [{"function": f, "reason": r, "count": n} for f, r, n in self.unplaced_summary()],
            "ambiguous": self.ambiguous,
            "events": self.events,
            "notes": list(self.notes),
            "summary": [
                {"node": n, "device": d, "function": f, "reason": r, "count": c} for n, d, f, r, c in self.summary()
            ],
            "drops": [d.as_dict() for d in self.drops],
            "counters": [asdict(c) for c in self.counters],
            "calls": [asdict(c) for c in self.calls],
        }
