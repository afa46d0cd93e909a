"""The function tracers: a packet's walk through the kernel, function by function.

Seed 003 followed a TCP segment across a bridge by hand with ``function_graph``. Here
``TraceOptions(graph=True)`` (``netlab trace LAB --graph``) traces the seeds' functions on
that walk (:data:`WALK`: ``tcp_sendmsg`` ... ``veth_xmit`` ... ``br_handle_frame`` ...
``tcp_v4_rcv``) with ``function_graph`` in a private trace buffer (tracefs instance): nesting, per-call
durations, the task. Without ``graph`` the plain ``function`` tracer records entries of the
seeds' TCP functions (:data:`FUNCTIONS`).

What the kernel allows decides what you get, and the result says which:
- Kernels before 6.11 refuse ``function_graph`` in a trace buffer (only the global one, which
  other tools use, may have it). There the walk comes from the ``function`` tracer: the same
  calls in the same order, each with its caller, but without nesting or durations.
- Functions are matched with their compiler suffixes (``__netif_receive_skb_core.constprop.0``)
  and only where the kernel has them: names differ between versions (``netif_rx`` became
  ``__netif_rx`` on veth's path in 6.0; ``dev_queue_xmit`` is inline from 5.18) and modules
  (veth, bridge) only list their functions once loaded, i.e. once the lab is up.
- Functions have no namespace, so the trace is limited by task: this process (its threads
  and, through ``function-fork``, what it starts after), the processes inside the lab's
  namespaces, and those that enter them while the trace runs (found every 50 ms). Receive
  processing usually runs in the sender's context (softirq on the way out of
  ``dev_queue_xmit``), so a flow's whole walk is there; on a busy CPU another traced task's
  softirq may drain the backlog first (then :func:`walk` by CPU follows it), and work a kernel
  thread picks up (ksoftirqd under load, timers) is not traced.
- Kernels in lockdown refuse the function tracers altogether (EPERM): the probe tries it in a
  scratch instance and reports the kernel's answer instead of assuming.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace

from netlab.errors import KernelFeatureError
from netlab.runtime import netns
from netlab.runtime.tracebuffers import TRACEFS, TraceBuffer, mounted
from netlab.scope import Scope
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer
from netlab.tracers.events import Call, DropEvent, TraceResult, base_function

FUNCTIONS = ("tcp_sendmsg", "tcp_recvmsg", "tcp_retransmit_skb", "netif_receive_skb")
WALK = (
    "tcp_sendmsg",
    "__ip_queue_xmit",
    "dev_queue_xmit",
    "__dev_queue_xmit",
    "veth_xmit",
    "netif_rx",
    "__netif_rx",
    "__netif_receive_skb_core",
    "br_handle_frame",
    "br_forward",
    "__br_forward",
    "ip_rcv",
    "tcp_v4_rcv",
    "tcp_queue_rcv",
    "tcp_retransmit_skb",
)
#: seed 003's walk of a TCP data segment from ns-calm1 across calmbr to ns-calm2, in the seeds' names
SEED_003_WALK = (
    "tcp_sendmsg",
    "__ip_queue_xmit",
    "dev_queue_xmit",
    "veth_xmit",
    "netif_rx",
    "__netif_receive_skb_core",
    "br_handle_frame",
    "br_forward",
    "dev_queue_xmit",
    "veth_xmit",
    "netif_rx",
    "__netif_receive_skb_core",
    "ip_rcv",
    "tcp_v4_rcv",
    "tcp_queue_rcv",
)
#: one name for a function and the inner function it became, so walks compare across kernels
SEED_NAMES = {"__dev_queue_xmit": "dev_queue_xmit", "__netif_rx": "netif_rx", "__br_forward": "br_forward"}
GRAPH_OPTIONS = ("funcgraph-proc", "funcgraph-abstime", "funcgraph-tail")
FOLLOW_INTERVAL = 0.05  # seconds between scans for processes that entered the lab

_FUNC = re.compile(r"^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+(\d+\.\d+):\s+(\S+?)(?: <-(\S+))?\s*$")
_GRAPH = re.compile(
    r"^\s*(?:(?P<time>\d+\.\d+)\s+\|\s+)?(?P<cpu>\d+)\)\s+(?:(?P<task>\S.*?)\s+\|\s+)?"
    r"(?:[!#*@$+]\s+)?(?:(?P<dur>[\d.]+) us\s+)?\|\s(?P<indent>\s*)(?P<body>\S.*?)\s*$"
)
_ENTRY = re.compile(r"^(?P<func>[\w.]+)(?: \[\w+\])?\(\)\s*(?P<open>[;{])")
_EXIT = re.compile(r"^\}")


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
    """``function_graph`` output, with or without the abstime/proc columns: one Call per entry
    (``func() {`` or the leaf ``func();``), its depth from the indentation, and its duration
    from the leaf line or from the ``}`` that closes it on the same CPU."""
    calls: list[Call] = []
    open_calls: dict[int, list[int]] = {}  # per CPU: indexes of the calls not closed yet
    for line in text.splitlines():
        m = _GRAPH.match(line)
        if not m:
            continue
        cpu = int(m["cpu"])
        duration = float(m["dur"]) if m["dur"] else None
        stack = open_calls.setdefault(cpu, [])
        entry = _ENTRY.match(m["body"])
        if entry:
            pid = 0
            if m["task"] and "-" in m["task"]:
                with contextlib.suppress(ValueError):
                    pid = int(m["task"].rsplit("-", 1)[1])
            parent = calls[stack[-1]].function if stack else None
            depth = len(m["indent"]) // 2
            calls.append(Call(float(m["time"] or 0.0), cpu, pid, entry["func"], parent, depth, duration))
            if entry["open"] == "{":
                stack.append(len(calls) - 1)
        elif _EXIT.match(m["body"]) and stack:
            i = stack.pop()
            calls[i] = replace(calls[i], duration_us=duration)
    return calls


def seed_name(function: str) -> str:
    """The seeds' name of a traced function: no compiler suffix, inner functions as their outer."""
    base = base_function(function)
    return SEED_NAMES.get(base, base)


