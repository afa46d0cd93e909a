"""The CLI as a user meets it: one clear message, a non-zero exit, no traceback, nothing left."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.expect.catalogue import LAST_RUN
from netlab.runtime import journal, netns
from tests.integration.conftest import ROOT, netlab_cli

RUNTIME_BAD = sorted((ROOT / "tests" / "data" / "bad-runtime").glob("*.yaml"))


def _expect(path: Path) -> tuple[str, str | None]:
    text = path.read_text()
    expect = re.search(r"^# expect: (.+)$", text, re.M)
    at = re.search(r"^# at: (\d+:\d+)$", text, re.M)
    assert expect
    return expect.group(1), at.group(1) if at else None


@pytest.mark.parametrize("path", RUNTIME_BAD, ids=[p.stem for p in RUNTIME_BAD])
def test_kernel_refusal_is_located_and_rolled_back(path: Path) -> None:
    expect, at = _expect(path)
    before, labs_before = netns.listed(), journal.all_labs()
    result = netlab_cli("up", str(path))
    assert result.returncode == 6, result.stderr
    assert "Traceback" not in result.stderr
    assert expect in result.stderr, result.stderr
    if at:
        assert f"{path}:{at}:" in result.stderr, result.stderr
    assert netns.listed() == before
    assert journal.all_labs() == labs_before  # no journal of the refused lab is left behind


def test_static_bad_topology_via_cli_creates_nothing() -> None:
    before = netns.listed()
    bad = ROOT / "tests" / "data" / "bad" / "gateway_unreachable.yaml"
    result = netlab_cli("up", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "gateway 203.0.113.1 is unreachable" in result.stderr
    assert netns.listed() == before


def test_lab_already_up() -> None:
    inst = f"dup{os.getpid()}"
    assert netlab_cli("up", "veth-two-ns", "--instance", inst).returncode == 0
    try:
        again = netlab_cli("up", "veth-two-ns", "--instance", inst)
        assert again.returncode == 5
        assert f"lab 'veth-two-ns-{inst}' is already up" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        assert netlab_cli("down", f"veth-two-ns-{inst}").returncode == 0


UNKNOWN_LAB = [["down", "nosuchlab"], ["status", "nosuchlab"], ["exec", "nosuchlab", "a", "--", "true"]]


@pytest.mark.parametrize("command", UNKNOWN_LAB)
def test_unknown_lab_creates_nothing(command: list[str]) -> None:
    before = netns.listed()
    result = netlab_cli(*command)
    assert result.returncode == 5
    assert "no lab named 'nosuchlab' is up" in result.stderr
    assert "Traceback" not in result.stderr
    assert netns.listed() == before


def test_down_missing_ok_is_idempotent() -> None:
    assert netlab_cli("down", "--missing-ok", "nosuchlab").returncode == 0


def test_not_root_is_one_message() -> None:
    result = netlab_cli_as_nobody("up", "bridge3")
    assert result.returncode == 3, result.stderr
    assert "netlab needs root" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_command_as_a_user_is_exit_3_or_works() -> None:
    """Without root: the documented exit 3 and one message, or the command's answer; never a
    traceback (status and down used to raise PermissionError)."""
    up = netlab_cli("up", "veth-two-ns", "--instance", "nobody")
    assert up.returncode == 0, up.stderr
    try:
        for args in (
            ["status"],
            ["status", "veth-two-ns-nobody"],
            ["down", "veth-two-ns-nobody"],
            ["clean"],
            ["exec", "veth-two-ns-nobody", "ns1", "--", "true"],
            ["trace", "veth-two-ns-nobody", "--duration", "1"],
            ["topologies"],
            ["doctor"],
        ):
            result = netlab_cli_as_nobody(*args)
            assert result.returncode in (0, 3), (args, result.stderr)
            assert "Traceback" not in result.stderr, (args, result.stderr)
            if result.returncode == 3:
                assert "root" in result.stderr, (args, result.stderr)
        assert "veth-two-ns-nobody" in journal.all_labs()  # the user's down removed nothing
    finally:
        netlab_cli("down", "veth-two-ns-nobody")


def test_down_of_several_labs_removes_those_that_are_up() -> None:
    up = netlab_cli("up", "veth-two-ns", "--instance", "several")
    assert up.returncode == 0, up.stderr
    result = netlab_cli("down", "nosuchlab", "veth-two-ns-several")
    assert result.returncode == 5, result.stderr
    assert "no lab named 'nosuchlab' is up" in result.stderr
    assert "veth-two-ns-several: removed 2 namespaces" in result.stdout
    assert "veth-two-ns-several" not in journal.all_labs()


def test_dry_run_refuses_what_up_refuses() -> None:
    result = netlab_cli("up", "bridge3", "--dry-run", "--instance", "a/b")
    assert result.returncode == 2
    assert "instance name 'a/b' contains '/'" in result.stderr


def netlab_cli_as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "netlab", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def test_up_status_exec_down_roundtrip() -> None:
    inst = f"rt{os.getpid()}"
    lab = f"bridge3-{inst}"
    up = netlab_cli("up", "bridge3", "--instance", inst)
    assert up.returncode == 0, up.stderr
    assert f"{lab}.ns-calm1" in up.stdout
    try:
        st = netlab_cli("status", lab, "--json")
        assert st.returncode == 0 and '"state": "up"' in st.stdout
        ping = netlab_cli("exec", lab, "ns-calm1", "--", "ping", "-c1", "-W1", "198.51.100.2")
        assert ping.returncode == 0, ping.stderr
        sysfs = netlab_cli("exec", lab, "host", "--", "ls", "/sys/class/net")
        assert "calmbr" in sysfs.stdout.split()
        bad_node = netlab_cli("exec", lab, "nosuchnode", "--", "true")
        assert bad_node.returncode == 5 and "has no node 'nosuchnode'" in bad_node.stderr
    finally:
        down = netlab_cli("down", lab)
    assert down.returncode == 0
    assert not [n for n in netns.listed() if n.startswith(f"{lab}.")]


def test_dry_run_touches_nothing() -> None:
    before = netns.listed()
    result = netlab_cli("up", "--dry-run", "linear50")
    assert result.returncode == 0
    assert "create network namespace linear50.fabric" in result.stdout
    assert netns.listed() == before


def test_validate_and_schema() -> None:
    assert netlab_cli("validate", "bridge3", "linear50").returncode == 0
    schema = netlab_cli("schema")
    assert schema.returncode == 0 and '"$schema"' in schema.stdout


DUMMY_LAB = """name: dummies
ipv6: false
nodes:
  a:
    dummies: [svc0]
    interfaces:
      svc0: {addresses: [203.0.113.1/32]}
