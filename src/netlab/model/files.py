"""Where a topology named on the command line is: a path, or ``NAME.yaml`` on the search path.

``netlab up bridge3`` looks for ``bridge3.yaml`` in, in order: ``./topologies``, each directory
of ``$NETLAB_PATH`` (colon-separated) and the topologies shipped with netlab. Anything that
contains a ``/`` or ends in ``.yaml``/``.yml`` is taken as a path. Apart from the loader so
that finding a file imports neither YAML nor pydantic (the plan cache looks files up first).
"""

from __future__ import annotations

import os
from pathlib import Path

from netlab.errors import Issue, TopologyError

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def search_path() -> list[Path]:
    """Directories searched for ``NAME.yaml``, first match wins."""
    dirs = [Path.cwd() / "topologies"]
    dirs += [Path(p) for p in os.environ.get("NETLAB_PATH", "").split(":") if p]
    shipped = [_PACKAGE_DIR / "_topologies", _PACKAGE_DIR.parent.parent / "topologies"]
    dirs += [d for d in shipped if d.is_dir()]
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def available() -> dict[str, Path]:
    """Every topology name reachable through the search path."""
    found: dict[str, Path] = {}
    for d in search_path():
        for f in sorted(d.glob("*.yaml")):
            found.setdefault(f.stem, f)
    return found


def resolve(ref: str) -> Path:
    """The file ``ref`` names: a path, or a topology name on the search path."""
    if "/" in ref or ref.endswith((".yaml", ".yml")):
        path = Path(ref)
        if path.is_dir():
            raise TopologyError([Issue(None, f"{ref}: is a directory, not a topology file")])
        if not path.is_file():
            raise TopologyError([Issue(None, f"{ref}: no such topology file")])
        return path
    for d in search_path():
        candidate = d / f"{ref}.yaml"
        if candidate.is_file():
            return candidate
    names = ", ".join(sorted(available())) or "none"
    raise TopologyError(
        [Issue(None, f"no topology named '{ref}' (searched {', '.join(map(str, search_path()))}; known: {names})")]
    )
