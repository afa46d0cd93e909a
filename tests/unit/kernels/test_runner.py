"""The matrix runner's scheduling: kernels at once, their order, one kernel's error (no VM)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from netlab.errors import NetlabError
from netlab.kernels import runner
from netlab.kernels.matrix import KernelRun
from netlab.kernels.runner import MatrixOptions, Shared, run_matrix, schedule


def test_the_oldest_kernel_starts_first_then_the_newest_and_the_running_one_last() -> None:
    """Longest first: 5.10, then 7.2 (the next longest), so the short ones fill the tail."""
    assert schedule(["running", "6.12", "5.10", "7.2", "6.1"]) == ["5.10", "7.2", "6.12", "6.1", "running"]


def test_jobs_default_to_one_kernel_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("netlab.kernels.runner.os.cpu_count", lambda: 2)
    assert MatrixOptions(("6.1",), Path()).parallel == 2
    assert MatrixOptions(("6.1",), Path(), cpus=2).parallel == 1
    assert MatrixOptions(("6.1",), Path(), jobs=3).parallel == 3


def test_kernels_run_jobs_at_a_time_and_are_reported_in_the_order_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = threading.Lock()
    running, most = 0, 0

    def fake(name: str, opts: MatrixOptions, shared: Shared) -> KernelRun:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        if name == "6.12":
            raise NetlabError("6.12 could not be fetched")
        return KernelRun(name=name, release=f"{name}.0")

    monkeypatch.setattr(runner, "_run_vm_retrying", fake)
    monkeypatch.setattr(runner, "_run_running", lambda opts, shared: fake("running", opts, shared))
    monkeypatch.setattr(runner, "warm_bytecode", lambda args=None: None)
    monkeypatch.setattr(runner, "_release_of", lambda name: name)
    said: list[str] = []
    opts = MatrixOptions(("7.2", "running", "5.10", "6.12"), tmp_path, jobs=2)
    matrix = run_matrix(opts, said.append)
    assert most == 2
    assert [k["name"] for k in matrix["kernels"]] == ["7.2", "running", "5.10", "6.12"]
    assert matrix["kernels"][3]["error"] == "6.12 could not be fetched"
    assert "running 2 kernels at a time" in said
    assert said.index("[5.10] done: exit None; download 0 s, boot 0 s, suite 0 s") < said.index(
        "[running] done: exit None; download 0 s, boot 0 s, suite 0 s"
    )
