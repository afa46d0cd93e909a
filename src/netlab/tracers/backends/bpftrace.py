"""bpftrace on ``tracepoint:skb:kfree_skb``: exact lab and packet attribution, in-kernel counts.

The program reads the dropped skb's device, its network namespace (``dev->nd_net.net->ns.inum``)
and its first 96 bytes from the MAC header (at member offsets netlab reads from the kernel's
BTF itself), and keeps only drops whose namespace is one of the lab's: attribution by
namespace, not by name, so two instances of one topology never mix.
Python then parses the headers (addresses, ports, the netlab marker).

``mode="count"`` aggregates in a kernel map instead of printing each drop, which keeps counts
exact at rates no per-event reader keeps up with. bpftrace prints from its ``BEGIN`` probe once
every probe is attached: that line is the ready barrier.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time

from netlab.errors import KernelFeatureError, NetlabError
from netlab.headers import packet_of
from netlab.runtime import wait
from netlab.scope import Scope
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer, tool_refusal, tool_version
from netlab.tracers.decode.ringbuf import EventFormat
from netlab.tracers.events import DropEvent, Location, TraceResult
from netlab.tracers.kernel import btf, reasons
from netlab.tracers.kernel.procrun import Helper
from netlab.tracers.kernel.symbols import kernel_symbols
from netlab.tracers.placement import maps

READY = "NETLAB-READY"
#: bytes of each dropped packet printed (bpftrace's ``buf()`` is cut to BPFTRACE_STRLEN, 64 unless set)
SNAP = 96
_EVENT = re.compile(r"^D (\d+) (\d+) (\d+) (\S*) (\d+) ([0-9a-f]+) (\d+) (\d+) (\S+) ([01]) (\d+) (.*)$")
_COUNT = re.compile(r"^@drops\[(\d+), (\d+), ([^\]]+)\]: (\d+)$")
_LOST = re.compile(r"[Ll]ost (\d+) events?")
_PRINTED = re.compile(r"^@printed: (\d+)$", re.MULTILINE)
_UNPLACED = re.compile(r"^@unplaced: (\d+)$", re.MULTILINE)


#: the struct members the program reads, by the names it gives them (``btf.Btf.offset`` paths)
MEMBERS = {
    "DEV": "sk_buff.dev",
    "SK": "sk_buff.sk",
    "HEAD": "sk_buff.head",
    "LEN": "sk_buff.len",
    "MAC": "sk_buff.mac_header",
    "NETWORK": "sk_buff.network_header",
    "IFINDEX": "net_device.ifindex",
    "NAME": "net_device.name",
    "DEV_NET": "net_device.nd_net.net",
    "SK_NET": "sock.__sk_common.skc_net.net",
    "INUM": "net.ns.inum",
}
#: the tracepoint's fields the program reads, by the names it gives them (REASON: 5.17 on)
FIELDS = {"SKBADDR": "skbaddr", "LOCATION": "location", "PROTOCOL": "protocol", "REASON": "reason"}


def offsets(source: btf.Btf, event: EventFormat) -> dict[str, int]:
    """Where the program reads: the struct members in the kernel whose BTF is ``source``, and
    the fields of its ``skb:kfree_skb`` record (``event``: its format file)."""
    found = {name: source.offset(path) for name, path in MEMBERS.items()}
    for name, field in FIELDS.items():
        if event.has(field):
            found[name] = event.fields[field].offset
        elif name != "REASON":
            raise KernelFeatureError(f"this kernel's skb:kfree_skb has no field {field}")
    return found


def kernel_offsets() -> dict[str, int]:
    """:func:`offsets` on the running kernel."""
    try:
        event = EventFormat.parse(reasons.FORMAT.read_text())
    except OSError:
        raise KernelFeatureError(f"cannot read {reasons.FORMAT}: is tracefs mounted?") from None
    return offsets(btf.kernel_btf(), event)


def program(inodes: list[int], mode: str, at: dict[str, int]) -> str:
    """The bpftrace program for a lab whose namespaces have ``inodes``; ``at``: :func:`offsets`.

    Everything is read at offsets, not as ``args->skbaddr`` or ``$skb->dev->name``: bpftrace 0.17
    re-reads the list of every tracepoint about twenty times for each ``args->`` in a program,
    resolves a struct by converting the kernel's BTF to C for clang, and refuses some kernels'
    BTF outright (Debian's 5.10); under TCG each of those is seconds of start-up.
    Without a ``REASON`` (kernels before 5.17, whose ``skb:kfree_skb`` has none) a 0 stands
    where the reason goes, so the output has one shape on every kernel.
    """
    keep = " || ".join(f"$ns == {i}" for i in inodes) or "0"
    why = f"*(uint32 *)($args + {at['REASON']})" if "REASON" in at else "0"
    location = f"*(uint64 *)($args + {at['LOCATION']})"
    if mode == "count":
        action = f"        @drops[$ns, {why}, ksym({location})] = count();"
    else:
        action = (
            f"        $head = *(uint64 *)($skb + {at['HEAD']});\n"
            f"        $mac = *(uint16 *)($skb + {at['MAC']});\n"
            f"        $network = *(uint16 *)($skb + {at['NETWORK']});\n"
            "        $link = $mac != 65535 && $mac < $network ? 1 : 0;\n"
            "        $off = $link ? $mac : $network;\n"
            '        printf("D %llu %u %d %s %d %llx %d %d %s %d %u %rx\\n", nsecs, $ns,\n'
            f"               *(int32 *)($dev + {at['IFINDEX']}), str($dev + {at['NAME']}), {why},\n"
            f"               {location}, *(uint16 *)($args + {at['PROTOCOL']}), pid, comm, $link,\n"
            f"               *(uint32 *)($skb + {at['LEN']}), buf($head + $off, {SNAP}));\n"
            "        @printed = count();"
        )
    return (
        f'BEGIN {{ printf("{READY}\\n"); }}\n'
        "tracepoint:skb:kfree_skb\n{\n"
        "    $args = (uint64)args;\n"
        f"    $skb = *(uint64 *)($args + {at['SKBADDR']});\n"
        f"    $dev = *(uint64 *)($skb + {at['DEV']});\n"
        "    $ns = (uint64)0;\n"
        "    if ($dev != 0) {\n"
        f"        $ns = (uint64)*(uint32 *)(*(uint64 *)($dev + {at['DEV_NET']}) + {at['INUM']});\n"
        "    } else {\n"
        "        // no device yet (local output before routing, a timer's retransmission): the\n"
        "        // socket's namespace; neither: counted, since it cannot be placed\n"
        f"        $sk = *(uint64 *)($skb + {at['SK']});\n"
        "        if ($sk != 0) {\n"
        f"            $ns = (uint64)*(uint32 *)(*(uint64 *)($sk + {at['SK_NET']}) + {at['INUM']});\n"
        "        } else {\n"
        "            @unplaced = count();\n"
        "        }\n"
        "    }\n"
        f"    if ({keep}) {{\n{action}\n    }}\n}}\n"
    )


def unescape(text: str) -> bytes:
    """bpftrace's ``%rx`` rendering (every byte as ``\\xNN``, so no byte can break a line) back to bytes."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text.startswith("\\x", i) and i + 4 <= len(text):
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        elif text.startswith("\\\\", i):
            out.append(0x5C)
            i += 2
        else:
            out.append(ord(text[i]))
            i += 1
    return bytes(out)


def _location(address: int) -> Location:
    try:
        found = kernel_symbols().lookup(address)
    except (NetlabError, OSError):  # no kallsyms (parsing recorded output elsewhere): the raw address
        return Location(f"{address:#x}")
    if found is None:
        return Location(f"{address:#x}")
    return Location(found[0], found[1], found[2])


def parse_events(text: str, nodes: dict[int, str]) -> list[DropEvent]:
    """Per-drop lines of the ``events`` program."""
    drops = []
    for line in text.splitlines():
        m = _EVENT.match(line)
        if m is None:
            continue
        ns, reason, address, proto = int(m.group(2)), int(m.group(5)), int(m.group(6), 16), int(m.group(7))
        drops.append(
            DropEvent(
                time=int(m.group(1)) / 1e9,
                location=_location(address),
                reason=reasons.name(reason) if reasons.available() else None,
                node=nodes.get(ns),
                device=m.group(4) or None,
                packet=packet_of(unescape(m.group(12)), proto, link=m.group(10) == "1", length=int(m.group(11))),
                pid=int(m.group(8)),
                comm=m.group(9),
                tracer="bpftrace",
            )
        )
    return drops


def parse_counts(text: str, nodes: dict[int, str]) -> list[tuple[str | None, str | None, Location, int]]:
    """(node, reason, location, count) from the ``count`` program's map dump (function names:
    bpftrace 0.17 cannot print a 64-bit address as a map key)."""
    out = []
    for line in text.splitlines():
        m = _COUNT.match(line.strip())
        if m:
            out.append(
                (
                    nodes.get(int(m.group(1))),
                    reasons.name(int(m.group(2))) if reasons.available() else None,
                    Location(m.group(3)),
                    int(m.group(4)),
                )
            )
    return out


class BpftraceTracer(Tracer):
    """bpftrace program on skb:kfree_skb."""

    name = "bpftrace"
    summary = "bpftrace on skb:kfree_skb: drops attributed by namespace, packet headers and markers, in-kernel counts"
    monotonic_times = True
    accepts = frozenset({"count"})

    def __init__(self, mode: str = "events") -> None:
        self.mode = mode

    def probe(self) -> Probe:
        refusal = tool_refusal("bpftrace")
        if refusal is not None:
            return refusal
        binary = shutil.which("bpftrace") or "bpftrace"
        _code, version = tool_version(binary)
        try:
            kernel_offsets()
        except KernelFeatureError as e:
            return Probe(False, f"{e}: the program could not read the dropped packets")
        return Probe(True, f"{version}, member offsets from the kernel's BTF")

    def _start(self, scope: Scope, options: TraceOptions) -> Session:
        return BpftraceSession(scope, "count" if options.count else self.mode)


#: pages of each CPU's perf ring buffer that events mode prints from (bpftrace's default is 64,
#: 256 KiB, which a flood fills in a millisecond; 16 MiB a CPU holds a burst of ~100,000 drops
#: while bpftrace catches up). Counted, not silent, when it still overflows.
PERF_RB_PAGES = 4096


class BpftraceSession(Session):
    """One bpftrace process tracing one lab."""

    def __init__(self, scope: Scope, mode: str) -> None:
        self.scope = scope
        self.mode = mode
        self.nodes = maps.of(scope).netns_inodes
        self.started = time.monotonic()
        self._result: TraceResult | None = None
        self._seen = 0
        # a BTF blob of one type stands in for the kernel's: the program reads at offsets (see
        # program()), and bpftrace given the kernel's BTF searches it for seconds under TCG
        blob = os.memfd_create("netlab-bpftrace-btf")
        try:
            os.write(blob, btf.minimal())
            self.helper = Helper(
                scope,
                ["bpftrace", "-e", program(sorted(self.nodes), mode, kernel_offsets())],
                env={
                    "BPFTRACE_PERF_RB_PAGES": str(PERF_RB_PAGES),
                    "BPFTRACE_STRLEN": str(SNAP),
                    "BPFTRACE_BTF": f"/proc/self/fd/{blob}",
                },
                pass_fds=(blob,),
            )
        finally:
            os.close(blob)
        try:
            self._wait_ready()
        except BaseException:
            self.helper.stop()
            self.helper.cleanup()
            raise

    def _wait_ready(self) -> None:
        wait.BPFTRACE_ATTACHED.poll(lambda: READY in self.helper.stdout() or not self.helper.alive(), bool)
        if READY in self.helper.stdout():
            return
        if not self.helper.alive():
            errors = [ln for ln in self.helper.stderr().splitlines() if "RLIMIT_MEMLOCK" not in ln]
            raise KernelFeatureError(f"bpftrace failed to start: {' '.join(errors)[-600:]}")
        raise KernelFeatureError(f"bpftrace did not attach within {wait.BPFTRACE_ATTACHED.timeout:.0f}s")

    def poll(self) -> list[DropEvent]:
        if self.mode != "events":
            return []
        drops = parse_events(self.helper.stdout(), self.nodes)
        new, self._seen = drops[self._seen :], len(drops)
        return new

    def stop(self) -> TraceResult:
        if self._result is not None:
            return self._result
        try:
            if self.mode == "events":
                self.helper.drained()
            self.helper.stop()
            out = self.helper.stdout()
            lost = sum(int(n) for n in _LOST.findall(self.helper.stderr() + out))
        finally:
            with contextlib.suppress(OSError):
                self.helper.cleanup()
        drops: list[DropEvent] = []
        totals: dict[tuple[str | None, str, str | None], int] = {}
        notes: list[str] = []
        unattributed = 0
        if self.mode == "events":
            drops = parse_events(out, self.nodes)
            # every event the kernel printed was counted there too: what did not arrive is lost,
            # whether the perf buffer overflowed (bpftrace says so) or bpftrace exited first
            printed = _PRINTED.search(out)
            if printed is not None:
                lost = max(lost, int(printed.group(1)) - len(drops))
        else:
            for node, reason, location, count in parse_counts(out, self.nodes):
                key = (node, location.base, reason)
                totals[key] = totals.get(key, 0) + count
        if lost:
            notes.append(f"bpftrace lost {lost} events (perf buffer full, or still buffered when it stopped)")
        unplaced = _UNPLACED.search(out)
        if unplaced is not None and int(unplaced.group(1)):
            unattributed = int(unplaced.group(1))
            notes.append(
                f"{unattributed} drops on this machine had neither a device nor a socket, so no namespace:"
                " some may be this lab's"
            )
        self._result = TraceResult(
            "bpftrace",
            self.scope.name,
            drops=tuple(drops),
            lost=lost,
            unattributed=unattributed,
            seconds=time.monotonic() - self.started,
            notes=tuple(notes),
            totals=totals,
        )
        return self._result
