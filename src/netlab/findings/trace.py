"""A trace of a lab from start to result: the tracer's session, and what is added to what it saw.

The tracer says where packets died. What only the lab knows comes on top, here, once the tracer
has stopped: which firewall rule dropped a packet (the kernel's own rule trace where the node
has nftables, :mod:`netlab.findings.nftrace`; the nodes' rule counters, read at the start and
at the end, for the rest: :mod:`netlab.findings.rules`), what a dropped packet was where netlab sent it
(:mod:`netlab.findings.sent`), and whose a drop is that another lab's device names could claim.
Each works on a :class:`~netlab.findings.draft.Draft`; the :class:`TraceResult` the caller gets
is built from it once.

    >>> with netlab.trace(lab, "tracefs") as t:                  # doctest: +SKIP
    ...     lab.node("ns-calm1").run(["ping", "-c1", "198.51.100.2"])
    >>> t.result.drops                                           # doctest: +SKIP
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from netlab.findings import sent
from netlab.findings.draft import Draft
from netlab.findings.nftrace import NfTrace
from netlab.findings.rules import RuleWatch
from netlab.runtime import softnet
from netlab.scope import Scope
from netlab.tracers.base import Session, TraceOptions, Tracer
from netlab.tracers.events import DropEvent, TraceResult
from netlab.tracers.registry import DEFAULT, get
from netlab.traffic.sent import between


class Trace:
    """A running trace: recording once made (the tracer's ready barrier)."""

    def __init__(self, tracer: Tracer, lab: Scope, options: TraceOptions | None = None) -> None:
        options = options or TraceOptions()
        tracer.check(options)
        self.lab = lab
        watching = options.rules and tracer.reports_drops and lab.reads_firewall
        self.rules = RuleWatch(lab) if watching else None
        self.nftrace = NfTrace(lab) if watching else None
        self.started = time.time()
        try:
            self.session: Session = tracer.start(lab, options)
        except BaseException:
            if self.nftrace is not None:
                self.nftrace.stop()
            raise
        self._result: TraceResult | None = None

    def poll(self) -> list[DropEvent]:
        """Drops seen since the last poll (for live views), as the tracer saw them."""
        return self.session.poll()

    def stop(self) -> TraceResult:
        """Stop the tracer and return the result, rule names and sent headers added (once)."""
        if self._result is None:
            try:
                seen = self.session.stop()
            finally:
                if self.nftrace is not None:
                    self.nftrace.stop()
            ended = time.time()
            draft = Draft.of(seen)
            logged = between(self.lab.name, self.started, ended)
            sent.settle(draft, logged, self.lab.name, self.started, ended)
            if self.nftrace is not None:
                self.nftrace.explain(draft)
            if self.rules is not None:
                self.rules.explain(draft)
            sent.describe(draft, logged)
            if draft.contested:
                draft.notes.append(
                    f"{len(draft.contested)} drops could belong to another lab with the same device names;"
                    " the bpftrace tracer attributes by namespace exactly"
                )
            self._result = draft.result(seen)
        return self._result


class Tracing:
    """A trace around a ``with`` block: recording on entry; on a clean exit stopped once the
    kernel has dealt with what the block sent (:func:`netlab.runtime.softnet.wait_drained`), and
    at once when the block raised."""

    def __init__(self, tracer: Tracer, lab: Scope, options: TraceOptions | None = None, *, settle: bool = True) -> None:
        self.tracer, self.lab, self.options, self.settle = tracer, lab, options, settle
        self._trace: Trace | None = None
        self._result: TraceResult | None = None

    @property
    def result(self) -> TraceResult:
        """What the trace found; there is none until the ``with`` block has ended."""
        if self._result is None:
            raise RuntimeError("the trace is still running: read .result after the with block")
        return self._result

    def __enter__(self) -> Tracing:
        self._trace = Trace(self.tracer, self.lab, self.options)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None and self.settle:
            softnet.wait_drained()
        assert self._trace is not None
        self._result = self._trace.stop()


def tracing(tracer: Tracer, lab: Scope, options: TraceOptions | None = None, *, settle: bool = True) -> Tracing:
    """``with tracing(tracer, lab) as t: ...`` then ``t.result``."""
    return Tracing(tracer, lab, options, settle=settle)


def trace(lab: Scope, tracer: str = DEFAULT, *, settle: bool = True, **options: Any) -> Tracing:
    """The public way to trace (``netlab.trace``): ``with netlab.trace(lab, "bpftrace", count=True)
    as t: ...`` then ``t.result``. ``tracer`` is a registered tracer's name; ``options`` are
    :class:`~netlab.tracers.base.TraceOptions`' (``stack``, ``count``, ``graph``, ``rules``)."""
    return tracing(get(tracer), lab, TraceOptions(**options), settle=settle)