def walk(calls: Iterable[Call], pid: int | None = None, cpu: int | None = None) -> list[str]:
    """The seeds' names of ``calls`` (of task ``pid``, of ``cpu``, if given) in order, repeats in
    a row counted once (``dev_queue_xmit`` calls ``__dev_queue_xmit`` on 5.10: one step of the
    walk). By CPU is how to follow a packet whose receive ran in another task's softirq: a
    device's backlog is per CPU, drained by whichever task enables bottom halves there first."""
    out: list[str] = []
    for call in calls:
        if (pid is not None and call.pid != pid) or (cpu is not None and call.cpu != cpu):
            continue
        name = seed_name(call.function)
        if not out or out[-1] != name:
            out.append(name)
    return out


def contains_in_order(seq: Sequence[str], wanted: Sequence[str]) -> bool:
    """Is ``wanted`` a subsequence of ``seq`` (in order, gaps allowed)?"""
    it = iter(seq)
    return all(any(x == w for x in it) for w in wanted)


def kernel_functions(names: Iterable[str]) -> list[str]:
    """The traceable kernel functions for ``names``: exact, or with a compiler suffix
    (``.constprop.0``, ``.isra.0``), as listed in available_filter_functions now."""
    wanted = set(names)
    found: list[str] = []
    with open(TRACEFS / "available_filter_functions", encoding="utf-8", errors="replace") as f:
        for line in f:
            symbol = line.split(maxsplit=1)[0] if line.strip() else ""
            if symbol.split(".", 1)[0] in wanted and symbol not in found:
                found.append(symbol)
    return found


def _one_function() -> str | None:
    """The first traceable function (one line of available_filter_functions)."""
    with contextlib.suppress(OSError), open(TRACEFS / "available_filter_functions", encoding="utf-8") as f:
        line = f.readline().split()
        return line[0] if line else None
    return None


@functools.cache
def _try_tracer(kind: str) -> str | None:
    """None if the kernel lets a trace buffer use tracer ``kind``, else its refusal; once per process.

    The scratch instance traces one function: switching a tracer on with no filter patches every
    traceable call site and back, slow in a TCG guest. The refusals it looks for (lockdown's
    EPERM, a buffer's EINVAL for function_graph before 6.11) do not depend on the filter."""
    try:
        scratch = TraceBuffer("p")
    except Exception as exc:  # noqa: BLE001 -- the refusal is the answer
        return str(exc)
    with scratch:
        try:
            one = _one_function()
            if one is not None:
                scratch.write("set_ftrace_filter", one)
            scratch.write("current_tracer", kind)
            scratch.write("current_tracer", "nop")
            return None
        except OSError as exc:
            if exc.errno == errno.EPERM:
                return (
                    f"the kernel refuses the {kind} tracer: writing '{kind}' to current_tracer gives EPERM"
                    " (kernel lockdown or a restricted tracefs)"
                )
            if exc.errno == errno.EINVAL and kind == "function_graph":
                return "this kernel allows function_graph only in the global tracefs instance (before 6.11)"
            return f"writing '{kind}' to current_tracer: {exc.strerror}"
    return None


def softirq_threads() -> set[int]:
    """The kernel's ``ksoftirqd/N`` threads. When softirq work runs long (a TCG guest, two guests
    on two cores) the kernel defers a CPU's backlog to its ksoftirqd, and a packet's receive half
    runs there: a walk limited to the lab's tasks then lost it (seed 003's walk on 5.10, now and
    then: 'split between the sending process, another pid and cpu 0'). The trace is filtered to
    the walk's few functions, so following these threads adds little else."""
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry.name}/comm", encoding="utf-8") as f:
                if f.read().startswith("ksoftirqd/"):
                    found.add(int(entry.name))
    return found


