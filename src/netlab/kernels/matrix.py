"""The kernel matrix as data: per-kernel scenario reports combined into one table.

A matrix directory holds one scenario report per kernel (``RELEASE.json``, the format of
``--netlab-report``), ``matrix.json`` (which kernels ran, how, how long, and the table) and
``index.html``. ``matrix.json`` is always *derived* from the reports plus each kernel's run
result, so merging matrices made on different machines (one CI job per kernel) is: gather the
reports and the kernels' run results, build again. Pure: no VM, no kernel.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netlab.errors import NetlabError
from netlab.expect import catalogue
from netlab.expect.report import load as load_report
from netlab.expect.report import running_reasons
from netlab.kernels.render import html, markdown, reasons_html
from netlab.workshop.explain import explanations, kernel_tables

MATRIX_FORMAT = 1
BAD_OUTCOMES = frozenset({"failed", "new", "error"})


@dataclass
class KernelRun:
    """How one kernel's suite ran: which kernel, under what, how long, and how it ended."""

    name: str  # catalogue series ("6.1") or "running"
    release: str
    suite: str = ""
    version: str = ""
    accel: str = ""  # "kvm", "tcg", or "host" for the running kernel
    accel_why: str = ""
    download_seconds: float = 0.0
    boot_seconds: float = 0.0
    suite_seconds: float = 0.0
    exit_code: int | None = None
    error: str | None = None
    report: str | None = None  # file name of the scenario report beside matrix.json
    counts: dict[str, int] = field(default_factory=dict)
    hangs: list[str] = field(default_factory=list)  # guests that wedged and were booted again
    #: what the kernel logged of WARN, BUG or oops during the suite (its first such trace), or ""
    kernel_log: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and self.report is not None and not (set(self.counts) & BAD_OUTCOMES)


#: outcomes whose cells say nothing about the kernel's behaviour (the test did not get to look)
NOT_OBSERVED = frozenset({"skipped", "absent"})


