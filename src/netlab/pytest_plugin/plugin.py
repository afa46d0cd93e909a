"""The ``pytest11`` plugin: options, markers, fixtures and report hooks only.

The logic lives in ordinary modules (:mod:`.expect`, :mod:`.assertions`, :mod:`.report`,
:mod:`netlab.lab`, :mod:`netlab.tracing`); override any fixture in your conftest.

Fixtures
  ``netlab_up``      factory: ``netlab_up("bridge3")`` -> live Lab, unique name per test and xdist
                     worker, torn down after the test even when it fails (``--netlab-keep`` keeps
                     a failed test's labs up and prints how to reach them).
  ``netlab_lab``     the lab named by the test's ``@pytest.mark.netlab_topology("bridge3")``.
  ``netlab_tracer``  the tracer from ``@pytest.mark.netlab_tracer(NAME, **options)`` or
                     ``--netlab-tracer NAME[:OPTION,...]`` (``bpftrace:count``); the test is
                     skipped, with the tracer's reason, when it cannot run here.
  ``netlab_trace``   factory: ``with netlab_trace(lab, stack=True) as t: ...`` then ``t.result``
                     (options over the marker's and the run's; one the tracer has not skips the
                     test); what it observed goes into ``--netlab-report``.
  ``netlab_traffic`` :class:`netlab.traffic.api.Traffic` bound to ``netlab_lab``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netlab.errors import KernelFeatureError, NetlabError
from netlab.expect.kernel import assert_kernel_clean, mark, needs_refusal
from netlab.expect.report import observed_drops, to_run_again
from netlab.lab import Lab, up
from netlab.model.topology import Topology
from netlab.pytest_plugin import assertions
from netlab.pytest_plugin.reporting import PROPERTY, Collector
from netlab.tracers.base import TraceOptions, Tracer
from netlab.tracers.registry import DEFAULT, get
from netlab.tracing.trace import Trace
from netlab.traffic.api import Traffic

LabFactory = Callable[..., Lab]
COLLECTOR = pytest.StashKey[Collector]()
#: a test's reports by phase ("setup", "call", "teardown"), for its fixtures' teardown to read
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netlab", "netlab labs, tracers and the kernel-behaviour report")
    group.addoption(
        "--netlab-tracer",
        default=DEFAULT,
        help=f"tracer for netlab_tracer/netlab_trace, with options after a colon: bpftrace:count (default {DEFAULT})",
    )
    group.addoption("--netlab-report", default=None, metavar="PATH", help="write the scenario report (JSON) to PATH")
    group.addoption(
        "--netlab-keep", action="store_true", help="keep a failed test's labs up, and say how to reach them"
    )
    group.addoption(
        "--netlab-check-kernel",
        action="store_true",
        help="fail a test after which the kernel is newly tainted or logged a WARN/BUG (as the selftests check)",
    )
    group.addoption(
        "--netlab-pcap",
        default=None,
        metavar="DIR",
        help="capture every lab interface while a test traces, and write DIR/<test>.pcapng of each failed one,"
        " dropped frames commented with their verdict (a capture is a protocol handler: frames no protocol"
        " wants are delivered to it instead of dropped, as under tcpdump)",
    )
    group.addoption(
        "--netlab-only-failed",
        default=None,
        metavar="REPORT",
        help="run only the tests the --netlab-report REPORT says failed (netlab matrix runs its failures again so)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "netlab_topology(ref): the topology (name or path) netlab_lab brings up")
    config.addinivalue_line(
        "markers",
        "netlab_tracer(name, **options): the tracer this test needs, e.g. ('bpftrace', count=True)"
        " (skipped if it cannot run, or has not the option)",
    )
    config.addinivalue_line(
        "markers",
        "netlab_needs(*modules, config=()): kernel modules and config options the test needs"
        " (skipped, with the kernel's reason, where one is missing)",
    )
    run_tracer_options(config)  # a bad --netlab-tracer stops the run before any test
    path = config.getoption("--netlab-report")
    if path and not hasattr(config, "workerinput"):
        collector = Collector(Path(path))
        config.stash[COLLECTOR] = collector
        config.pluginmanager.register(collector, "netlab-report")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``netlab_needs``: skip, saying what the kernel lacks."""

    for marker in item.iter_markers("netlab_needs"):
        why = needs_refusal(tuple(marker.args), tuple(marker.kwargs.get("config", ())))
        if why:
            pytest.skip(why)