def _lab_processes(scope: Scope) -> set[int]:
    """The processes inside the lab's namespaces now."""

    return {pid for pids in netns.pids_in([n.netns for n in scope.nodes.values()]).values() for pid in pids}


class _Follower(threading.Thread):
    """Adds processes that enter the lab's namespaces to ``set_ftrace_pid`` while the trace runs
    (``netlab exec LAB NODE -- ...`` from another shell is nobody's child we know of). A process
    is traced from the scan that finds it: one that lives less than ``FOLLOW_INTERVAL`` may be
    missed, its children (``function-fork``) are not."""

    def __init__(self, scope: Scope, buffer: TraceBuffer, known: set[int]) -> None:
        super().__init__(daemon=True, name="ftrace follower")
        self.scope, self.buffer, self.known = scope, buffer, known
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(FOLLOW_INTERVAL):
            new = _lab_processes(self.scope) - self.known
            if new:
                with contextlib.suppress(OSError), open(self.buffer.path / "set_ftrace_pid", "a") as f:
                    f.write(" ".join(map(str, sorted(new))))
                self.known |= new


class FtraceTracer(Tracer):
    """function / function_graph in a private instance."""

    name = "ftrace"
    summary = "a packet's walk function by function (--graph: function_graph), or the seeds' TCP functions"
    accepts = frozenset({"graph"})

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
        graph = "function_graph" in available and _try_tracer("function_graph") is None
        return Probe(
            True,
            f"{self.kind} tracer allowed; --graph "
            + ("with function_graph" if graph else "as a flat walk (no function_graph in a trace buffer here)"),
        )

    def _start(self, scope: Scope, options: TraceOptions) -> Session:
        return FtraceSession(scope, self.kind, options)


class FtraceSession(Session):
    """One function-tracer instance, limited to the lab's tasks."""

    def __init__(self, scope: Scope, kind: str, options: TraceOptions) -> None:
        self.scope = scope
        self.graph = options.graph
        self.started = time.monotonic()
        self.notes: list[str] = []
        self._result: TraceResult | None = None
        self.functions = kernel_functions(WALK if self.graph else FUNCTIONS)
        if not self.functions:
            raise KernelFeatureError("none of the functions to trace is traceable on this kernel")
        self.buffer = TraceBuffer("f", keep=scope.keep)
        try:
            self.kind = self._configure(kind)
        except BaseException:
            self.buffer.close()
            raise
        self.follower = _Follower(scope, self.buffer, set(self.tasks))
        self.follower.start()

    def _configure(self, kind: str) -> str:
        buf = self.buffer
        self.tasks = {int(t) for t in os.listdir("/proc/self/task")} | _lab_processes(self.scope) | softirq_threads()
        try:
            buf.write("set_ftrace_filter", "\n".join(self.functions))
            buf.write("set_ftrace_pid", " ".join(map(str, sorted(self.tasks))))
            buf.write("options/function-fork", "1")
        except OSError as exc:
            raise KernelFeatureError(f"function tracer filters: {exc.strerror}") from None
        chosen = "function_graph" if self.graph else kind
        try:
            buf.write("current_tracer", chosen)
        except OSError as exc:
            if chosen != "function_graph" or exc.errno != errno.EINVAL:
                raise KernelFeatureError(f"{chosen} tracer: {exc.strerror}") from None
            self.notes.append(
                "this kernel allows function_graph only in the global instance (before 6.11):"
                " the walk is from the function tracer, in order, without nesting or durations"
            )
            chosen = "function"
            try:
                buf.write("current_tracer", chosen)
            except OSError as exc2:
                raise KernelFeatureError(f"function tracer: {exc2.strerror}") from None
        if chosen == "function_graph":
            for option in GRAPH_OPTIONS:
                with contextlib.suppress(OSError):
                    buf.write(f"options/{option}", "1")
        return chosen

    def poll(self) -> list[DropEvent]:
        return []

    def stop(self) -> TraceResult:
        if self._result is None:
            self.follower.done.set()
            self.follower.join()
            try:
                with contextlib.suppress(OSError):
                    self.buffer.write("tracing_on", "0")  # switching the tracer would clear the buffer
                text = (self.buffer.path / "trace").read_text(errors="replace")
            finally:
                self.buffer.close()
            calls = parse_graph(text) if self.kind == "function_graph" else parse_function(text)
            walked = f"{self.kind} on {len(self.functions)} functions: {' '.join(self.functions)}"
            self._result = TraceResult(
                "ftrace",
                self.scope.name,
                calls=tuple(calls),
                seconds=time.monotonic() - self.started,
                notes=(*self.notes, walked),
            )
        return self._result