def same_behaviour(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Did two kernels drop the same way: the same functions, nodes and counts, and the same
    reasons where both kernels name reasons (5.10 names none, which is no change of behaviour)."""
    reasons = all(d.get("reason") is not None for d in [*a, *b])

    def shape(drops: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
        return Counter(
            (d.get("location"), d.get("node"), d.get("count", 1), d.get("reason") if reasons else None) for d in drops
        )

    return shape(a) == shape(b)


def _subject(row: dict[str, Any]) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    """The drops of a cell that the comparison looks at: those at a (function, node) the scenario
    asserted on some kernel, when it asserted drops; else all. A neighbour solicitation dropped
    during a routing scenario on one kernel is noise there, not a change of behaviour."""
    asserted = {(a.get("location"), a.get("node")) for c in row["cells"].values() for a in c.get("asserted", [])}
    if not asserted:
        return lambda cell: list(cell.get("drops", []))

    def matches(drop: dict[str, Any]) -> bool:
        # an assertion that named no function (or no node) covers every drop of its node (or place)
        return any(loc in (None, drop.get("location")) and node in (None, drop.get("node")) for loc, node in asserted)

    return lambda cell: [d for d in cell.get("drops", []) if matches(d)]


def behaviour_groups(row: dict[str, Any], releases: list[str]) -> list[list[str]]:
    """The kernels of a row in groups that dropped the same way (kernels that did not look left
    out); more than one group is a change of behaviour between kernels."""
    groups: list[list[str]] = []
    subject = _subject(row)
    for release in releases:
        cell = row["cells"].get(release)
        if cell is None or cell["outcome"] in NOT_OBSERVED:
            continue
        for group in groups:
            # alike with every member: 5.10 (no reasons) matches 6.1 and 7.2 alike, which must
            # not put 6.1's NOT_SPECIFIED and 7.2's IP_INVALID_DEST in one group through it
            if all(same_behaviour(subject(row["cells"][member]), subject(cell)) for member in group):
                group.append(release)
                break
        else:
            groups.append([release])
    return groups


def build(runs: list[KernelRun], reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The matrix: ``reports`` maps a run's ``report`` file name to the loaded report."""
    table: dict[str, dict[str, Any]] = {}
    for run in runs:
        report = reports.get(run.report or "")
        if report is None:
            continue
        run.counts = dict(Counter(s["outcome"] for s in report["scenarios"]))
        for s in report["scenarios"]:
            row = table.setdefault(s["scenario"], {"scenario": s["scenario"], "summary": "", "cells": {}})
            row["summary"] = row["summary"] or s.get("summary", "")
            row["cells"][run.release] = {
                "outcome": s["outcome"],
                "drops": s.get("drops", []),
                "asserted": s.get("asserted", []),
                "seconds": s.get("seconds"),
                "failure": s.get("failure"),
            }
    releases = [r.release for r in runs if r.report in reports]
    rows = []
    for name in sorted(table):
        row = table[name]
        row["groups"] = behaviour_groups(row, releases)
        row["differs"] = len(row["groups"]) > 1
        rows.append(row)
    return {
        "format": MATRIX_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "kernels": [asdict(r) for r in runs],
        "scenarios": rows,
    }


def failures(matrix: dict[str, Any]) -> list[str]:
    """Why this matrix is not green, one line each (empty: green)."""
    lines = []
    for k in matrix["kernels"]:
        if k.get("error"):
            lines.append(f"{k['name']} ({k['release']}): {k['error'].splitlines()[0]}")
        elif k.get("report") is None:
            lines.append(f"{k['name']} ({k['release']}): no report")
    bad_on: set[str] = set()
    for row in matrix["scenarios"]:
        for release, cell in row["cells"].items():
            if cell["outcome"] in BAD_OUTCOMES:
                lines.append(f"{row['scenario']}: {cell['outcome']} on {release}")
                bad_on.add(release)
    for k in matrix["kernels"]:
        # pytest's own verdict too: a failure the report cannot name (a collection error, a
        # crash between tests) must not pass for green
        if (
            not k.get("error")
            and k.get("report")
            and k.get("exit_code") not in (0, None)
            and k["release"] not in bad_on
        ):
            lines.append(f"{k['name']} ({k['release']}): pytest exited {k['exit_code']} (see {k['release']}.log)")
    return lines


def write(directory: Path, runs: list[KernelRun], reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Write ``matrix.json``, ``index.html``, ``summary.md`` and ``reasons.html`` for ``runs``
    (reports already there)."""
    matrix = build(runs, reports)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "matrix.json").write_text(json.dumps(matrix, indent=2) + "\n")
    (directory / "index.html").write_text(html(matrix))
    (directory / "summary.md").write_text(markdown(matrix))
    (directory / "reasons.html").write_text(reasons_html(reason_catalogue(directory)))
    return matrix


def reason_catalogue(directory: Path) -> catalogue.Catalogue:
    """The drop-reason catalogue of the matrix in ``directory`` (:mod:`netlab.expect.catalogue`)."""
    kernels, matrix = catalogue.kernels_of(directory, kernel_tables())
    return catalogue.build(kernels, matrix, frozenset(explanations()), catalogue.unreachable())


#: the column of the running kernel beside a shipped catalogue
HERE = "this machine"


def shipped_catalogue() -> tuple[catalogue.Catalogue, str]:
    """The catalogue of netlab's last full matrix run (shipped with it) and the running kernel's
    own table beside it, and the run's date."""
    data = json.loads(catalogue.LAST_RUN.read_text())
    names = running_reasons()
    here = catalogue.Kernel(HERE, platform.release(), frozenset(names)) if names is not None else None
    found = catalogue.from_snapshot(data, frozenset(explanations()), catalogue.unreachable(), here)
    return found, str(data["date"])


def load_runs(directory: Path) -> tuple[list[KernelRun], dict[str, dict[str, Any]]]:
    """The kernels' run results of a matrix directory and the reports they name."""
    path = directory / "matrix.json"
    try:
        data = json.loads(path.read_text())
        runs = [KernelRun(**k) for k in data["kernels"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NetlabError(f"{path}: not a netlab matrix ({exc})") from None
    reports = {r.report: load_report(directory / r.report) for r in runs if r.report}
    return runs, reports


def merge(sources: list[Path], output: Path) -> dict[str, Any]:
    """Combine matrices run elsewhere; a kernel (5.10, running...) run in several sources is taken
    from the last source that has it."""
    by_name: dict[str, KernelRun] = {}
    reports: dict[str, dict[str, Any]] = {}
    output.mkdir(parents=True, exist_ok=True)
    for source in sources:
        runs, found = load_runs(source)
        for run in runs:
            by_name[run.name] = run
            if run.report:
                reports[run.report] = found[run.report]
                if source.resolve() != output.resolve():
                    shutil.copyfile(source / run.report, output / run.report)
    ordered = sorted(by_name.values(), key=_order)
    return write(output, ordered, reports)


def _order(run: KernelRun) -> tuple[int, tuple[int, ...]]:
    """Catalogue kernels by version, then the running one."""
    if run.name == "running":
        return (1, ())
    return (0, tuple(int(p) for p in run.name.split(".") if p.isdigit()))
