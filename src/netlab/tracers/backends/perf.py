"""``perf record -e skb:kfree_skb -g`` + ``perf script``, parsed: the modern dropwatch.

The path tracepoints are recorded too, so drops get the same per-packet device paths and lab
attribution as with tracefs. Recording starts disabled and is enabled through perf's control
fifo; perf acknowledges, and only then does :meth:`PerfTracer.start` return (ready barrier).
``--namespaces`` makes perf record each task's network namespace, which stands in for the
process context tracefs reads live.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from netlab.errors import KernelFeatureError, NetlabError
from netlab.runtime import netns, wait
from netlab.runtime.tracebuffers import TRACEFS
from netlab.scope import Scope
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer, tool_refusal, tool_version
from netlab.tracers.decode.records import Record, parse_stream
from netlab.tracers.events import DropEvent, TraceResult
from netlab.tracers.kernel import tracepoints
from netlab.tracers.kernel.procrun import Helper
from netlab.tracers.kernel.symbols import Symbols, kernel_symbols, symbolize
from netlab.tracers.placement import maps
from netlab.tracers.placement.correlate import Correlator

PERF_EVENTS = tuple(tracepoints.perf_name(p) for p in (*tracepoints.PATH, tracepoints.FREE))
_NS_EVENT = re.compile(r"PERF_RECORD_NAMESPACES\s+(\d+)/(\d+).*?net: \S+/(0x[0-9a-f]+)")


def parse_namespace_events(text: str) -> dict[int, int]:
    """pid -> network-namespace inode from ``perf script --show-namespace-events`` output."""
    out: dict[int, int] = {}
    for m in _NS_EVENT.finditer(text):
        out[int(m.group(2))] = int(m.group(3), 16)
    return out


def parse_script(text: str) -> list[Record]:
    """Records (with stacks) from ``perf script`` output, time-ordered."""
    return sorted(parse_stream(text.splitlines()), key=lambda r: r.time)


def symbolize_locations(records: list[Record], symbols: Symbols | None = None) -> None:
    """Kernels before 6.2 print ``location=%p``: perf shows the raw address, which is turned
    into ``function+offset`` here from /proc/kallsyms (later kernels print ``%pS`` themselves)."""

    done: dict[str, str] = {}
    for rec in records:
        location = rec.fields.get("location", "")
        if not location.startswith("0x"):
            continue
        if location not in done:
            symbols = symbols or kernel_symbols()
            try:
                done[location] = symbolize(location, symbols)
            except NetlabError:
                done[location] = location
        rec.fields["location"] = done[location]


class PerfTracer(Tracer):
    """perf record + perf script."""

    name = "perf"
    summary = "perf record -e skb:kfree_skb -g -a + perf script, with stacks and device paths"
    accepts = frozenset({"stack"})

    def probe(self) -> Probe:
        refusal = tool_refusal("perf")
        if refusal is not None:
            return refusal
        binary = shutil.which("perf") or "perf"
        if not (TRACEFS / "events" / "skb" / "kfree_skb").is_dir():
            return Probe(False, "tracefs is not mounted or the kernel lacks skb:kfree_skb")
        code, version = tool_version(binary)
        if code != 0:
            return Probe(False, f"perf does not run: {version}")
        return Probe(True, version)

    def _start(self, scope: Scope, options: TraceOptions) -> Session:
        return PerfSession(scope, options)


class PerfSession(Session):
    """One perf record of one lab."""

    def __init__(self, scope: Scope, options: TraceOptions) -> None:
        self.scope = scope
        self.started = time.monotonic()
        self._result: TraceResult | None = None
        events = ["-e", "skb:kfree_skb/call-graph=fp/" if options.stack else "skb:kfree_skb"]
        for ev in PERF_EVENTS:
            events += ["-e", ev]
        # perf is told when to start recording over a pipe pair (--control fd:CTL,ACK), not
        # named FIFOs: a FIFO on a 9p mount (a matrix guest's work directory) never delivers
        self.data_dir = Path(tempfile.mkdtemp(prefix="netlab-perf-"))
        self.data = self.data_dir / "perf.data"
        ctl_r, self._ctl = os.pipe()
        self._ack, ack_w = os.pipe()
        argv = [
            "perf",
            "record",
            "-a",
            "--namespaces",
            "--no-buildid",  # kernel samples only: no build-ids to collect from every DSO at exit
            "--no-buildid-cache",
            "-D",
            "-1",
            "--control",
            f"fd:{ctl_r},{ack_w}",
            "-o",
            str(self.data),
            *events,
        ]
        # perf record walks the running kernel's whole modules tree at start (to map module
        # addresses to .ko files) although samples are symbolized from kallsyms: thousands of
        # lookups, each a 9p round trip in a matrix guest.
        # It runs with that directory hidden behind an empty tmpfs of its own mount namespace.
        modules = f"/lib/modules/{os.uname().release}"
        try:
            self.helper = Helper(
                scope, argv, pass_fds=(ctl_r, ack_w), preexec=functools.partial(netns.hide_for_exec, modules)
            )
        finally:
            os.close(ctl_r)
            os.close(ack_w)
        try:
            self._enable()
        except BaseException:
            self.helper.stop()
            self.helper.cleanup()
            self._close_control()
            self._remove_data()
            raise

    def _enable(self) -> None:
        """Ask perf to start recording, and wait until it says it does (setting up takes a
        while: it reads every process's maps, minutes in a slow guest, hence the bound)."""
        os.write(self._ctl, b"enable\n")
        deadline = time.monotonic() + wait.PERF_RECORDING.timeout
        got = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._ack], [], [], 0.1)
            if ready:
                chunk = os.read(self._ack, 64)
                if not chunk:
                    break  # perf closed its end: it exited
                got += chunk
                if got.startswith(b"ack"):
                    return
            elif not self.helper.alive():
                break
        if not self.helper.alive():
            raise KernelFeatureError(f"perf record exited: {self.helper.stderr().strip()[-500:]}")
        raise KernelFeatureError(f"perf record did not acknowledge 'enable' within {wait.PERF_RECORDING.timeout:.0f}s")

    def _close_control(self) -> None:
        for fd in (self._ctl, self._ack):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _remove_data(self) -> None:
        for f in self.data_dir.iterdir():
            f.unlink()
        self.data_dir.rmdir()

    def poll(self) -> list[DropEvent]:
        return []  # perf writes a file; results come at stop

    def stop(self) -> TraceResult:
        if self._result is not None:
            return self._result
        try:
            self.helper.stop()
            diagnostics = self.helper.stderr()
            script = subprocess.run(
                [
                    "perf",
                    "script",
                    "-i",
                    str(self.data),
                    "--show-namespace-events",
                    "-F",
                    "comm,pid,cpu,time,event,trace,ip,sym,symoff",
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            if script.returncode != 0:
                raise NetlabError(f"perf script failed: {script.stderr.strip()[-500:]}")
        finally:
            self.helper.cleanup()
            self._close_control()
            self._remove_data()
        netns_of = parse_namespace_events(script.stdout)
        records = parse_script(script.stdout)
        symbolize_locations(records)
        me = os.getpid()
        for rec in records:
            rec.context = (netns_of.get(rec.pid), rec.pid == me)
        correlator = Correlator(maps.of(self.scope), maps.others(self.scope), "perf")
        correlator.feed(records)
        lost = re.findall(r"(\d+) (?:lost|chunks LOST)", diagnostics)
        self._result = correlator.result(time.monotonic() - self.started, lost=sum(int(n) for n in lost))
        return self._result
