"""The tracers netlab knows: built-ins registered here, plus any installed package's tracers
through the ``netlab.tracers`` entry-point group (``name = "pkg.module:TracerClass"``)."""

from __future__ import annotations

import functools
from importlib import metadata

from netlab.errors import NetlabError
from netlab.scope import Scope
from netlab.tracers.backends.bpftrace import BpftraceTracer
from netlab.tracers.backends.counters import CountersTracer
from netlab.tracers.backends.dropwatch import DropwatchTracer
from netlab.tracers.backends.ftrace import FtraceTracer
from netlab.tracers.backends.perf import PerfTracer
from netlab.tracers.backends.tracefs import TracefsTracer
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer

ENTRY_POINT_GROUP = "netlab.tracers"
DEFAULT = "tracefs"


def _builtins() -> dict[str, type[Tracer]]:

    return {
        t.name: t for t in (TracefsTracer, PerfTracer, BpftraceTracer, DropwatchTracer, FtraceTracer, CountersTracer)
    }


@functools.cache
def _installed() -> tuple[metadata.EntryPoint, ...]:
    """The group's entry points, looked up once per process: the lookup reads every installed
    distribution's metadata, which over a guest's 9p share costs as much as a scenario."""
    return tuple(metadata.entry_points(group=ENTRY_POINT_GROUP))


def available() -> dict[str, type[Tracer]]:
    """name -> tracer class, built-ins first; a plugin cannot shadow a built-in."""
    found = _builtins()
    for entry in _installed():
        if entry.name in found:
            continue
        try:
            cls = entry.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break netlab
            found[entry.name] = _broken(entry.name, f"cannot load {entry.value}: {exc}")
            continue
        if isinstance(cls, type) and issubclass(cls, Tracer):
            found[entry.name] = cls
        else:
            found[entry.name] = _broken(entry.name, f"{entry.value} is not a netlab Tracer")
    return found


def get(name: str) -> Tracer:
    """An instance of tracer ``name``; the error lists the known tracers."""
    tracers = available()
    if name not in tracers:
        raise NetlabError(f"unknown tracer '{name}' (known: {', '.join(tracers)})")
    return tracers[name]()


def doctor() -> list[tuple[str, str, Probe]]:
    """Every tracer with its summary and whether it can run here."""
    return [(name, cls.summary, cls().probe()) for name, cls in available().items()]


def _broken(name: str, why: str) -> type[Tracer]:
    class Broken(Tracer):
        summary = "third-party tracer that failed to load"

        def probe(self) -> Probe:
            return Probe(False, why)

        def _start(self, scope: Scope, options: TraceOptions) -> Session:
            raise NetlabError(f"tracer '{name}': {why}")

    Broken.name = name
    return Broken
