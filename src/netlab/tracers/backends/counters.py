"""Counters: per-device statistics, SNMP/netstat counters and iptables rule counters, per node,
as deltas over the trace window. The seeds' first clue was ``rx_dropped`` creeping up; this is
the tracer that needs nothing but /proc, and the one to start with on any kernel."""

from __future__ import annotations

import time
from collections.abc import Iterable

from netlab.scope import Place, Scope
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer
from netlab.tracers.events import CounterDelta, DropEvent, TraceResult
from netlab.tracers.kernel import firewall

DEV_FIELDS = (
    "rx_bytes",
    "rx_packets",
    "rx_errors",
    "rx_dropped",
    "rx_fifo",
    "rx_frame",
    "rx_compressed",
    "rx_multicast",
    "tx_bytes",
    "tx_packets",
    "tx_errors",
    "tx_dropped",
    "tx_fifo",
    "tx_colls",
    "tx_carrier",
    "tx_compressed",
)
Snapshot = dict[tuple[str, str], int]  # (scope, name) -> value


def parse_dev(text: str) -> Snapshot:
    """/proc/net/dev -> {("dev:IF", "rx_dropped"): n, ...}."""
    out: Snapshot = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        values = rest.split()
        for key, value in zip(DEV_FIELDS, values, strict=False):
            out[(f"dev:{name.strip()}", key)] = int(value)
    return out


def parse_snmp(text: str, kind: str) -> Snapshot:
    """/proc/net/snmp or netstat (header line + value line per protocol) -> counters."""
    out: Snapshot = {}
    lines = text.splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        proto, _, names = header.partition(":")
        _, _, numbers = values.partition(":")
        for key, value in zip(names.split(), numbers.split(), strict=False):
            if value.lstrip("-").isdigit():
                out[(f"{kind}:{proto}", key)] = int(value)
    return out


def parse_snmp6(text: str) -> Snapshot:
    """/proc/net/snmp6 ("Ip6InReceives 12" per line) -> counters."""
    out: Snapshot = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[("snmp6", parts[0])] = int(parts[1])
    return out


def parse_iptables(text: str) -> Snapshot:
    """``iptables-save -c`` -> {("iptables:TABLE/CHAIN", "RULE"): packets}."""
    return {
        (f"iptables:{r.table}/{r.chain}", r.text if r.index is not None else f"policy {r.text}"): r.packets
        for r in firewall.parse_save(text)
    }


def snapshot(node: Place) -> Snapshot:
    """Every counter of one node, now."""
    out: Snapshot = {}
    with node.entered():
        for path, parse in (
            ("/proc/thread-self/net/dev", parse_dev),
            ("/proc/thread-self/net/snmp", lambda t: parse_snmp(t, "snmp")),
            ("/proc/thread-self/net/netstat", lambda t: parse_snmp(t, "netstat")),
            ("/proc/thread-self/net/snmp6", parse_snmp6),
        ):
            try:
                with open(path) as f:
                    out.update(parse(f.read()))
            except OSError:
                continue
    saved = node.run(["iptables-save", "-c"], timeout=10, sysfs=False)
    if saved.returncode == 0:
        out.update(parse_iptables(saved.stdout))
    return out


def deltas(node: str, before: Snapshot, after: Snapshot) -> Iterable[CounterDelta]:
    """Counters that moved (new ones count from 0)."""
    for key, value in after.items():
        moved = value - before.get(key, 0)
        if moved:
            yield CounterDelta(node, key[0], key[1], moved)


class CountersTracer(Tracer):
    """Counter deltas per node."""

    name = "counters"
    summary = "device, SNMP/netstat and iptables rule counters per node, as deltas over the trace"
    reports_drops = False

    def probe(self) -> Probe:
        return Probe(True, "reads /proc/net inside each node and iptables-save -c")

    def _start(self, scope: Scope, options: TraceOptions) -> Session:
        return CountersSession(scope)


class CountersSession(Session):
    """Snapshots at start; deltas at stop."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.started = time.monotonic()
        self.before = {name: snapshot(node) for name, node in scope.nodes.items()}
        self._result: TraceResult | None = None

    def poll(self) -> list[DropEvent]:
        return []

    def stop(self) -> TraceResult:
        if self._result is None:
            nodes = self.scope.nodes.items()
            moved = [d for name, node in nodes for d in deltas(name, self.before[name], snapshot(node))]
            seconds = time.monotonic() - self.started
            self._result = TraceResult("counters", self.scope.name, seconds=seconds, counters=tuple(moved))
        return self._result
