"""The scenario suite as the matrix runs it on one kernel: pytest once, then, if scenarios
failed, those once more in a second pytest run of just them (``--netlab-only-failed``, as the
kernel's netdev CI retries its selftests), in the same boot. A scenario that passes the second
time is *flaky*: shown so on the page with its first failure, and not counted as the kernel's
regression; one that fails again keeps its first failure.

The two runs are one shell command, so a green kernel pays for no second interpreter (in a 5.10
guest, Python's start-up and imports over 9p are most of a run's fixed cost); the reports are
merged afterwards on the host (:func:`settle`).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netlab.expect.report import FAILED, load, write

#: how the second run is announced (the matrix's progress lines read it)
RERUN_PREFIX = "netlab suite: again: "
#: pytest's exit code when tests failed (as opposed to an error of pytest's own)
TESTS_FAILED = 1


def retry_path(report: Path) -> Path:
    """Where the second run's report goes, beside the first."""
    return report.with_name(report.stem + ".retry.json")


def command(report: Path, options: Sequence[str], args: Sequence[str]) -> list[str]:
    """The shell command of both runs: pytest with ``options`` and ``args`` writing ``report``,
    then, if tests failed, again over the failures only, writing :func:`retry_path`; it exits
    with the first run's code."""
    python = [sys.executable, "-m", "pytest", *options]
    # options as --name=value: pytest takes a separate value that is an existing path for one of
    # the paths to find its rootdir from, and the two runs must agree on it, or their node ids differ
    first = shlex.join([*python, f"--netlab-report={report}", *args])
    again = shlex.join([*python, f"--netlab-report={retry_path(report)}", f"--netlab-only-failed={report}", *args])
    announce = shlex.quote(f"{RERUN_PREFIX}once more")
    script = f'{first}\nrc=$?\nif [ "$rc" -eq {TESTS_FAILED} ]; then echo {announce}; {again}; fi\nexit "$rc"\n'
    return ["sh", "-c", script]


def merge(first: dict[str, Any], again: dict[str, Any]) -> list[dict[str, Any]]:
    """The first run's entries, each failed one that passed again made flaky (with its first
    failure and the second run's observations)."""
    second = {s["scenario"]: s for s in again["scenarios"]}
    out = []
    for entry in first["scenarios"]:
        retried = second.get(entry["scenario"])
        if entry["outcome"] in FAILED and retried is not None and retried["outcome"] == "passed":
            out.append({**retried, "outcome": "flaky", "failure": entry.get("failure", "")})
        else:
            out.append(entry)
    return out


def settle(report: Path, rc: int | None) -> int | None:
    """Fold the second run's report into the first (and remove it); the kernel's exit code:
    0 when every failure passed the second time, else the first run's."""
    retry = retry_path(report)
    if not (report.is_file() and retry.is_file()):
        return rc
    first = load(report)
    entries = merge(first, load(retry))
    retry.unlink()
    write(report, entries, kernel=first.get("kernel"))  # the guest's kernel, not this machine's
    return 0 if rc == TESTS_FAILED and not [e for e in entries if e["outcome"] in FAILED] else rc
