"""bpftrace on ``tracepoint:skb:kfree_skb``: exact lab and packet attribution, in-kernel counts.

The program reads the dropped skb's device, its network namespace (``dev->nd_net.net->ns.inum``)
and its first 96 bytes from the MAC header, and keeps only drops whose namespace is one of the
lab's: attribution by namespace, not by name, so two instances of one topology never mix.
Python then parses the headers (addresses, ports, the netlab marker).

``mode="count"`` aggregates in a kernel map instead of printing each drop, which keeps counts
exact at rates no per-event reader keeps up with. bpftrace prints from its ``BEGIN`` probe once
every probe is attached: that line is the ready barrier.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import time

from netlab.errors import KernelFeatureError, NetlabError
from netlab.headers import packet_of
from netlab.scope import Scope
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer, tool_refusal, tool_version
from netlab.tracers.events import DropEvent, Location, TraceResult
from netlab.tracers.kernel import reasons
from netlab.tracers.kernel.procrun import Helper
from netlab.tracers.kernel.symbols import kernel_symbols
from netlab.tracers.placement import maps

READY = "NETLAB-READY"
#: bpftrace parses the kernel's whole BTF before it attaches, which a TCG guest does slowly
ATTACH_TIMEOUT = 240.0
SNAP = 96
BTF = "/sys/kernel/btf/vmlinux"
_EVENT = re.compile(r"^D (\d+) (\d+) (\d+) (\S*) (\d+) ([0-9a-f]+) (\d+) (\d+) (\S+) ([01]) (\d+) (.*)$")
_COUNT = re.compile(r"^@drops\[(\d+), (\d+), ([^\]]+)\]: (\d+)$")
_LOST = re.compile(r"[Ll]ost (\d+) events?")
_PRINTED = re.compile(r"^@printed: (\d+)$", re.MULTILINE)
_UNPLACED = re.compile(r"^@unplaced: (\d+)$", re.MULTILINE)


def program(inodes: list[int], mode: str, with_reason: bool = True) -> str:
    """The bpftrace program for a lab whose namespaces have ``inodes``.

    ``with_reason`` False (kernels before 5.17, whose ``skb:kfree_skb`` has no ``reason``) puts
    a 0 where the reason goes, so the output has one shape on every kernel.
    """
    keep = " || ".join(f"$ns == {i}" for i in inodes) or "0"
    why = "args->reason" if with_reason else "0"
    if mode == "count":
        action = f"    @drops[$ns, {why}, ksym(args->location)] = count();"
    else:
        action = (
            "    $head = $skb->head;\n"
            "    $link = $skb->mac_header != 65535 && $skb->mac_header < $skb->network_header ? 1 : 0;\n"
            "    $off = $link ? $skb->mac_header : $skb->network_header;\n"
            '    printf("D %llu %u %d %s %d %llx %d %d %s %d %u %rx\\n", nsecs, $ns, $skb->dev->ifindex,\n'
            f"           $skb->dev->name, {why}, (uint64)args->location, args->protocol, pid, comm, $link,\n"
            f"           $skb->len, buf($head + $off, {SNAP}));\n"
            "    @printed = count();"
        )
    return (
        f'BEGIN {{ printf("{READY}\\n"); }}\n'
        "tracepoint:skb:kfree_skb\n{\n"
        "    $skb = (struct sk_buff *)args->skbaddr;\n"
        "    $ns = $skb->dev->nd_net.net->ns.inum;\n"
        "    if ($skb->dev == 0) {\n"
        "        // no device yet (local output before routing, a timer's retransmission): the\n"
        "        // socket's namespace; neither: counted, since it cannot be placed\n"
        "        if ($skb->sk != 0) { $ns = $skb->sk->__sk_common.skc_net.net->ns.inum; }\n"
        "        else { @unplaced = count(); }\n"
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


@functools.cache
def _accepts_btf(binary: str) -> bool:
    """bpftrace's own verdict on the kernel's BTF: the file can exist and still be refused."""
    info = subprocess.run([binary, "--info"], capture_output=True, text=True, check=False)
    return re.search(r"^\s*btf: yes", info.stdout + info.stderr, re.MULTILINE) is not None


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
        if not os.path.exists(BTF):
            return Probe(False, f"the kernel has no BTF ({BTF}); bpftrace cannot read struct sk_buff")
        _code, version = tool_version(binary)
        if not _accepts_btf(binary):
            return Probe(
                False,
                f"{version} does not use this kernel's BTF (bpftrace --info: 'btf: no'),"
                " so it cannot read struct sk_buff (seen on Debian's 5.10 with bpftrace 0.17)",
            )
        return Probe(True, f"{version} with BTF")

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
        self.helper = Helper(
            scope,
            ["bpftrace", "-e", program(sorted(self.nodes), mode, reasons.available())],
            env={"BPFTRACE_PERF_RB_PAGES": str(PERF_RB_PAGES)},
        )
        try:
            self._wait_ready()
        except BaseException:
            self.helper.stop()
            self.helper.cleanup()
            raise

    def _wait_ready(self, timeout: float = ATTACH_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while READY not in self.helper.stdout():
            if not self.helper.alive():
                errors = [ln for ln in self.helper.stderr().splitlines() if "RLIMIT_MEMLOCK" not in ln]
                raise KernelFeatureError(f"bpftrace failed to start: {' '.join(errors)[-600:]}")
            if time.monotonic() > deadline:
                raise KernelFeatureError(f"bpftrace did not attach within {timeout:.0f}s")
            time.sleep(0.02)

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
