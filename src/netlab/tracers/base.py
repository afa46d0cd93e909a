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

    def require(self) -> None:
        """Raise the right error, with the probe's reason, when the tracer cannot run."""
        found = self.probe()
        if not found.usable:
            if os.geteuid() != 0:
                raise PrivilegeError(f"tracer '{self.name}' cannot run: {found.detail}", hint="run as root")
            raise KernelFeatureError(f"tracer '{self.name}' cannot run here: {found.detail}")