"""


def test_an_interface_kind_the_kernel_lacks_is_one_message_and_nothing_is_left(tmp_path: Path) -> None:
    """The development kernel is built without dummy (and 8021q): `up` names the module, the
    file and line, exits 4 and leaves nothing. A kernel that has the driver builds the lab."""
    topo = tmp_path / "dummies.yaml"
    topo.write_text(DUMMY_LAB)
    before, labs_before = netns.listed(), journal.all_labs()
    result = netlab_cli("up", str(topo))
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        try:
            shown = netlab_cli("exec", "dummies", "a", "--", "ip", "-o", "addr", "show", "svc0").stdout
            assert "203.0.113.1/32" in shown
        finally:
            netlab_cli("down", "dummies")
    else:
        assert result.returncode == 4, result.stderr
        assert f"{topo}:5:15: node 'a': dummy svc0" in result.stderr, result.stderr
        assert "this kernel has no dummy interfaces (module dummy" in result.stderr
    assert netns.listed() == before
    assert journal.all_labs() == labs_before


def test_reasons_without_a_matrix_shows_the_last_shipped_run_beside_this_kernel(tmp_path: Path) -> None:
    """A fresh checkout has no matrix/: `netlab reasons` shows the catalogue netlab ships from
    its last full run, this machine's kernel as one more column, and says how to make one's own;
    a --matrix that holds none is still an error."""
    argv = [sys.executable, "-m", "netlab", "reasons", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "netlab's last full matrix run (" in done.stderr and "netlab matrix -o matrix" in done.stderr
    kernels = [k["name"] for k in json.loads(done.stdout)["kernels"]]
    assert {"5.10", "6.1", "6.12", "7.2"} <= set(kernels)
    shipped = {k["release"] for k in json.loads(LAST_RUN.read_text())["kernels"]}
    if os.geteuid() == 0 and platform.release() not in shipped:  # its table is read from tracefs
        assert kernels[-1] == "this machine"
    missing = subprocess.run(
        [*argv, "--matrix", str(tmp_path / "none")], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert missing.returncode != 0 and "no matrix in" in missing.stderr and "Traceback" not in missing.stderr
