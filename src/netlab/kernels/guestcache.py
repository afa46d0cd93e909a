"""What a matrix guest would otherwise rebuild at every boot: the native trace walker.

A guest sees ``/var/cache`` as an empty tmpfs, so netlab's caches start empty in each VM, and
the walker was compiled again there, by gcc under TCG, which the host's suite does not pay. It
is built here on the host and copied into the guest's writable work directory, private (0700,
root's) as the cache requires. Best effort: a guest without it builds its own.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from netlab.errors import NetlabError
from netlab.tracers.decode import native


def prepare(work: Path) -> dict[str, str]:
    """Put the walker in ``work``; the guest's environment that points netlab at it."""
    with contextlib.suppress(NetlabError, OSError):
        built = native.build()
        (work / "native").mkdir(mode=0o700)
        shutil.copy2(built, work / "native" / built.name)
        return {"NETLAB_NATIVE": str(work / "native")}
    return {}
