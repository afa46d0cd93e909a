"""Integration tests run on the real kernel, as root (the root namespace check that the
whole session leaves the host as it found it is in the top-level conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="integration tests need root (namespaces, veth, iptables)")
        for item in items:
            if "integration" in str(item.path):
                item.add_marker(skip)


def interruptible() -> None:
    """In a CLI child, before exec: Ctrl-C back to its default, as in a terminal. A suite started
    in the background by a non-interactive shell inherits SIGINT ignored, Python keeps an ignored
    SIGINT ignored, and the Ctrl-C tests would then hang or test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def netlab_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would (a separate process), capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "netlab", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )
