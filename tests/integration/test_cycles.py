"""200 up/down cycles in one process: open files and child processes stay flat."""

from __future__ import annotations

import os

import netlab
from netlab.runtime import netns


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _children() -> int:
    me = str(os.getpid())
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == me:
                        count += 1
            except OSError:
                continue
    return count


def test_200_cycles_leak_nothing() -> None:
    with netlab.up("bridge3", instance="cycle") as lab:  # warm caches and imports first
        lab.node("host").run(["true"])
    fds, children = _fds(), _children()
    for i in range(200):
        with netlab.up("bridge3", instance="cycle") as lab:
            if i % 50 == 0:
                assert lab.node("ns-calm1").run(["ping", "-c1", "-W1", "198.51.100.2"]).returncode == 0
    assert _fds() == fds
    assert _children() == children
    assert not [n for n in netns.listed() if n.startswith("bridge3-cycle.")]
