"""dropwatch (the kernel's NET_DROP_MONITOR over generic netlink), where the kernel has it.

Kernels built without CONFIG_NET_DROP_MONITOR have no ``NET_DM`` generic-netlink family;
dropwatch then says "Unable to find NET_DM family", and :meth:`DropwatchTracer.probe` says so
up front by asking the generic-netlink controller.

dropwatch runs in *packet* alert mode (kernels from 5.4): one alert per dropped packet with
its location (``drop at: __udp4_lib_rcv+0x9a2/0xc30``), the ifindex of the interface it came
in on, its protocol and length, and from 5.18 the drop reason. NET_DM says nothing about
namespaces, but netlab's planner numbers a lab's interfaces once across the whole lab, so the
input ifindex names one interface of the lab: that is how a drop is placed on a node and a
device. What it cannot rule out is a drop elsewhere on the machine (the host, another
container) on an interface that happens to have the same index; an ifindex that another lab
that is up also uses is counted as ambiguous, and drops on other ifindexes as unattributed.
Locally generated packets dropped before they had an input interface (ifindex 0) are
unattributed. The older summary mode (``N drops at function+offset``) is still parsed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from netlab.errors import NetlabError
from netlab.headers import Packet
from netlab.runtime import queries, wait
from netlab.scope import Scope
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer, tool_refusal
from netlab.tracers.events import DropEvent, Location, TraceResult
from netlab.tracers.kernel.procrun import Helper
from netlab.tracers.kernel.symbols import kernel_symbols
from netlab.tracers.placement import maps
from netlab.tracers.placement.attribution import LabMap

QUIET = 1.0  # seconds without a new alert before dropwatch is stopped
_LINE = re.compile(r"^(\d+) drops? at (\S+?)(?:\+([0-9a-fx]+))? \((0x[0-9a-f]+)\)")
_LOCATION_LINE = re.compile(r"^(\d+) drops? at location (0x[0-9a-f]+)")
_ALERT_KEY = re.compile(r"^(drop at|input port ifindex|protocol|length|drop reason|origin):\s*(.*)$")


def parse(text: str, when: float = 0.0) -> list[DropEvent]:
    """dropwatch's summary alerts (``N drops at ...``): one DropEvent per counted drop. Without
    ``-l kas`` dropwatch prints addresses, which are resolved through this machine's kallsyms
    (so live output only: a recorded address is named as the running kernel would name it)."""
    drops: list[DropEvent] = []
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            offset = int(m.group(3), 16) if m.group(3) else 0
            location = Location(m.group(2), offset)
        else:
            m2 = _LOCATION_LINE.match(line.strip())
            if not m2:
                continue
            location = _symbolized(int(m2.group(2), 16))
            m = m2
        count = int(m.group(1))
        drops.extend(
            DropEvent(time=when, location=location, reason="UNKNOWN", node=None, device=None, tracer="dropwatch")
            for _ in range(count)
        )
    return drops


def _symbolized(address: int) -> Location:
    try:
        found = kernel_symbols().lookup(address)
    except (NetlabError, OSError):  # no kallsyms (parsing recorded output elsewhere)
        found = None
    return Location(found[0], found[1], found[2]) if found else Location(f"{address:#x}")


@dataclass(frozen=True)
class Alert:
    """One packet alert: where it died and what NET_DM said about it."""

    location: str
    ifindex: int
    protocol: int | None
    length: int | None
    reason: str | None
    hardware: bool = False


def _hex(text: str) -> int | None:
    """``0x0800`` -> 2048; None for what is not a number (dropwatch has printed a bare ``0x``):
    the drop still counts, without its protocol."""
    try:
        return int(text, 16)
    except ValueError:
        return None


def parse_alerts(text: str) -> list[Alert]:
    """Packet-mode output: blocks of ``key: value`` lines, one block per dropped packet. A field
    that does not parse leaves that field unknown, never the drop uncounted."""
    alerts: list[Alert] = []
    block: dict[str, str] = {}

    def close() -> None:
        if "drop at" in block:
            where = block["drop at"].split(" (", 1)[0]
            ifindex = block.get("input port ifindex", "0")
            alerts.append(
                Alert(
                    where,
                    int(ifindex) if ifindex.isdigit() else 0,
                    _hex(block.get("protocol", "")),
                    int(block["length"]) if block.get("length", "").isdigit() else None,
                    block.get("drop reason"),
                    block.get("origin") == "hardware",
                )
            )
        block.clear()

    for line in text.splitlines():
        m = _ALERT_KEY.match(line.strip())
        if m:
            if m.group(1) == "drop at":
                close()
            block[m.group(1)] = m.group(2).strip()
        elif not line.strip():
            close()
    close()
    return alerts


@dataclass
class Placed:
    """Alerts turned into drops of one lab, and what could not be placed."""

    drops: list[DropEvent] = field(default_factory=list)
    unattributed: int = 0
    ambiguous: int = 0


def place(alerts: list[Alert], mine: LabMap, others: list[LabMap], when: float = 0.0) -> Placed:
    """Each alert on a node of ``mine`` by its input ifindex, where only ``mine`` has it."""
    out = Placed()
    for alert in alerts:
        iface = mine.by_ifindex.get(alert.ifindex)
        if iface is None or alert.hardware:
            out.unattributed += 1
            continue
        if any(alert.ifindex in o.by_ifindex for o in others):
            out.ambiguous += 1
            continue
        out.drops.append(
            DropEvent(
                time=when,
                location=Location.parse(alert.location),
                reason=alert.reason,  # None on kernels whose NET_DM has no reasons (before 5.18)
                node=iface[0],
                device=iface[1],
                packet=Packet(protocol=alert.protocol, length=alert.length),
                tracer="dropwatch",
            )
        )
    return out


class DropwatchTracer(Tracer):
    """dropwatch in packet alert mode."""

    name = "dropwatch"
    summary = "dropwatch (NET_DROP_MONITOR), packet mode: each drop's function+offset, input interface, reason"

    def probe(self) -> Probe:
        refusal = tool_refusal("dropwatch")
        if refusal is not None:
            return refusal

        try:
            present = queries.genl_family_exists("NET_DM")
        except OSError as exc:
            return Probe(False, f"cannot ask generic netlink for NET_DM: {exc.strerror}")
        if not present:
            return Probe(
                False,
                "the kernel has no NET_DM generic-netlink family (built without"
                " CONFIG_NET_DROP_MONITOR); dropwatch would say 'Unable to find NET_DM family'",
            )
        return Probe(True, "NET_DM family present")

    def _start(self, scope: Scope, options: TraceOptions) -> Session:
        return DropwatchSession(scope)


class DropwatchSession(Session):
    """dropwatch running in the background, in packet alert mode."""

    def __init__(self, scope: Scope) -> None:

        self.scope = scope
        self.mine, self.others = maps.of(scope), maps.others(scope)
        self.started = time.monotonic()
        # stdbuf: dropwatch's stdout is a file, which stdio would buffer until exit, and the
        # start is only known from its "monitoring activated" line. No "-l kas": in packet mode
        # the kernel names the function itself (NET_DM_ATTR_SYMBOL); only the summary fallback
        # prints addresses, which parse() resolves through netlab's own kallsyms table
        self.helper = Helper(scope, ["stdbuf", "-oL", "dropwatch"], stdin=True)
        assert self.helper.proc.stdin is not None
        self.helper.proc.stdin.write("set alertmode packet\nstart\n")
        # closed now: on SIGINT dropwatch stops monitoring and reads its next command, and EOF
        # is "exit"; with stdin open it waited there for the helper's 20 s timeout at every stop
        self.helper.proc.stdin.close()
        wait.DROPWATCH_MONITORING.poll(
            lambda: "monitoring activated" in self.helper.stdout() or not self.helper.alive(), bool
        )
        if "monitoring activated" not in self.helper.stdout():
            said = (self.helper.stderr() + self.helper.stdout()).strip().splitlines()
            self.helper.stop()
            self.helper.cleanup()
            raise NetlabError(
                f"dropwatch did not start within {wait.DROPWATCH_MONITORING.timeout:.0f}s: "
                + (said[-1] if said else "it printed nothing")
            )
        self._result: TraceResult | None = None

    def poll(self) -> list[DropEvent]:
        return []

    def stop(self) -> TraceResult:
        if self._result is None:
            # the kernel hands packet alerts to a work item, which sends them when it runs (on
            # a slow guest, well after the packets died): stopping before it has printed them
            # loses them, as a 5.10 run under TCG once did
            self.helper.drained(quiet=QUIET)
            self.helper.stop()
            out = self.helper.stdout()
            self.helper.cleanup()
            alerts = parse_alerts(out)
            placed = place(alerts, self.mine, self.others, time.monotonic())
            drops, notes = placed.drops, []
            if not alerts and parse(out):
                drops = parse(out)
                notes.append("dropwatch gave summary alerts only (no packet mode): drops are not attributed")
            notes.append(
                "dropwatch places drops by input ifindex (netlab numbers a lab's interfaces uniquely);"
                " it cannot see namespaces, so a drop elsewhere on an interface with the same index would count"
            )
            self._result = TraceResult(
                "dropwatch",
                self.scope.name,
                drops=tuple(drops),
                unattributed=placed.unattributed,
                ambiguous=placed.ambiguous,
                seconds=time.monotonic() - self.started,
                events=len(alerts),
                notes=tuple(notes),
            )
        return self._result
