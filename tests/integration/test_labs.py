"""Every workshop lab, walked as an attendee would: its commands run as written, then its check.

The steps are the ```sh blocks under "## Steps" in the lab's README; they run with bash, with
the project's netlab first on PATH. Then `netlab check` runs; where the steps leave a task
(lab 02 breaks the bridge), the check must fail and say what is wrong until the solution's
commands are run. Lab names are the ones attendees type (bridge3...), so the walks hold a lock
and skip when such a lab is already up.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from netlab.runtime import journal
from tests.integration.conftest import ROOT

LABS = sorted(p for p in (ROOT / "labs").iterdir() if (p / "check.yaml").is_file())
FAILS_BEFORE_SOLUTION = {"02-bridge-forward-rule", "06-kernel-upgrade"}
_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def section(text: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    return m.group(1) if m else ""


def blocks(text: str) -> list[str]:
    return _BLOCK.findall(text)


def bash(script: str) -> subprocess.CompletedProcess[str]:
    # the netlab of the Python running the tests: .venv here, /opt/netlab-venv in the workshop VM
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def workshop_lock() -> Iterator[None]:
    with open("/run/netlab-workshop-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def test_there_are_six_labs_with_solutions() -> None:
    assert len(LABS) >= 6
    for lab in LABS:
        assert (ROOT / "labs" / "solutions" / f"{lab.name}.md").is_file(), lab.name
        text = (lab / "README.md").read_text()
        for title in ("Steps", "Questions", "Check", "Clean up"):
            assert section(text, title), f"{lab.name} has no '## {title}'"


@pytest.mark.parametrize("lab", LABS, ids=[p.name for p in LABS])
def test_lab_walkthrough(lab: Path, workshop_lock: None) -> None:
    text = (lab / "README.md").read_text()
    cleanup = "\n".join(blocks(section(text, "Clean up")))
    used = set(re.findall(r"netlab down ([\w -]+)", cleanup)[0].split()) if "netlab down" in cleanup else set()
    busy = used & set(journal.all_labs())
    if busy:
        pytest.skip(f"labs {', '.join(sorted(busy))} are up already; the walkthrough needs those names")
    check = f"netlab check labs/{lab.name}"
    try:
        for block in blocks(section(text, "Steps")):
            ran = bash(block)
            assert ran.returncode == 0, f"{lab.name} step failed:\n{block}\n{ran.stdout}\n{ran.stderr}"
        before = bash(check)
        if lab.name in FAILS_BEFORE_SOLUTION:
            assert before.returncode == 1, before.stdout
            assert "FAIL" in before.stdout and "hint:" in before.stdout and "still wrong" in before.stdout
        solution = (ROOT / "labs" / "solutions" / f"{lab.name}.md").read_text()
        for block in blocks(solution):
            ran = bash(block)
            assert ran.returncode == 0, f"{lab.name} solution failed:\n{block}\n{ran.stderr}"
        after = bash(check)
        assert after.returncode == 0, after.stdout + after.stderr
        assert "all" in after.stdout and "checks pass" in after.stdout
    finally:
        bash(cleanup)
    assert not (used & set(journal.all_labs()))


BROKEN = yaml.safe_load((ROOT / "tests" / "data" / "workshop" / "broken-labs.yaml").read_text())


@pytest.mark.parametrize("case", BROKEN, ids=[c["lab"] for c in BROKEN])
def test_a_failed_check_shows_where_it_died(case: dict[str, Any], workshop_lock: None) -> None:
    """The attendee's packets, placed by the trace the check takes: no 'go and run netlab trace'."""
    spec = yaml.safe_load((ROOT / "labs" / case["lab"] / "check.yaml").read_text())
    topology = spec["topology"]
    if topology in journal.all_labs():
        pytest.skip(f"{topology} is up already; the test needs that name")
    try:
        up = bash(f"netlab up {topology} && {case['break']}")
        assert up.returncode == 0, up.stderr
        checked = bash(f"netlab check labs/{case['lab']}")
        assert checked.returncode == 1, checked.stdout
        for line in case["says"]:
            assert line in checked.stdout, f"{case['broken by']}: no '{line}' in\n{checked.stdout}"
    finally:
        bash(f"netlab down --missing-ok {topology}")


def test_check_of_a_lab_that_is_not_up_says_how_to_start_it(workshop_lock: None) -> None:
    if "veth-two-ns" in journal.all_labs():
        pytest.skip("veth-two-ns is up already")
    result = bash("netlab check labs/03-rx-dropped-mystery")
    assert result.returncode == 1
    assert (
        "no lab named 'veth-two-ns' is up" in result.stdout
        and "hint: bring the lab up: netlab up veth-two-ns" in result.stdout
    )


def test_bad_check_file_is_located(tmp_path: Path) -> None:
    (tmp_path / "check.yaml").write_text("title: x\ntopology: bridge3\nchecks:\n  - name: a\n    pingg: {}\n")
    result = bash(f"netlab check {tmp_path}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path}/check.yaml:5:5: unknown key 'pingg' (expected one of: name, hint, up, ping" in result.stderr
