"""The tracer interface: probe, start on a lab, stop to get events.

A tracer never assumes a capability: ``probe()`` checks this machine (binary present, kernel
feature present, privileges) and explains a refusal in one sentence a user can act on. What
the CLI and the pytest plugin do with a refusal depends on whether the user asked for that
tracer (error) or not (skipped, with the reason shown).
"""

from __future__ import annotations

import abc
import os
import shutil
import time
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

from netlab.errors import KernelFeatureError, PrivilegeError
from netlab.lab import Lab
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


def tool_refusal(binary: str, package: str) -> Probe | None:
    """The common first half of a probe: the tool is installed and we are root (None: both hold)."""
    if shutil.which(binary) is None:
        return Probe(False, f"{binary} is not installed (apt-get install {package})")
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
        """Stop tracing, release everything the session made, return what it saw."""

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

    @abc.abstractmethod
    def start(self, lab: Lab, options: TraceOptions | None = None) -> Session:
        """Start tracing ``lab``; returns once the tracer is really recording."""

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
