"""netlab: reproducible Linux network labs in namespaces, and where the kernel drops packets.

The flow is one-way: YAML -> :mod:`netlab.model` -> :mod:`netlab.plan` -> :mod:`netlab.apply`
(run by :mod:`netlab.bringup`) -> a live :class:`netlab.lab.Lab` -> :mod:`netlab.teardown`.

    >>> import netlab
    >>> with netlab.up("bridge3") as lab:                       # doctest: +SKIP
    ...     lab.node("ns-calm1").run(["ping", "-c1", "198.51.100.2"])

    >>> with netlab.trace(lab) as t:                            # doctest: +SKIP
    ...     lab.node("ns-calm1").run(["ping", "-c1", "198.51.100.2"])
    >>> t.result.drops                                          # doctest: +SKIP

``netlab.up``, ``netlab.attach`` and ``netlab.Lab`` are :mod:`netlab.lab`'s and ``netlab.trace``
:mod:`netlab.tracing.trace`'s, looked up when first used: the ``netlab`` command imports this
package too, and a plain ``netlab down`` has no use for the models and their pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netlab.errors import NetlabError

if TYPE_CHECKING:
    from netlab.lab import Lab, attach, up
    from netlab.tracing.trace import trace

__version__ = "0.1.0"
__all__ = ["Lab", "NetlabError", "attach", "trace", "up"]


def __getattr__(name: str) -> Any:
    if name in ("Lab", "attach", "up"):
        from netlab import lab  # lazy: the models' pydantic, which `netlab down` does without

        return getattr(lab, name)
    if name == "trace":
        from netlab.tracing import trace  # lazy: as above, and the tracers with it

        return trace.trace
    raise AttributeError(f"module 'netlab' has no attribute {name!r}")
