"""Kernel modules a lab needs: loaded by ``up``, announced, and the host's behaviour put back.

On the development kernel everything is built in, so the loading half is skipped there; the
kernel-matrix guests (Debian's kernels, where br_netfilter is a module) run it for real
(tests/integration/test_kernel_vm.py boots one to do so).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.apply.modules import BRIDGE_NF_SYSCTLS, ROOT_BRIDGE_SYSCTL_DIR
from netlab.pytest_plugin.plugin import LabFactory


def test_br_netfilter_is_loaded_and_the_hosts_bridges_behave_as_before(netlab_up: LabFactory) -> None:
    if ROOT_BRIDGE_SYSCTL_DIR.is_dir():
        pytest.skip("br_netfilter is already loaded or built into this kernel; a matrix guest runs this test")
    lab = netlab_up("bridge3")
    assert any(line.startswith("loaded kernel module br_netfilter") for line in lab.modules_loaded), lab.modules_loaded
    for key in BRIDGE_NF_SYSCTLS:
        assert (ROOT_BRIDGE_SYSCTL_DIR / key).read_text().strip() == "0", key  # the root namespace
    assert lab.node("host").sysctl("net.bridge.bridge-nf-call-iptables") == "1"  # the lab's own setting


def test_a_second_lab_loads_nothing(netlab_up: LabFactory) -> None:
    netlab_up("bridge3")
    again = netlab_up("bridge3")
    assert again.modules_loaded == []
    assert Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists()
