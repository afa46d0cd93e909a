"""Third-party tracers come through the `netlab.tracers` entry-point group."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from netlab.errors import NetlabError
from netlab.scope import Scope
from netlab.tracers import registry
from netlab.tracers.backends.tracefs import TracefsTracer
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer


class FakeTracer(Tracer):
    """A plugin tracer that is always usable."""

    name = "fake"
    summary = "test plugin"

    def probe(self) -> Probe:
        return Probe(True, "always")

    def start(self, scope: Scope, options: TraceOptions | None = None) -> Session:
        raise NotImplementedError


def test_plugins_load_broken_ones_explain_and_builtins_win(monkeypatch: pytest.MonkeyPatch) -> None:
    group = registry.ENTRY_POINT_GROUP
    eps = [
        EntryPoint("fake", f"{__name__}:FakeTracer", group),
        EntryPoint("broken", "no_such_module_xyz:Tracer", group),
        EntryPoint("notatracer", "json:dumps", group),
        EntryPoint("tracefs", f"{__name__}:FakeTracer", group),
    ]
    monkeypatch.setattr("netlab.tracers.registry.metadata.entry_points", lambda group: eps)
    registry._installed.cache_clear()
    try:
        found = registry.available()
    finally:
        registry._installed.cache_clear()
    assert found["fake"] is FakeTracer
    assert found["tracefs"] is TracefsTracer  # a plugin cannot shadow a built-in
    broken = found["broken"]().probe()
    assert not broken.usable and "cannot load no_such_module_xyz:Tracer" in broken.detail
    assert "is not a netlab Tracer" in found["notatracer"]().probe().detail
    with pytest.raises(NetlabError, match="unknown tracer 'nope' \\(known: tracefs, perf, bpftrace"):
        registry.get("nope")


def test_tracer_options_are_parsed_and_refused_with_what_the_tracer_has() -> None:
    from netlab.errors import UsageError
    from netlab.tracers.registry import get

    assert TraceOptions.parse(["count"]).asked() == {"count"}
    assert TraceOptions.parse([]).asked() == set()
    with pytest.raises(UsageError, match=r"unknown tracer option fast \(known: stack, count, graph\)"):
        TraceOptions.parse(["fast"])
    get("bpftrace").check(TraceOptions(count=True))
    with pytest.raises(UsageError, match=r"tracer bpftrace has no graph or stack option \(its options: count\)"):
        get("bpftrace").check(TraceOptions(stack=True, graph=True))
    with pytest.raises(UsageError, match=r"tracer dropwatch has no count option \(its options: none\)"):
        get("dropwatch").check(TraceOptions(count=True))
