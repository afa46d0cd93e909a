"""The tracer interface: probe, start on a lab, stop to get events.

A tracer never assumes a capability: ``probe()`` checks this machine (binary present, kernel
feature present, privileges) and explains a refusal in one sentence a user can act on. What
the CLI and the pytest plugin do with a refusal depends on whether the user asked for that
tracer (error) or not (skipped, with the reason shown).
"""

from __future__ import annotations

import abc
import functools
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

from netlab import programs
from netlab.errors import KernelFeatureError, PrivilegeError, UsageError
from netlab.lab import Lab
from netlab.tracers.events import DropEvent, TraceResult
from netlab.tracers.rules import RuleWatch
from netlab.traffic import sent


@dataclass(frozen=True)
class Probe:
    """Whether a tracer can run here; ``detail`` says why not, or what it will use."""

    usable: bool
    detail: str


@dataclass(frozen=True)
class TraceOptions:
    """What a session should collect."""

    stack: bool = False
    buffer_kb: int = 8192
    #: the function tracer's walk with function_graph (``netlab trace --graph``)
    graph: bool = False
    #: name the firewall rule of each netfilter drop from the nodes' rule counters
    #: (:mod:`netlab.tracers.rules`; two ``iptables-save -c`` per node at start and stop)
    rules: bool = True
    #: count drops in the kernel instead of reporting each (bpftrace: exact under any load,
    #: but without per-packet detail)
    count: bool = False

    def asked(self) -> set[str]:
        """The options that only some tracers have, among those set."""
        return {name for name in CHOOSABLE if getattr(self, name)}

    @classmethod
    def parse(cls, words: list[str]) -> TraceOptions:
        """``["stack", "count"]`` (from ``--netlab-tracer bpftrace:count``) -> options."""
        unknown = sorted(set(words) - set(CHOOSABLE))
        if unknown:
            raise UsageError(f"unknown tracer option {', '.join(unknown)} (known: {', '.join(CHOOSABLE)})")
        return cls(**dict.fromkeys(words, True))


#: the options a tracer has or has not (each tracer lists its own in ``Tracer.accepts``)
CHOOSABLE = ("stack", "count", "graph")


@functools.cache
def tool_version(binary: str) -> tuple[int, str]:
    """``BINARY --version`` (exit code, what it printed), once per process: perf and bpftrace map
    large libraries at every start (bpftrace's LLVM is 110 MB), ~2.5 s in a TCG guest, and a
    scenario probed each tracer twice (the skip check, then the start)."""
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return done.returncode, (done.stdout.strip() or done.stderr.strip())


def tool_refusal(binary: str) -> Probe | None:
    """The common first half of a probe: the tool is installed and we are root (None: both hold)."""
    if shutil.which(binary) is None:
        return Probe(False, f"{binary} is not installed (apt-get install {programs.package(binary)})")
    if os.geteuid() != 0:
        return Probe(False, f"{binary} needs root")
    return None


class Session(abc.ABC):
    """A running trace of one lab."""

    #: the lab's rule counters from the start, set by :meth:`Tracer.start` (None: not asked)
    rules: RuleWatch | None = None
    #: (lab, wall-clock start) for describing what netlab sent, set by :meth:`Tracer.start`
    window: tuple[str, float] | None = None

    @abc.abstractmethod
    def poll(self) -> list[DropEvent]:
        """Drops seen since the last poll (for live views); may be empty."""

    def stop(self) -> TraceResult:
        """Stop tracing, release everything the session made, return what it saw (each
        netfilter drop named by its rule where the counters tell)."""
        result = self._stop()
        if self.window is not None:
            lab, start = self.window
            sent.settle(result, lab, start, time.time())
        if self.rules is not None:
            self.rules.explain(result)
        if self.window is not None:
            sent.describe(result, lab, start, time.time())
        if result.contested:
            result.notes.append(
                f"{len(result.contested)} drops could belong to another lab with the same device names;"
                " the bpftrace tracer attributes by namespace exactly"
            )
        return result

    def _stop(self) -> TraceResult:
        """The tracer's own stop: release what it made, return what it saw (idempotent). Not
        abstract so that a third-party session written against ``stop`` alone still works."""
        raise NotImplementedError(f"{type(self).__name__} implements neither stop nor _stop")

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


#: How long the end of a traced block waits before the tracer stops. What a block sends is
#: processed in its sender's own softirq before the send returns, but the other end of a veth
#: may hand a frame to ksoftirqd, and some frees come from a timer (a TX completion, a deferred
#: free): bounded, short, and in one place.
SETTLE = 0.15


class Tracing:
    """A trace around a ``with`` block: recording (the tracer's ready barrier) on entry,
    stopped on a clean exit after :data:`SETTLE`, and stopped at once when the block raised."""

    def __init__(
        self, tracer: Tracer, lab: Lab, options: TraceOptions | None = None, *, settle: float | None = None
    ) -> None:
        self.tracer, self.lab, self.options = tracer, lab, options or TraceOptions()
        self.settle = SETTLE if settle is None else settle
        self._session: Session | None = None
        self._result: TraceResult | None = None

    @property
    def result(self) -> TraceResult:
        """What the tracer saw; there is none until the ``with`` block has ended."""
        if self._result is None:
            raise RuntimeError("the trace is still running: read .result after the with block")
        return self._result

    def __enter__(self) -> Tracing:
        self._session = self.tracer.start(self.lab, self.options)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            time.sleep(self.settle)
        assert self._session is not None
        self._result = self._session.stop()


class Tracer(abc.ABC):
    """A way of finding out where packets die."""

    name: ClassVar[str]
    summary: ClassVar[str]

    @abc.abstractmethod
    def probe(self) -> Probe:
        """Can this tracer run on this machine, and if not, why not?"""

    #: the tracer reports drops (so their rules are worth naming); the counters tracer does not
    reports_drops: ClassVar[bool] = True
    #: which of :data:`CHOOSABLE` it has; asking for another is refused
    accepts: ClassVar[frozenset[str]] = frozenset()

    def check(self, options: TraceOptions) -> None:
        """Refuse, with what it does have, an option this tracer does not have."""
        missing = options.asked() - self.accepts
        if missing:
            has = ", ".join(sorted(self.accepts)) or "none"
            raise UsageError(f"tracer {self.name} has no {' or '.join(sorted(missing))} option (its options: {has})")

    def start(self, lab: Lab, options: TraceOptions | None = None) -> Session:
        """Start tracing ``lab``; returns once the tracer is really recording."""
        options = options or TraceOptions()
        self.check(options)
        watch = RuleWatch(lab) if options.rules and self.reports_drops else None
        start = time.time()
        session = self._start(lab, options)
        session.rules, session.window = watch, (lab.name, start)
        return session

    def _start(self, lab: Lab, options: TraceOptions) -> Session:
        """The tracer's own start; returns once it is really recording. Not abstract so that a
        third-party tracer written against ``start`` alone still works."""
        raise NotImplementedError(f"tracer {self.name} implements neither start nor _start")

    def tracing(self, lab: Lab, options: TraceOptions | None = None, *, settle: float | None = None) -> Tracing:
        """``with tracer.tracing(lab) as t: ...`` then ``t.result``."""
        return Tracing(self, lab, options, settle=settle)

    def require(self) -> None:
        """Raise the right error, with the probe's reason, when the tracer cannot run."""
        found = self.probe()
        if not found.usable:
            if os.geteuid() != 0:
                raise PrivilegeError(f"tracer '{self.name}' cannot run: {found.detail}", hint="run as root")
            raise KernelFeatureError(f"tracer '{self.name}' cannot run here: {found.detail}")
