"""The pytest plugin, exercised by running pytest on small scenario files (pytester)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from netlab.kernels import suite
from netlab.kernels.suite import RERUN_PREFIX
from netlab.tracers.registry import get

SCENARIO = '''
import pytest
from netlab.pytest_plugin.assertions import assert_dropped
from netlab.expect.drops import Drop, by_kernel

EXPECT = {expect}

@pytest.mark.netlab_topology("veth-two-ns")
def test_udp(netlab_lab, netlab_traffic, netlab_trace):
    """UDP to a closed port."""
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns1", "veth1", "udp", dst="198.51.100.2", count=2)
    assert_dropped(t.result, EXPECT, count=2)
'''


def run(pytester: pytest.Pytester, expect: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_scenario=SCENARIO.replace("{expect}", expect))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", *args)


def test_right_expectation_passes_and_is_reported(pytester: pytest.Pytester) -> None:
    report = pytester.path / "report.json"
    result = run(pytester, 'by_kernel({"*": Drop("__udp4_lib_rcv", "NO_SOCKET", "ns2")})', f"--netlab-report={report}")
    result.assert_outcomes(passed=1)
    data = json.loads(report.read_text())
    (scenario,) = data["scenarios"]
    assert scenario["outcome"] == "passed" and scenario["summary"] == "UDP to a closed port."
    assert {"location": "__udp4_lib_rcv", "reason": "NO_SOCKET", "node": "ns2", "count": 2} in scenario["drops"]
    assert data["asserted_reasons"] == ["NO_SOCKET"]
    assert data["kernel"]["release"] and "CONFIG_NET_DROP_MONITOR" in data["kernel"]["config"]


def test_wrong_expectation_fails_naming_what_was_observed(pytester: pytest.Pytester) -> None:
    result = run(pytester, 'by_kernel({"*": Drop("tcp_v4_rcv", "TCP_CSUM", "ns2")})')
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*expected exactly 2 drop(s) at tcp_v4_rcv TCP_CSUM in node ns2, saw 0*",
            "*observed by tracefs in lab veth-two-ns-*",
            "*2 x __udp4_lib_rcv NO_SOCKET  node=ns2 device=veth2*",
        ]
    )


def test_every_scenario_is_in_the_report_traced_or_not(pytester: pytest.Pytester) -> None:
    """``netlab matrix`` judges a kernel by this report: a scenario that failed without tracing
    anything must be in it (it was not, and a failing walk scenario passed for green)."""
    pytester.makepyfile(
        test_plain="""
import pytest

def test_fine():
    'Nothing to trace here.'

def test_broken():
    assert False

def test_skipped():
    pytest.skip("not on this kernel")

@pytest.fixture
def breaks_on_the_way_out():
    yield
    raise RuntimeError("teardown failed")

def test_teardown_fails(breaks_on_the_way_out):
    pass
"""
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--netlab-report={report}")
    result.assert_outcomes(passed=2, failed=1, skipped=1, errors=1)
    scenarios = json.loads(report.read_text())["scenarios"]
    assert [s["summary"] for s in scenarios if s["scenario"].endswith("::test_fine")] == ["Nothing to trace here."]
    outcomes = {s["scenario"].split("::")[1]: s["outcome"] for s in scenarios}
    assert outcomes == {
        "test_fine": "passed",
        "test_broken": "failed",
        "test_skipped": "skipped",
        "test_teardown_fails": "error",
    }
    broken = next(s for s in scenarios if s["scenario"].endswith("::test_broken"))
    assert broken["failure"].startswith("assert False") and broken["seconds"] >= 0


def test_a_test_that_passes_on_its_second_run_is_flaky_with_its_first_failure(pytester: pytest.Pytester) -> None:
    """The matrix runs a kernel's failed scenarios once more, in a second pytest run of just
    them in the same shell command (:mod:`netlab.kernels.suite`); a pass then is flaky, never a
    plain pass, and a test that fails again keeps its first failure."""
    pytester.makepyfile(
        test_retry="""
import pathlib

def test_second_time_lucky():
    mark = pathlib.Path("tried")
    if not mark.exists():
        mark.touch()
        assert 1 == 2, "first attempt"

def test_always_broken():
    assert 3 == 4

def test_fine():
    pass
"""
    )
    report = pytester.path / "report.json"
    argv = suite.command(report, ["-p", "no:cacheprovider"], [])
    done = subprocess.run(argv, cwd=pytester.path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stdout[-2000:]
    assert f"{RERUN_PREFIX}once more" in done.stdout
    assert "1 failed, 1 passed, 1 deselected" in done.stdout  # the second run: just the two
    assert suite.settle(report, done.returncode) == 1  # one still fails
    assert not suite.retry_path(report).exists()
    scenarios = {s["scenario"].split("::")[1]: s for s in json.loads(report.read_text())["scenarios"]}
    assert {name: s["outcome"] for name, s in scenarios.items()} == {
        "test_second_time_lucky": "flaky",
        "test_always_broken": "failed",
        "test_fine": "passed",
    }
    assert "first attempt" in scenarios["test_second_time_lucky"]["failure"]
    assert "assert 3 == 4" in scenarios["test_always_broken"]["failure"]


def test_kernel_outside_every_range_is_reported_as_new(pytester: pytest.Pytester) -> None:
    report = pytester.path / "report.json"
    result = run(pytester, 'by_kernel({"<2.0": Drop("x", "Y")})', f"--netlab-report={report}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*new behaviour: no expectation for kernel*", "*2 x __udp4_lib_rcv NO_SOCKET*"])
    (scenario,) = json.loads(report.read_text())["scenarios"]
    assert scenario["outcome"] == "new"
    assert scenario["drops"][0]["reason"] == "NO_SOCKET"


def test_keep_leaves_a_failed_tests_lab_up(pytester: pytest.Pytester) -> None:
    from netlab.runtime import journal
    from netlab.teardown import down

    before = set(journal.all_labs())
    result = run(pytester, 'by_kernel({"*": Drop("nowhere", "NO_SOCKET")})', "--netlab-keep")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*netlab: kept lab veth-two-ns-* of failed *: netlab status veth-two-ns-*"])
    kept = set(journal.all_labs()) - before
    assert len(kept) == 1
    (name,) = kept
    record = journal.read(name)
    assert record is not None and record.state == "up"  # released: its pytest process is gone
    down(name)


def test_unknown_tracer_option_is_a_clear_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, 'by_kernel({"*": Drop(None, None)})', "--netlab-tracer=nosuch")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown tracer 'nosuch' (known: tracefs*"])


OPTIONS = """
import pytest
from netlab.pytest_plugin.assertions import assert_dropped
from netlab.expect.drops import Drop

