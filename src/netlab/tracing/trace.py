"""A trace from start to result: the tracer's session and the collectors beside it.

The tracer says where packets died. What only the scope knows comes on top, once everything has
stopped: which firewall rule dropped a packet (the kernel's own rule trace where the node has
nftables, :mod:`netlab.tracing.nftrace`; the nodes' rule counters for the rest,
:mod:`netlab.tracing.rules`), what a dropped packet was where netlab sent it
(:mod:`netlab.findings.sent`), and whose a drop is that another lab's device names could claim.
Each works on a :class:`~netlab.findings.draft.Draft`; the :class:`TraceResult` the caller gets
is built from it once. ``netlab trace``, the pytest plugin and the workshop checks all run this
one :class:`Trace`, so a capture and its pcapng are made in one place.

    >>> with netlab.trace(lab, "tracefs") as t:                  # doctest: +SKIP
    ...     lab.node("ns-calm1").run(["ping", "-c1", "198.51.100.2"])
    >>> t.result.drops                                           # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import Any

from netlab.errors import NetlabError
from netlab.findings import sent
from netlab.findings.draft import Draft
from netlab.runtime import softnet
from netlab.scope import Scope
from netlab.tracers.base import Session, TraceOptions, Tracer
from netlab.tracers.events import DropEvent, TraceResult
from netlab.tracers.registry import DEFAULT, get
from netlab.tracing.capture import Capture
from netlab.tracing.collector import Collector
from netlab.tracing.nftrace import NfTrace
from netlab.tracing.rules import RuleWatch
from netlab.traffic.sent import between


class TracerRun(Collector):
    """The tracer's own session, as a collector. A trace without its tracer is no trace: where
    the tracer cannot run, :meth:`Trace.start` raises its probe's reason instead."""

    name = "tracer"

    def __init__(self, tracer: Tracer, scope: Scope, options: TraceOptions) -> None:
        self.tracer, self.scope, self.options = tracer, scope, options
        self.session: Session | None = None
        self.seen: TraceResult | None = None

    def start(self) -> None:
        self.session = self.tracer.start(self.scope, self.options)

    def stop(self) -> None:
        if self.session is not None and self.seen is None:
            self.seen = self.session.stop()


class Trace:
    """A trace of a scope (a lab, or the whole host) with one tracer.

    ``with Trace(...) as t:`` records during the block and, on a clean exit, stops once the
    kernel has dealt with what the block sent (:func:`netlab.runtime.softnet.wait_drained`; at
    once when the block raised); ``t.result`` then holds what it found. ``start``/``stop`` do
    the same by hand (``netlab trace``'s live view). ``capture``: also capture every frame of
    the scope, for :meth:`write_pcap`.
    """

    def __init__(
        self,
        tracer: Tracer,
        scope: Scope,
        options: TraceOptions | None = None,
        *,
        capture: bool = False,
        settle: bool = True,
    ) -> None:
        self.options = options or TraceOptions()
        tracer.check(self.options)
        self.tracer, self.scope, self.settle = tracer, scope, settle
        self.capture = Capture(scope) if capture else None
        self.run = TracerRun(tracer, scope, self.options)
        watching = self.options.rules and tracer.reports_drops and scope.reads_firewall
        helpers: list[Collector | None] = [self.capture, RuleWatch(scope) if watching else None]
        helpers.append(NfTrace(scope) if watching else None)
        #: in starting order; the tracer's session last, so that its ready barrier is the trace's
        self.collectors = [c for c in helpers if c is not None] + [self.run]
        self._started: list[Collector] = []
        self._skipped: list[str] = []
        self._began = 0.0
        self._result: TraceResult | None = None

    def start(self) -> Trace:
        """Start every collector; returns once the tracer is recording. A collector that cannot
        run here is left out and named in the result's notes; the tracer itself cannot be."""
        self.tracer.require()
        self._began = time.time()
        try:
            for collector in self.collectors:
                why = collector.refusal()
                if why is not None:
                    self._skipped.append(f"{collector.name} not run: {why}")
                    continue
                self._started.append(collector)
                collector.start()
        except BaseException:
            self._stop_all()
            raise
        return self

    def poll(self) -> list[DropEvent]:
        """Drops seen since the last poll (for live views), as the tracer saw them."""
        if self.run.session is None:
            raise NetlabError("the trace has not started")
        return self.run.session.poll()

    def _stop_all(self) -> None:
        """Stop what started, last first; every one is stopped even when one fails."""
        failure: BaseException | None = None
        for collector in reversed(self._started):
            try:
                collector.stop()
            except BaseException as exc:  # noqa: BLE001 -- raised once the others have stopped
                failure = failure or exc
        if failure is not None:
            raise failure

    def stop(self) -> TraceResult:
        """Stop every collector and return the result, each collector's findings added (once)."""
        if self._result is None:
            self._stop_all()
            seen = self.run.seen
            if seen is None:
                raise NetlabError("the trace was never started")
            ended = time.time()
            draft = Draft.of(seen)
            logged = between(self.scope.name, self._began, ended)
            sent.settle(draft, logged, self.scope.name, self._began, ended)
            for collector in reversed(self._started):
                collector.add(draft)
            sent.describe(draft, logged)
            draft.notes.extend(self._skipped)
            if draft.contested:
                draft.notes.append(
                    f"{len(draft.contested)} drops could belong to another lab with the same device names;"
                    " the bpftrace tracer attributes by namespace exactly"
                )
            self._result = draft.result(seen)
        return self._result

    @property
    def started(self) -> bool:
        """Has :meth:`start` begun (so that :meth:`stop` has something to stop)?"""
        return bool(self._started)

    @property
    def finished(self) -> bool:
        """Has the trace stopped with a result?"""
        return self._result is not None

    @property
    def result(self) -> TraceResult:
        """What the trace found; there is none until it has stopped (after the ``with`` block)."""
        if self._result is None:
            raise RuntimeError("the trace is still running: read .result after the with block")
        return self._result

    def write_pcap(self, path: Path) -> str:
        """Write what the capture saw to ``path`` (pcapng), each dropped frame commented with
        its verdict; returns what was written."""
        if self.capture is None:
            raise NetlabError("this trace captured nothing: make it with capture=True")
        return self.capture.write(path, self.result, self.tracer.monotonic_times)

    def __enter__(self) -> Trace:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None and self.settle:
            softnet.wait_drained()
        self.stop()


def trace(scope: Scope, tracer: str = DEFAULT, *, settle: bool = True, capture: bool = False, **options: Any) -> Trace:
    """The public way to trace (``netlab.trace``): ``with netlab.trace(lab, "bpftrace", count=True)
    as t: ...`` then ``t.result``. ``scope`` is a lab (``netlab.up``) or the whole machine
    (``netlab.host.Host()``); ``tracer`` is a registered tracer's name; ``options`` are
    :class:`~netlab.tracers.base.TraceOptions`' (``stack``, ``count``, ``graph``, ``rules``)."""
    return Trace(get(tracer), scope, TraceOptions(**options), settle=settle, capture=capture)
