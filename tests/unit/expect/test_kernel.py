"""What a test needs from the kernel, and what it must leave alone (netlab.expect.kernel)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from netlab.expect import kernel as kc


def test_config_options_on_off_and_unknowable(tmp_path: Path) -> None:
    plain = tmp_path / "config"
    plain.write_text("CONFIG_NET_ACT_GACT=m\n# CONFIG_NET_CLS_MATCHALL is not set\nCONFIG_HZ=250\n")
    packed = tmp_path / "config.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        config = kc.read_config([tmp_path / "absent", path])
        assert config is not None and config["CONFIG_HZ"] == "250"
        assert kc.config_refusal("NET_ACT_GACT", config) is None
        assert "built without CONFIG_NET_CLS_MATCHALL" in str(kc.config_refusal("CONFIG_NET_CLS_MATCHALL", config))
        assert "built without CONFIG_NET_SCH_CAKE" in str(kc.config_refusal("NET_SCH_CAKE", config))
    assert kc.read_config([tmp_path / "absent"]) is None
    assert "publishes no config" in str(kc.config_refusal("NET_ACT_GACT", None))


def test_modules_present_or_named_as_missing() -> None:
    built_in_or_loaded = sorted(os.listdir("/sys/module"))[0]
    assert kc.module_refusal(built_in_or_loaded) is None
    why = kc.module_refusal("netlab_no_such_module")
    assert why is not None
    if Path("/lib/modules", os.uname().release).is_dir():
        assert "has no module netlab_no_such_module" in why
    else:  # a kernel without module support does not say what it has built in
        assert "cannot tell whether" in why and "config=" in why


def test_only_warnings_and_bugs_count_as_complaints() -> None:
    lines = [
        "calmbr: port 1(calmveth1_peer) entered forwarding state",
        "WARNING: CPU: 0 PID: 1 at net/core/dev.c:1234 dev_foo+0x10/0x20",
        "BUG: kernel NULL pointer dereference, address: 0000000000000008",
        "refcount_t: underflow; use-after-free.",
        "veth1: renamed from tmp",
    ]
    assert kc.bad_lines(lines) == lines[1:4]


@pytest.mark.skipif(os.geteuid() != 0, reason="reading /dev/kmsg needs root")
def test_a_quiet_stretch_of_kernel_life_is_clean() -> None:
    start = kc.mark()
    assert start.log is not None  # positioned at the end of the kernel log
    assert kc.problems_since(start) == []
    kc.assert_kernel_clean(kc.mark())