@pytest.mark.netlab_topology("veth-two-ns")
def test_run_option(netlab_lab, netlab_traffic, netlab_trace):
    with netlab_trace(netlab_lab) as t:
        netlab_traffic.inject("ns1", "veth1", "udp", dst="198.51.100.2", count=4)
    assert t.result.totals and not t.result.drops  # counted in the kernel
    assert_dropped(t.result, Drop(None, "NO_SOCKET", "ns2"), count=4)

@pytest.mark.netlab_topology("veth-two-ns")
@pytest.mark.netlab_tracer("tracefs")
def test_stack_the_marker_tracer_has(netlab_lab, netlab_traffic, netlab_trace):
    with netlab_trace(netlab_lab, stack=True) as t:
        netlab_traffic.inject("ns1", "veth1", "udp", dst="198.51.100.2", count=1)
    assert t.result.drops[0].stack

@pytest.mark.netlab_topology("veth-two-ns")
def test_stack_the_run_tracer_has_not(netlab_lab, netlab_trace):
    with netlab_trace(netlab_lab, stack=True):
        raise AssertionError("must not run")
"""


def test_tracer_options_from_the_run_the_marker_and_the_factory(pytester: pytest.Pytester) -> None:
    """``--netlab-tracer bpftrace:count`` counts in the kernel; a marker's tracer replaces the
    run's; a factory option the tracer has not skips the test with the tracer's reason."""
    from netlab.tracers.registry import get

    if not get("bpftrace").probe().usable:
        pytest.skip(f"bpftrace cannot run here: {get('bpftrace').probe().detail}")
    pytester.makepyfile(test_options=OPTIONS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--netlab-tracer=bpftrace:count", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*tracer bpftrace has no stack option (its options: count)*"])
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--netlab-tracer=bpftrace:fast")
    bad.stderr.fnmatch_lines(
        ["*--netlab-tracer bpftrace:fast: unknown tracer option fast (known: stack, count, graph)*"]
    )


NEEDS = """
import pytest

@pytest.mark.netlab_needs("netlab_no_such_module")
def test_needs_a_module_the_kernel_lacks():
    raise AssertionError("must not run")

@pytest.mark.netlab_needs(config=["NETLAB_NO_SUCH_OPTION"])
def test_needs_an_option():
    raise AssertionError("must not run")

@pytest.mark.netlab_needs("{present}")
def test_needs_what_is_there():
    pass

def test_clean_kernel():
    pass
"""


def test_needs_marker_skips_with_the_kernels_reason(pytester: pytest.Pytester) -> None:
    present = sorted(os.listdir("/sys/module"))[0]  # loaded, or built in with parameters
    pytester.makepyfile(test_needs=NEEDS.replace("{present}", present))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", "-rs", "--netlab-check-kernel")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.re_match_lines([r".*(has no module|cannot tell whether .* has) netlab_no_such_module.*"])
    result.stdout.re_match_lines([r".*(built without CONFIG_NETLAB_NO_SUCH_OPTION|publishes no config).*"])


def test_a_failed_scenario_leaves_a_pcapng_with_its_verdicts(pytester: pytest.Pytester) -> None:
    """``--netlab-pcap DIR``: the frames of a failed test's trace, its dropped ones commented as
    Wireshark filters them; a passing test leaves nothing."""
    if not get("bpftrace").probe().usable:
        pytest.skip("bpftrace cannot run here: the markers that match drops to frames are what it reads")
    pcaps = pytester.path / "pcaps"
    passing = run(
        pytester,
        'by_kernel({"*": Drop(None, "NO_SOCKET", "ns2")})',
        "--netlab-tracer=bpftrace",
        f"--netlab-pcap={pcaps}",
    )
    passing.assert_outcomes(passed=1)
    assert not pcaps.exists() or not list(pcaps.iterdir())
    result = run(
        pytester,
        'by_kernel({"*": Drop("tcp_v4_rcv", "TCP_CSUM", "ns2")})',
        "--netlab-tracer=bpftrace",
        f"--netlab-pcap={pcaps}",
    )
    result.assert_outcomes(failed=1)
    (written,) = pcaps.iterdir()
    assert written.name == "test_scenario.py_test_udp.pcapng"
    result.stdout.fnmatch_lines([f"netlab pcap: {written}: * frames, 2 with the verdict of their drop*"])
    shown = subprocess.run(
        [
            "tshark",
            "-r",
            str(written),
            "-Y",
            'frame.comment contains "NO_SOCKET"',
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.split() == ["ns2:veth2", "ns2:veth2"]
