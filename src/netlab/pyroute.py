"""pyroute2, imported at the cost of what we use.

``import pyroute2`` runs a package ``__init__`` that imports every subsystem (IPDB, NDB,
conntrack, nl80211, asyncio, multiprocessing...): ~200 ms, the largest single cost of
``netlab up`` on a 2-core VM. The rtnetlink message classes that decode answers (addresses,
routes, aliases, generic netlink) need ~40 ms of it; ``up`` and ``down`` pack their requests
without them (:mod:`netlab.runtime.nlmsg`) and import none of it.

So, when pyroute2 is not imported yet, we register its package module *without executing* its
``__init__`` and import the submodules we need. The first time anyone touches an attribute of
the package itself (``from pyroute2 import IPRoute``), a module ``__getattr__`` runs the real
``__init__`` into the same module object, so other code sees the ordinary pyroute2. Only the
import order changes; no pyroute2 code is altered or copied.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any


def _lazy_package() -> None:
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None:  # pragma: no cover - dependency missing
        return
    module: ModuleType = importlib.util.module_from_spec(spec)

    def load_rest(name: str) -> Any:
        if not name.startswith("__") and importlib.util.find_spec(f"pyroute2.{name}") is not None:
            # `from pyroute2 import config` probes the attribute before importing the
            # submodule: say "no attribute" and the import system loads the submodule.
            raise AttributeError(name)
        del module.__dict__["__getattr__"]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return getattr(module, name)

    module.__dict__["__getattr__"] = load_rest
    sys.modules["pyroute2"] = module


_lazy_package()

from pyroute2 import netlink  # noqa: E402
from pyroute2.netlink import rtnl  # noqa: E402
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # noqa: E402
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # noqa: E402
from pyroute2.netlink.rtnl.rtmsg import rtmsg  # noqa: E402

__all__ = ["ifaddrmsg", "ifinfmsg", "netlink", "rtmsg", "rtnl"]
