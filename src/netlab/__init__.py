"""netlab: reproducible Linux network labs in namespaces, and where the kernel drops packets.

The flow is one-way: YAML -> :mod:`netlab.model` -> :mod:`netlab.plan` -> :mod:`netlab.apply`
-> a live :class:`netlab.lab.Lab` -> :mod:`netlab.teardown`. Heavy modules (pyroute2, scapy)
are imported only by the layers that talk to the kernel, so ``netlab down`` stays fast.

    >>> import netlab
    >>> with netlab.up("bridge3") as lab:                       # doctest: +SKIP
    ...     lab.node("ns-calm1").run(["ping", "-c1", "198.51.100.2"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netlab.errors import NetlabError

if TYPE_CHECKING:
    from netlab.lab import Lab

__version__ = "0.1.0"
__all__ = ["Lab", "NetlabError", "attach", "up"]


def up(topology: Any, **kwargs: Any) -> Lab:
    """Bring a lab up; see :func:`netlab.lab.up`."""
    from netlab.lab import up as _up

    return _up(topology, **kwargs)


def attach(name: str) -> Lab:
    """A handle on a lab that is already up; see :func:`netlab.lab.attach`."""
    from netlab.lab import attach as _attach

    return _attach(name)
