"""The scenario report's collector: one entry per test (outcome, time, first failure, what it
observed and asserted), written at the end of the run (``--netlab-report PATH``).

Its state is the :class:`Collector` the plugin keeps in ``config.stash`` and registers as a
plugin of its own (as pytest's junitxml does), so nothing lives in module globals: two runs in
one process (``pytester``) do not share entries. Under xdist only the controller collects; it
receives every worker's reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netlab.expect.report import write
from netlab.pytest_plugin import assertions

#: the user property a test's observations travel in (from the netlab_trace fixture)
PROPERTY = "netlab"
FAILURE_LINES = 6


def failure_text(report: pytest.TestReport) -> str:
    """The first lines of why a test failed: the exception's message where pytest kept it (the
    assertion and its explanation), else the end of the traceback (``--tb=native``)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    lines = str(message).splitlines() if message else report.longreprtext.strip().splitlines()[-FAILURE_LINES:]
    return "\n".join(lines[:FAILURE_LINES])


class Collector:
    """The report entries of one run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[dict[str, Any]] = []
        self._outcomes: dict[str, str] = {}
        self._seconds: dict[str, float] = {}
        self._failures: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Outcome from the call (or a skip at setup); observations from teardown, where the
        netlab_trace fixture records them (after the call report exists). Every test gets an entry,
        with or without observations: a report (and ``netlab matrix``'s verdict, which reads it)
        that listed only the scenarios that traced would not show one that failed without tracing."""
        self._seconds[report.nodeid] = self._seconds.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            self._failures.setdefault(report.nodeid, failure_text(report))
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome: str = report.outcome
            if (
                report.skipped
                and isinstance(report.longrepr, tuple)
                and assertions.NEW_PREFIX in str(report.longrepr[2])
            ):
                outcome = "new"
            self._outcomes[report.nodeid] = outcome
            return
        if report.when != "teardown":
            return
        properties = dict(report.user_properties)
        props: dict[str, Any] | None = properties.get(PROPERTY)  # type: ignore[assignment]
        outcome = self._outcomes.pop(report.nodeid, "passed")
        if report.failed:  # the teardown failed (a lab that would not go, a tainted kernel)
            outcome = "error"
        entry: dict[str, Any] = {"scenario": report.nodeid, "outcome": outcome, **(props or {})}
        entry["seconds"] = round(self._seconds.pop(report.nodeid, 0.0), 2)
        failure = self._failures.pop(report.nodeid, None)
        if failure:
            entry["failure"] = failure
        self.entries.append(entry)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        report = write(self.path, self.entries)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"netlab report: {self.path} ({len(report['scenarios'])} scenarios, "
                f"{len(report['asserted_reasons'])} distinct drop reasons asserted)"
            )
