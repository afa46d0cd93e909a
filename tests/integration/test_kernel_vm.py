"""Kernels of the matrix, booted for real: Debian's 6.1 (the workshop VM's kernel) in a
virtme-ng VM, running the module-loading tests, `netlab trace --graph` and one scenario inside;
then the same kernel from its .deb, as a user's local kernel is given to `netlab matrix -k`, and
Debian's PREEMPT_RT flavour of 6.12 (`-k 6.12-rt`).

Slow (a download the first time, then TCG boots and a guest several times slower than the
host), which is why there are three tests; `netlab matrix` runs the whole suite on every kernel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.expect.report import load
from netlab.kernels.catalogue import lookup
from netlab.kernels.debian import fetch
from netlab.kernels.runner import warm_bytecode
from netlab.kernels.vm import choose_accel, run

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="booting a VM that builds labs needs root"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 is not installed"),
    pytest.mark.skipif(
        not (Path(sys.executable).parent / "vng").exists(), reason="virtme-ng is not installed (bootstrap installs it)"
    ),
    pytest.mark.timeout(1200),
]
ROOT = Path(__file__).parents[2]


def test_debian_6_1_boots_and_runs_a_scenario_the_module_tests_and_the_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = fetch(lookup("6.1"))
    # the guest's directory given relative, as `netlab matrix -o matrix` gives it
    monkeypatch.chdir(tmp_path)
    Path("work").mkdir()
    report = tmp_path / "work" / "report.json"
    tests = [
        "tests/integration/test_modules.py",
        "tests/integration/test_tracers.py::test_trace_graph_cli_prints_the_walk",
        "scenarios/test_transport.py::test_udp_to_a_closed_port",
    ]
    warm_bytecode(tests)
    result = run(
        kernel,
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--tb=native", *tests,
            "--netlab-report", str(report),
        ],
        accel=choose_accel(kernel),
        timeout=900,
        cwd=ROOT,
        work=Path("work"),
    )  # fmt: skip
    assert result.rc == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout, result.stdout[
        -2000:
    ]  # nothing skipped: br_netfilter is a module, ftrace allowed
    data = load(report)
    assert data["kernel"]["release"] == kernel.release
    assert [s["outcome"] for s in data["scenarios"]] == ["passed"] * 4  # every test, traced or not
    (scenario,) = [s for s in data["scenarios"] if s["scenario"].endswith("::test_udp_to_a_closed_port")]
    # the report keeps everything traced in the lab; a stray packet of the node's own (an
    # ip_rcv_finish_core NOT_SPECIFIED now and then) may sit beside the scenario's three drops
    assert ("__udp4_lib_rcv", "NO_SOCKET", "ns-calm2", 3) in {
        (d["location"], d["reason"], d["node"], d["count"]) for d in scenario["drops"]
    }, scenario["drops"]


def test_a_local_deb_from_the_cache_runs_a_scenario_labelled_by_its_release(tmp_path: Path) -> None:
    """``netlab matrix -k ./linux-image-....deb``: the package Debian's 6.1 was fetched from,
    unpacked anew as a local kernel, booted, its scenario reported under its release."""
    kernel = fetch(lookup("6.1"))
    debs = sorted((Path(kernel.tree).parents[1] / "debs" / "bookworm").glob("linux-image-*.deb"))
    if not debs:
        pytest.skip("the cache keeps no .deb of 6.1 (fetched before debs were kept)")
    out = tmp_path / "m"
    proc = subprocess.run(
        [sys.executable, "-m", "netlab", "matrix", "-k", str(debs[0]), "-o", str(out), "--",
         "scenarios/test_transport.py::test_udp_to_a_closed_port"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    matrix = json.loads((out / "matrix.json").read_text())
    (run_,) = matrix["kernels"]
    assert run_["name"] == run_["release"] == kernel.release and run_["suite"] == "local .deb"
    assert [c["outcome"] for row in matrix["scenarios"] for c in row["cells"].values()] == ["passed"]


def test_debians_rt_flavour_boots_and_runs_a_scenario(tmp_path: Path) -> None:
    """``-k 6.12-rt``: another flavour of a catalogue suite (PREEMPT_RT), fetched (104 MiB the
    first time) and booted for real, labelled by its own release."""
    out = tmp_path / "m"
    proc = subprocess.run(
        [sys.executable, "-m", "netlab", "matrix", "-k", "6.12-rt", "-o", str(out), "--",
         "scenarios/test_transport.py::test_udp_to_a_closed_port"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    (run_,) = json.loads((out / "matrix.json").read_text())["kernels"]
    assert run_["name"] == "6.12-rt" and run_["release"].endswith("-rt-amd64") and run_["counts"] == {"passed": 1}