@pytest.fixture(autouse=True)
def netlab_kernel_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """With ``--netlab-check-kernel``: after the test, the kernel is no more tainted than
    before and logged no WARN or BUG (otherwise the test errors, with the log lines)."""
    if not request.config.getoption("--netlab-check-kernel") or os.geteuid() != 0:
        yield
        return

    start = mark()
    yield
    assert_kernel_clean(start)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    if report.when == "teardown" and PROPERTY not in dict(report.user_properties):
        report.user_properties.append((PROPERTY, {"summary": _summary(item)}))  # a scenario that traced nothing
    return report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--netlab-only-failed REPORT``: only the scenarios that report says failed (the matrix's
    second run of a kernel's failures, :mod:`netlab.kernels.suite`); none where so many failed
    that they are not flakes."""
    path = config.getoption("--netlab-only-failed")
    if not path:
        return
    try:
        wanted = set(to_run_again(Path(path)))
    except NetlabError as exc:
        raise pytest.UsageError(f"--netlab-only-failed: {exc.message}") from None
    keep = [item for item in items if item.nodeid in wanted]
    config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in wanted])
    items[:] = keep


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("netlab labs need root (network namespaces, veth, iptables)")


def unique_instance() -> str:
    """A lab instance name no other test or worker uses: worker id + random suffix."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{worker}{secrets.token_hex(3)}"


def _keep(request: pytest.FixtureRequest, labs: list[Lab]) -> bool:
    reports = request.node.stash.get(REPORTS, {})
    failed = any(reports[w].failed for w in ("setup", "call") if w in reports)
    if not (failed and request.config.getoption("--netlab-keep")):
        return False
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    for lab in labs:
        lab.release()
        first = next(iter(lab.nodes))
        message = (
            f"netlab: kept lab {lab.name} of failed {request.node.nodeid}: netlab status {lab.name};"
            f" netlab shell {lab.name} {first}; netlab down {lab.name}"
        )
        if reporter is not None:
            reporter.write_line(message)
    return True


@pytest.fixture
def netlab_up(request: pytest.FixtureRequest) -> Iterator[LabFactory]:
    """Factory: bring up a topology (name, path or model) for this test only."""
    _require_root()
    labs: list[Lab] = []

    def factory(topology: str | Path | Topology, **kwargs: Any) -> Lab:
        kwargs.setdefault("instance", unique_instance())

        try:
            lab = up(topology, **kwargs)
        except KernelFeatureError as exc:  # nothing is left of the lab: up rolled it back
            pytest.skip(f"this kernel cannot build the lab: {exc.message}")
        labs.append(lab)
        return lab

    yield factory
    if not _keep(request, labs):
        for lab in reversed(labs):
            lab.down()


@pytest.fixture
def netlab_lab(request: pytest.FixtureRequest, netlab_up: LabFactory) -> Lab:
    """The lab of the test's ``netlab_topology`` marker."""
    marker = request.node.get_closest_marker("netlab_topology")
    if marker is None or not marker.args:
        raise pytest.UsageError(f"{request.node.nodeid}: netlab_lab needs @pytest.mark.netlab_topology('name')")
    return netlab_up(marker.args[0])


@pytest.fixture
def netlab_tracer(request: pytest.FixtureRequest) -> Tracer:
    """The tracer the test asks for (marker) or the run uses (--netlab-tracer); skip if unusable."""

    name, _options = chosen_tracer(request)
    tracer = get(name)
    found = tracer.found
    if not found.usable:
        pytest.skip(f"tracer {name} cannot run here: {found.detail}")
    return tracer


def chosen_tracer(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """The tracer and its options: ``@pytest.mark.netlab_tracer("bpftrace", count=True)``, else
    ``--netlab-tracer bpftrace:count`` (options after the colon, comma-separated)."""
    marker = request.node.get_closest_marker("netlab_tracer")
    if marker and marker.args:
        return marker.args[0], {k: bool(v) for k, v in marker.kwargs.items()}
    return run_tracer_options(request.config)


def run_tracer_options(config: pytest.Config) -> tuple[str, dict[str, bool]]:
    """``--netlab-tracer NAME[:OPTION,...]`` -> (name, options)."""
    name, _, words = str(config.getoption("--netlab-tracer")).partition(":")
    try:
        options = TraceOptions.parse([w for w in words.split(",") if w])
    except NetlabError as exc:
        raise pytest.UsageError(f"--netlab-tracer {name}:{words}: {exc}") from None
    return name, dict.fromkeys(options.asked(), True)


#: the ``netlab_trace`` fixture: ``netlab_trace(lab, stack=False)`` -> a :class:`Trace`
TraceFactory = Callable[..., Trace]


@pytest.fixture
def netlab_trace(request: pytest.FixtureRequest, netlab_tracer: Tracer) -> Iterator[TraceFactory]:
    """Factory: ``with netlab_trace(lab, stack=True) as t: ...``; what each trace found goes to
    the report, and with ``--netlab-pcap`` a failed test's captures to pcapng files."""

    _name, chosen = chosen_tracer(request)
    pcaps = request.config.getoption("--netlab-pcap")
    traces: list[Trace] = []

    def factory(lab: Lab, **options: bool) -> Trace:
        """``stack=True``, ``count=True`` (over the marker's and the run's); a test that asks
        for an option its tracer does not have is skipped with the tracer's reason."""
        wanted = TraceOptions(**{**chosen, **options})
        try:
            netlab_tracer.check(wanted)
        except NetlabError as exc:
            pytest.skip(str(exc))
        traces.append(Trace(netlab_tracer, lab, wanted, capture=bool(pcaps)))
        return traces[-1]

    with assertions.recording() as confirmed:
        yield factory
    for t in traces:
        if t.started and not t.finished:  # left running by the test: nothing of it outlives it
            with contextlib.suppress(Exception):
                t.stop()
    finished = [t for t in traces if t.finished]
    call = request.node.stash.get(REPORTS, {}).get("call")
    if pcaps and call is not None and call.failed:
        _write_pcaps(Path(pcaps), request.node, finished)
    asserted = [{"location": d.function, "reason": d.reason, "node": d.node} for d in confirmed]
    request.node.user_properties.append(
        (
            PROPERTY,
            {
                "summary": _summary(request.node),
                "tracer": netlab_tracer.name,
                "drops": [seen for t in finished for seen in observed_drops(t.result)],
                "asserted": asserted,
            },
        )
    )


def _write_pcaps(directory: Path, item: pytest.Item, traces: list[Trace]) -> None:
    """``--netlab-pcap``: one pcapng per trace of a failed test, named after the test."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", item.nodeid).strip("_")
    reporter = item.config.pluginmanager.get_plugin("terminalreporter")
    for n, trace in enumerate(traces):
        said = trace.write_pcap(directory / (f"{stem}.pcapng" if len(traces) == 1 else f"{stem}-{n + 1}.pcapng"))
        if reporter is not None:  # none in an xdist worker: the file is there all the same
            reporter.write_line(f"netlab pcap: {said}")


def _summary(item: pytest.Item) -> str:
    """The first line of the test's docstring: what the scenario is about, for the report."""
    doc = (getattr(item, "obj", None).__doc__ or "").strip().splitlines() if hasattr(item, "obj") else []
    return doc[0] if doc else ""


@pytest.fixture
def netlab_traffic(netlab_lab: Lab) -> Traffic:
    """Traffic helpers for ``netlab_lab``."""

    return Traffic(netlab_lab)
