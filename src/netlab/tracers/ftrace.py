"""The function and function_graph tracers (the seeds' tcp_sendmsg, tcp_recvmsg,
tcp_retransmit_skb, netif_receive_skb; ``function_graph -g net_rx_action``).

Where the kernel allows them, a session sets ``current_tracer`` in its own instance and reads
the calls back. Kernels in lockdown (or built without the function tracer) refuse: the probe
tries it in a scratch instance and reports the kernel's answer (EPERM here) instead of
assuming. The parsers are tested on recorded output, so they work where the tracer runs.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import time

from netlab.apply import procs
from netlab.errors import KernelFeatureError
from netlab.lab import Lab
from netlab.teardown import remove_instance
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer
from netlab.tracers.events import Call, DropEvent, TraceResult
from netlab.tracers.tracefs import INSTANCE_PREFIX, TRACEFS, mounted

FUNCTIONS = ("tcp_sendmsg", "tcp_recvmsg", "tcp_retransmit_skb", "netif_receive_skb")
GRAPH_ROOT = "net_rx_action"
_FUNC = re.compile(r"^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+(\d+\.\d+):\s+(\S+?)(?: <-(\S+))?\s*$")
_GRAPH = re.compile(r"^\s*(\d+)\)\s+(?:([\d.]+) us\s+)?\|\s(\s*)(\w[\w.]*)\(\)\s*[;{]")
_counter = itertools.count()


def parse_function(text: str) -> list[Call]:
    """``function`` tracer output: ``comm-pid [cpu] flags ts: func <-parent``."""
    calls = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = _FUNC.match(line)
        if m:
            calls.append(Call(float(m.group(4)), int(m.group(3)), int(m.group(2)), m.group(5), m.group(6)))
    return calls


def parse_graph(text: str) -> list[Call]:
    """``function_graph`` output: ``cpu)  duration |   func() {`` with indentation as depth."""
    calls = []
    for line in text.splitlines():
        m = _GRAPH.match(line)
        if m:
            depth = len(m.group(3)) // 2
            duration = float(m.group(2)) if m.group(2) else None
            calls.append(Call(0.0, int(m.group(1)), 0, m.group(4), None, depth, duration))
    return calls


def _try_tracer(kind: str) -> str | None:
    """None if the kernel lets an instance use tracer ``kind``, else its refusal."""
    pid, start = procs.me()  # the naming `netlab clean` parses to find instances of dead processes
    scratch = TRACEFS / "instances" / f"{INSTANCE_PREFIX}{pid}_{start}_p{next(_counter)}"
    try:
        scratch.mkdir()
    except OSError as exc:
        return f"cannot create a tracefs instance: {exc.strerror}"
    try:
        (scratch / "current_tracer").write_text(kind)
        (scratch / "current_tracer").write_text("nop")
        return None
    except OSError as exc:
        if exc.errno == errno.EPERM:
            return (
                f"the kernel refuses the {kind} tracer: writing '{kind}' to current_tracer gives EPERM"
                " (kernel lockdown or a restricted tracefs)"
            )
        return f"writing '{kind}' to current_tracer: {exc.strerror}"
    finally:
        with contextlib.suppress(OSError):
            remove_instance(scratch)


class FtraceTracer(Tracer):
    """function / function_graph."""

    name = "ftrace"
    summary = "function / function_graph tracers on the seeds' TCP and RX functions"

    def __init__(self, kind: str = "function") -> None:
        self.kind = kind

    def probe(self) -> Probe:
        if os.geteuid() != 0:
            return Probe(False, "the function tracer needs root")
        if not mounted():
            return Probe(False, f"tracefs is not mounted at {TRACEFS}")
        available = (TRACEFS / "available_tracers").read_text().split()
        if self.kind not in available:
            return Probe(False, f"the kernel has no {self.kind} tracer (available: {' '.join(available)})")
        refusal = _try_tracer(self.kind)
        if refusal:
            return Probe(False, refusal)
        return Probe(True, f"{self.kind} tracer allowed")

    def start(self, lab: Lab, options: TraceOptions | None = None) -> Session:
        self.require()
        return FtraceSession(lab, self.kind)


class FtraceSession(Session):
    """One function-tracer instance (machine-wide calls: functions have no namespace)."""

    def __init__(self, lab: Lab, kind: str) -> None:
        self.lab = lab
        self.kind = kind
        pid, start = procs.me()
        self.path = TRACEFS / "instances" / f"{INSTANCE_PREFIX}{pid}_{start}_f{next(_counter)}"
        self.started = time.monotonic()
        self._result: TraceResult | None = None
        lab.record({"op": "tracefs", "key": self.path.name, "path": str(self.path)})
        self.path.mkdir()
        try:
            if kind == "function_graph":
                (self.path / "set_graph_function").write_text(GRAPH_ROOT)
            else:
                (self.path / "set_ftrace_filter").write_text("\n".join(FUNCTIONS))
            (self.path / "current_tracer").write_text(kind)
        except OSError as exc:
            remove_instance(self.path)
            raise KernelFeatureError(f"{kind} tracer: {exc.strerror}") from None

    def poll(self) -> list[DropEvent]:
        return []

    def stop(self) -> TraceResult:
        if self._result is None:
            text = (self.path / "trace").read_text(errors="replace")
            with contextlib.suppress(OSError):
                (self.path / "current_tracer").write_text("nop")
            remove_instance(self.path)
            self.lab.record({"op": "tracefs-done", "key": self.path.name})
            calls = parse_graph(text) if self.kind == "function_graph" else parse_function(text)
            self._result = TraceResult("ftrace", self.lab.name, calls=calls, seconds=time.monotonic() - self.started)
        return self._result
