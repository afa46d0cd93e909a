"""Crash safety: kill -9, SIGTERM and Ctrl-C at any point of `up` leave nothing down/clean can't remove."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netlab.runtime import journal, netns, wait
from tests.integration.conftest import ROOT, interruptible, netlab_cli


def _lab_namespaces(lab: str) -> list[str]:
    return [n for n in netns.listed() if n.startswith(f"{lab}.")]


def _start_up(instance: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "netlab", "up", "linear50", "--instance", instance],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=interruptible,  # noqa: PLW1509 -- only signal.signal runs in the child, no lock to inherit
    )


def _wait_for_entries(lab: str, entries: int, extra: float, timeout: float = 30) -> None:
    """Block until the lab's journal has ``entries`` lines, then ``extra`` seconds more.

    The journal is written as `up` goes, so this lands a signal at a chosen point of the
    build (entries 1-103 are the namespaces phase; extra delays reach links and addresses).
    """
    path = journal.journal_path(lab)

    def written() -> int:
        try:
            return path.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    if wait.poll(written, lambda n: n >= entries, timeout, first=0.0005, most=0.0005) < entries:
        pytest.fail(f"{lab}: journal never reached {entries} entries")
    time.sleep(extra)


# (journal entries, extra seconds): before the first namespace, inside the namespaces phase,
# right after it (sysctls, loopback), and well into links/addresses/readiness
KILL_POINTS = [(1, 0.0), (2, 0.0), (40, 0.0), (103, 0.0), (103, 0.02), (103, 0.06)]


@pytest.mark.parametrize(("entries", "extra"), KILL_POINTS)
def test_kill9_during_up_then_down_leaves_nothing(entries: int, extra: float) -> None:
    instance = f"k9x{entries}x{int(extra * 1000)}"
    lab = f"linear50-{instance}"
    proc = _start_up(instance)
    _wait_for_entries(lab, entries, extra)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    record = journal.read(lab)
    assert record is not None
    assert record.state in ("crashed", "up")
    result = netlab_cli("down", lab)
    assert result.returncode == 0, result.stderr
    assert _lab_namespaces(lab) == []
    assert journal.read(lab) is None


def test_kill9_then_clean_removes_only_the_crashed_lab() -> None:
    healthy = f"healthy{os.getpid()}"
    assert netlab_cli("up", "veth-two-ns", "--instance", healthy).returncode == 0
    instance = f"k9c{os.getpid()}"
    proc = _start_up(instance)
    try:
        _wait_for_entries(f"linear50-{instance}", 40, 0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert journal.read(f"linear50-{instance}").state == "crashed"  # type: ignore[union-attr]
        result = netlab_cli("clean")
        assert result.returncode == 0, result.stderr
        assert _lab_namespaces(f"linear50-{instance}") == []
        assert journal.read(f"veth-two-ns-{healthy}") is not None
        assert len(_lab_namespaces(f"veth-two-ns-{healthy}")) == 2
    finally:
        netlab_cli("down", "--missing-ok", f"veth-two-ns-{healthy}", f"linear50-{instance}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("entries", [2, 60, 103])
def test_signal_during_up_rolls_back(sig: signal.Signals, entries: int) -> None:
    instance = f"sig{int(sig)}x{entries}"
    lab = f"linear50-{instance}"
    proc = _start_up(instance)
    _wait_for_entries(lab, entries, 0)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
    record = journal.read(lab)
    if record is not None and record.ready:
        assert netlab_cli("down", lab).returncode == 0
        pytest.skip(f"up finished before the signal arrived (after {entries} journal entries): nothing rolled back")
    assert proc.returncode == 130, err
    assert _lab_namespaces(lab) == []
    assert record is None


def test_netns_dir_is_shared_like_iproute2() -> None:
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert any(" /run/netns " in line and "shared:" in line for line in mountinfo.splitlines())
