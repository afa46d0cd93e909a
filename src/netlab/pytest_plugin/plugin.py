"""The ``pytest11`` plugin: hooks and fixtures only; the logic lives in ordinary modules.

Fixtures
  ``netlab_up`` (function scope): a factory, ``netlab_up("bridge3")`` -> live :class:`Lab`.
  Each lab gets a unique instance name (worker id + random suffix), so tests and xdist
  workers never collide, and it is torn down after the test even when the test fails.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netlab.lab import Lab
from netlab.model.topology import Topology

LabFactory = Callable[..., Lab]


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("netlab labs need root (network namespaces, veth, iptables)")


def unique_instance(request: pytest.FixtureRequest) -> str:
    """A lab instance name no other test or worker uses: worker id + random suffix."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{worker}{secrets.token_hex(3)}"


@pytest.fixture
def netlab_up(request: pytest.FixtureRequest) -> Iterator[LabFactory]:
    """Factory: bring up a topology (name, path or model) for this test only."""
    _require_root()
    labs: list[Lab] = []

    def factory(topology: str | Path | Topology, **kwargs: Any) -> Lab:
        kwargs.setdefault("instance", unique_instance(request))
        from netlab.lab import up

        lab = up(topology, **kwargs)
        labs.append(lab)
        return lab

    yield factory
    for lab in reversed(labs):
        lab.down()
