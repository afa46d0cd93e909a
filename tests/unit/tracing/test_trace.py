"""One trace, its collectors' lifecycle: started in order with the tracer last, stopped and asked
in reverse, every started one stopped when a later one fails, one that cannot run left out and
named. Fakes only: the live collectors are tested on real labs in tests/integration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest

from netlab.findings.draft import Draft
from netlab.runtime.journal import Entry
from netlab.scope import Layout, Place
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer
from netlab.tracers.events import DropEvent, TraceResult
from netlab.tracing.collector import Collector
from netlab.tracing.trace import Trace


class Nowhere:
    """A scope with no namespaces (nothing is entered: the fakes touch no kernel)."""

    name = "nowhere"
    reads_firewall = False
    nodes: Mapping[str, Place] = {}

    def layout(self) -> Layout | None:
        return None

    def neighbours(self) -> list[Layout]:
        return []

    def keep(self, entry: Entry) -> bool:
        return False


class Log(list[str]):
    pass


class FakeSession(Session):
    def __init__(self, log: Log) -> None:
        self.log = log

    def poll(self) -> list[DropEvent]:
        return []

    def stop(self) -> TraceResult:
        self.log.append("tracer stop")
        return TraceResult("fake", "nowhere", notes=("seen",))


class FakeTracer(Tracer):
    name = "fake"
    summary = "records what happens to it"
    probes: ClassVar[int] = 0

    def __init__(self, log: Log, usable: bool = True) -> None:
        self.log, self.usable = log, usable

    def probe(self) -> Probe:
        FakeTracer.probes += 1
        return Probe(self.usable, "usable" if self.usable else "the kernel lacks it")

    def _start(self, scope: object, options: TraceOptions) -> Session:
        self.log.append("tracer start")
        return FakeSession(self.log)


class Step(Collector):
    def __init__(self, name: str, log: Log, *, fails: bool = False, refuses: str | None = None) -> None:
        self.label, self.log, self.fails, self.refuses = name, log, fails, refuses

    name = "step"

    def refusal(self) -> str | None:
        return self.refuses

    def start(self) -> None:
        self.log.append(f"{self.label} start")
        if self.fails:
            raise OSError(f"{self.label} cannot start")

    def stop(self) -> None:
        self.log.append(f"{self.label} stop")

    def add(self, draft: Draft) -> None:
        self.log.append(f"{self.label} add")
        draft.notes.append(f"from {self.label}")


def trace_with(log: Log, *steps: Step, usable: bool = True) -> Trace:
    t = Trace(FakeTracer(log, usable), Nowhere(), settle=False)
    t.collectors[:0] = steps  # before the tracer, as the trace's own are
    return t


def test_collectors_start_in_order_and_stop_and_add_in_reverse() -> None:
    log = Log()
    FakeTracer.probes = 0
    with trace_with(log, Step("a", log), Step("b", log)) as t:
        log.append("traffic")
    assert log == [
        "a start", "b start", "tracer start", "traffic",
        "tracer stop", "b stop", "a stop", "b add", "a add",
    ]  # fmt: skip
    assert t.result.notes == ("seen", "from b", "from a")
    assert FakeTracer.probes == 1  # probed once per trace, however often it is asked


def test_a_failed_start_stops_what_started_and_nothing_else() -> None:
    log = Log()
    t = trace_with(log, Step("a", log), Step("b", log, fails=True), Step("c", log))
    with pytest.raises(OSError, match="b cannot start"), t:
        log.append("traffic")
    assert log == ["a start", "b start", "b stop", "a stop"]
    assert not t.finished


def test_a_collector_that_cannot_run_is_left_out_and_named() -> None:
    log = Log()
    with trace_with(log, Step("a", log, refuses="nft is not installed")) as t:
        pass
    assert "a start" not in log and "step not run: nft is not installed" in t.result.notes


def test_a_tracer_that_cannot_run_is_an_error_before_anything_starts() -> None:
    log = Log()
    t = trace_with(log, Step("a", log), usable=False)
    with pytest.raises(Exception, match="the kernel lacks it"):
        t.start()
    assert log == []
