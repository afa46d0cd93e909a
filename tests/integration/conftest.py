"""Integration tests run on the real kernel, as root; the whole session must leave the
root namespace exactly as it found it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import hoststate

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="integration tests need root (namespaces, veth, iptables)")
        for item in items:
            if "integration" in str(item.path):
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def host_unchanged() -> Iterator[None]:
    """Fail the session if anything in the root namespace changed."""
    if os.geteuid() != 0 or os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    before = hoststate.snapshot()
    yield
    changes = hoststate.diff(before, hoststate.snapshot())
    assert not changes, "the tests changed the root namespace:\n" + "\n".join(changes[:20])


def netlab_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would (a separate process), capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "netlab", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )
