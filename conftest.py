"""What tests/ and scenarios/ share.

- ``pytester``, for the plugin's own tests.
- A plan cache of the session's own (``NETLAB_PLAN_CACHE``): the suite neither reads plans a
  user's ``netlab up`` left in /var/cache/netlab nor leaves its own there; the CLI processes the
  tests start inherit it.
- The root namespace check: run as root on a host, the whole session must leave the root
  namespace's links, firewall, net.* sysctls, namespaces and tracefs instances as it found them.
  Inside a matrix VM it is not run: the VM is thrown away, and the modules scenarios load there
  (Debian builds them as modules) add sysctls that are no change of the host.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from tests import hoststate

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session", autouse=True)
def private_plan_cache() -> Iterator[None]:
    """Point the plan cache at a directory of this session's (each xdist worker has its own),
    removed at its end."""
    directory = tempfile.mkdtemp(prefix="netlab-plans-")
    previous = os.environ.get("NETLAB_PLAN_CACHE")
    os.environ["NETLAB_PLAN_CACHE"] = os.path.join(directory, "plans")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("NETLAB_PLAN_CACHE", None)
        else:
            os.environ["NETLAB_PLAN_CACHE"] = previous
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def host_unchanged() -> Iterator[None]:
    """Fail the session if anything in the root namespace changed."""
    if os.geteuid() != 0 or os.environ.get("PYTEST_XDIST_WORKER") or os.environ.get("NETLAB_IN_VM"):
        yield
        return
    before = hoststate.snapshot()
    yield
    changes = hoststate.diff(before, hoststate.snapshot())
    assert not changes, "the tests changed the root namespace:\n" + "\n".join(changes[:20])
