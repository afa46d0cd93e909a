"""Where a sysctl lives: ``/proc/sys``, as the namespace of the thread that reads it sees it.

Validation asks which sysctls this kernel has (the root namespace's view) and ``apply`` writes
them inside a node (a thread entered into its namespace): one path for both.
"""

from __future__ import annotations

from pathlib import Path

SYSCTL_ROOT = Path("/proc/sys")


def key_path(key: str) -> Path:
    """``net.ipv4.ip_forward`` -> ``/proc/sys/net/ipv4/ip_forward``."""
    return SYSCTL_ROOT.joinpath(*key.split("."))
