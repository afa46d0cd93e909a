"""``perf record -e skb:kfree_skb -g`` + ``perf script``, parsed: the modern dropwatch.

The path tracepoints are recorded too, so drops get the same per-packet device paths and lab
attribution as with tracefs. Recording starts disabled and is enabled through perf's control
fifo; perf acknowledges, and only then does :meth:`PerfTracer.start` return (ready barrier).
``--namespaces`` makes perf record each task's network namespace, which stands in for the
process context tracefs reads live.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from netlab.errors import KernelFeatureError, NetlabError
from netlab.lab import Lab
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer, tool_refusal
from netlab.tracers.correlate import Correlator
from netlab.tracers.events import DropEvent, TraceResult
from netlab.tracers.instance import TRACEFS
from netlab.tracers.procrun import Helper
from netlab.tracers.records import Record, parse_stream
from netlab.tracers.tracefs import lab_map, other_lab_maps

PATH_EVENTS = ("net:net_dev_start_xmit", "net:netif_rx", "net:netif_receive_skb", "skb:consume_skb")
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


class PerfTracer(Tracer):
    """perf record + perf script."""

    name = "perf"
    summary = "perf record -e skb:kfree_skb -g -a + perf script, with stacks and device paths"

    def probe(self) -> Probe:
        refusal = tool_refusal("perf", "linux-perf")
        if refusal is not None:
            return refusal
        binary = shutil.which("perf") or "perf"
        if not (TRACEFS / "events" / "skb" / "kfree_skb").is_dir():
            return Probe(False, "tracefs is not mounted or the kernel lacks skb:kfree_skb")
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        if version.returncode != 0:
            return Probe(False, f"perf does not run: {version.stderr.strip() or version.stdout.strip()}")
        return Probe(True, version.stdout.strip())

    def start(self, lab: Lab, options: TraceOptions | None = None) -> Session:
        self.require()
        return PerfSession(lab, options or TraceOptions())


class PerfSession(Session):
    """One perf record of one lab."""

    def __init__(self, lab: Lab, options: TraceOptions) -> None:
        self.lab = lab
        self.started = time.monotonic()
        self._result: TraceResult | None = None
        events = ["-e", "skb:kfree_skb/call-graph=fp/" if options.stack else "skb:kfree_skb"]
        for ev in PATH_EVENTS:
            events += ["-e", ev]
        fifo_dir = Path(tempfile.mkdtemp(prefix="netlab-perf-"))
        self.ctl, self.ack = fifo_dir / "ctl", fifo_dir / "ack"
        os.mkfifo(self.ctl)
        os.mkfifo(self.ack)
        self.data = fifo_dir / "perf.data"
        argv = [
            "perf",
            "record",
            "-a",
            "--namespaces",
            "-D",
            "-1",
            "--control",
            f"fifo:{self.ctl},{self.ack}",
            "-o",
            str(self.data),
            *events,
        ]
        self.helper = Helper(lab, argv)
        self.fifo_dir = fifo_dir
        try:
            self._enable()
        except BaseException:
            self.helper.stop()
            raise

    def _enable(self) -> None:
        deadline = time.monotonic() + 30
        ctl = None
        while ctl is None:
            try:
                ctl = os.open(self.ctl, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                if not self.helper.alive() or time.monotonic() > deadline:
                    raise KernelFeatureError(f"perf record did not start: {self.helper.stderr().strip()}") from None
                time.sleep(0.01)
        ack = os.open(self.ack, os.O_RDONLY | os.O_NONBLOCK)
        try:
            os.write(ctl, b"enable\n")
            while time.monotonic() < deadline:
                try:
                    if os.read(ack, 16).startswith(b"ack"):
                        return
                except BlockingIOError:
                    pass
                time.sleep(0.005)
            raise KernelFeatureError("perf record never acknowledged 'enable'")
        finally:
            os.close(ctl)
            os.close(ack)

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
            for f in self.fifo_dir.iterdir():
                f.unlink()
            self.fifo_dir.rmdir()
        netns_of = parse_namespace_events(script.stdout)
        records = parse_script(script.stdout)
        me = os.getpid()
        for rec in records:
            rec.context = (netns_of.get(rec.pid), rec.pid == me)
        correlator = Correlator(lab_map(self.lab), other_lab_maps(self.lab), "perf")
        correlator.feed(records)
        self._result = TraceResult(
            "perf",
            self.lab.name,
            drops=correlator.drops,
            paths=correlator.paths,
            unattributed=correlator.unattributed,
            ambiguous=correlator.ambiguous,
            seconds=time.monotonic() - self.started,
            events=correlator.records,
        )
        lost = re.findall(r"(\d+) (?:lost|chunks LOST)", diagnostics)
        self._result.lost = sum(int(n) for n in lost)
        return self._result
