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
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

from netlab import programs
from netlab.errors import KernelFeatureError, PrivilegeError, UsageError
from netlab.scope import Scope
from netlab.tracers.events import DropEvent, TraceResult


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
    #: (:mod:`netlab.tracing.rules`; ``iptables-save -c`` per node with tables, at start and stop)
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
    large libraries at every start (bpftrace's LLVM), slow in a TCG guest, and a process asks
    for each tracer's version whenever it checks whether the tracer can run."""
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

    @abc.abstractmethod
    def poll(self) -> list[DropEvent]:
        """Drops seen since the last poll (for live views); may be empty."""

    @abc.abstractmethod
    def stop(self) -> TraceResult:
        """Stop tracing, release everything the session made, return what it saw (idempotent).
        What is added to it (rule names, what netlab sent) is :mod:`netlab.findings`' work."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class Tracer(abc.ABC):
    """A way of finding out where packets die."""

    name: ClassVar[str]
    summary: ClassVar[str]

    @abc.abstractmethod
    def probe(self) -> Probe:
        """Can this tracer run on this machine, and if not, why not?"""

    #: the tracer reports drops (so their rules are worth naming); the counters tracer does not
    reports_drops: ClassVar[bool] = True
    #: the clock of its drops' times where it is the system's CLOCK_MONOTONIC (bpftrace's
    #: nsecs), so they can be set beside a capture's; None: the trace buffer's own clock
    monotonic_times: ClassVar[bool] = False
    #: which of :data:`CHOOSABLE` it has; asking for another is refused
    accepts: ClassVar[frozenset[str]] = frozenset()

    def check(self, options: TraceOptions) -> None:
        """Refuse, with what it does have, an option this tracer does not have."""
        missing = options.asked() - self.accepts
        if missing:
            has = ", ".join(sorted(self.accepts)) or "none"
            raise UsageError(f"tracer {self.name} has no {' or '.join(sorted(missing))} option (its options: {has})")

    def start(self, scope: Scope, options: TraceOptions | None = None) -> Session:
        """Start tracing ``scope``; returns once the tracer is really recording. Refuses an
        option the tracer has not, and a machine it cannot run on (:meth:`require`)."""
        options = options or TraceOptions()
        self.check(options)
        self.require()
        return self._start(scope, options)

    def _start(self, scope: Scope, options: TraceOptions) -> Session:
        """The tracer's own start; returns once it is really recording. Not abstract so that a
        third-party tracer written against ``start`` alone still works."""
        raise NotImplementedError(f"tracer {self.name} implements neither start nor _start")

    @functools.cached_property
    def found(self) -> Probe:
        """:meth:`probe`, once per tracer object: a probe can compile C or start the tool, and
        whoever asks (the pytest fixture that skips, the trace that starts it) shares one answer."""
        return self.probe()

    def require(self) -> None:
        """Raise the right error, with the probe's reason, when the tracer cannot run."""
        found = self.found
        if not found.usable:
            if os.geteuid() != 0:
                raise PrivilegeError(f"tracer '{self.name}' cannot run: {found.detail}", hint="run as root")
            raise KernelFeatureError(f"tracer '{self.name}' cannot run here: {found.detail}")
