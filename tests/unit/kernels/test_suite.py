"""The suite on one kernel as the matrix runs it: the first run's failures once more, merged."""

from __future__ import annotations

import json
from pathlib import Path

from netlab.kernels.runner import SuiteProgress
from netlab.kernels.suite import RERUN_PREFIX, TESTS_FAILED, merge, retry_path, settle


def entry(name: str, outcome: str, failure: str = "", drops: int = 0) -> dict[str, object]:
    return {"scenario": f"scenarios/test_x.py::{name}", "outcome": outcome, "failure": failure, "drops": [{}] * drops}


def test_a_failure_that_passes_again_is_flaky_and_one_that_fails_again_keeps_its_first_failure() -> None:
    first = {"scenarios": [entry("ok", "passed"), entry("lucky", "failed", "first"), entry("bad", "error", "one")]}
    again = {"scenarios": [entry("lucky", "passed", drops=3), entry("bad", "failed", "two")]}
    merged = {e["scenario"].split("::")[1]: e for e in merge(first, again)}
    assert merged["ok"] == entry("ok", "passed")
    assert merged["lucky"]["outcome"] == "flaky" and merged["lucky"]["failure"] == "first"
    assert merged["lucky"]["drops"] == [{}] * 3  # the passing run's observations
    assert merged["bad"] == entry("bad", "error", "one")


def test_the_progress_lines_say_which_run_a_result_is_of() -> None:
    said: list[str] = []
    progress = SuiteProgress("6.1", said.append)
    for line in [
        "collected 3 items",
        "scenarios/test_x.py::test_a PASSED",
        "scenarios/test_x.py::test_b FAILED",
        f"{RERUN_PREFIX}once more",
        "collected 3 items / 2 deselected / 1 selected",
        "scenarios/test_x.py::test_b PASSED",
    ]:
        progress.line(line)
    assert said == [
        "[6.1] booted; 3 scenarios",
        "[6.1] 1/3 passed  test_a",
        "[6.1] 2/3 failed  test_b",
        "[6.1] running the failed scenarios once more",
        "[6.1] again 1/1 passed  test_b",
    ]


def test_a_merged_report_keeps_the_guests_kernel(tmp_path: Path) -> None:
    """The retry is merged on the host: the report must still say which kernel it ran on (its
    release and reason table), not the host's."""
    guest = {"release": "6.1.0-50-amd64", "machine": "guest", "config": None, "reasons": ["NO_SOCKET"]}
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"kernel": guest, "scenarios": [entry("lucky", "failed", "first")]}))
    retry_path(report).write_text(json.dumps({"kernel": guest, "scenarios": [entry("lucky", "passed")]}))
    assert settle(report, TESTS_FAILED) == 0
    merged = json.loads(report.read_text())
    assert merged["kernel"] == guest
    assert [e["outcome"] for e in merged["scenarios"]] == ["flaky"]
