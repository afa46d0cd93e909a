"""The scenario suite as the matrix runs it on one kernel: pytest once, then the scenarios that
failed once more, in a second pytest run of just their node ids (as the kernel's netdev CI
retries its selftests). A scenario that passes the second time is *flaky*: shown so on the page,
with the first failure, and not counted as the kernel's regression; one that fails again keeps
its first failure. Runs in the guest (or on the host for ``running``):
``python -m netlab.kernels.suite REPORT [PYTEST ARGS...]``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from netlab.expect.report import FAILED, failed, load, write

#: more failures than this are the kernel's or the run's, not flakes: they are not run again
MOST_RERUN = 10
#: how the second run is announced (the matrix's progress lines read it)
RERUN_PREFIX = "netlab suite: again: "


def pytest_argv(report: Path, args: list[str]) -> list[str]:
    """One pytest run that writes ``report``."""
    return [sys.executable, "-m", "pytest", "--netlab-report", str(report), *args]


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


def run(report: Path, args: list[str]) -> int:
    """pytest with ``args``, then the failures once more; pytest's exit code, 0 when every
    failure passed the second time."""
    rc = subprocess.call(pytest_argv(report, args))
    again = failed(report) if report.is_file() else []
    if rc == 0 or not again or len(again) > MOST_RERUN:
        return rc
    sys.stdout.write(f"{RERUN_PREFIX}{len(again)} failed scenarios, once more\n")
    sys.stdout.flush()
    retry = report.with_name(report.stem + ".retry.json")
    rc_again = subprocess.call(pytest_argv(retry, [*args, "--netlab-only-failed", str(report)]))
    if not retry.is_file():
        return rc
    entries = merge(load(report), load(retry))
    retry.unlink()
    write(report, entries)
    return rc_again if not [e for e in entries if e["outcome"] in FAILED] else rc


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.stderr.write("usage: python -m netlab.kernels.suite REPORT [PYTEST ARGS...]\n")
        return 2
    return run(Path(args[0]), args[1:])


if __name__ == "__main__":
    sys.exit(main())
