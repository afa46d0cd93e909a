"""What a matrix guest would otherwise rebuild at every boot: the native trace walker and the
plans of the labs it brings up.

A guest sees ``/var/cache`` as an empty tmpfs, so netlab's caches start empty in each VM: the
walker was compiled again (gcc under TCG) and every lab planned again, which the host's suite
does not pay. The walker is built here on the host and copied into the guest's writable work
directory; a kernel's plans are kept on the host between runs (a plan is only valid on the
kernel it was made on: the key holds the release) and copied in before the boot and back out
after it. Both directories stay private (0700, root's), as the caches require. Best effort
throughout: a guest without them is only slower.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from netlab.errors import NetlabError
from netlab.runtime import cachedir
from netlab.tracers.decode import native

#: a kernel's plans between matrix runs, by release
PLANS = cachedir.ROOT / "guest-plans"


def prepare(work: Path, release: str) -> dict[str, str]:
    """Fill ``work`` with the walker and ``release``'s plans; the guest's environment for them."""
    env: dict[str, str] = {}
    with contextlib.suppress(NetlabError, OSError):
        built = native.build()
        (work / "native").mkdir(mode=0o700)
        shutil.copy2(built, work / "native" / built.name)
        env["NETLAB_NATIVE"] = str(work / "native")
    plans = work / "plans"
    with contextlib.suppress(OSError):
        if (PLANS / release).is_dir():
            shutil.copytree(PLANS / release, plans)
        plans.mkdir(mode=0o700, exist_ok=True)
        plans.chmod(0o700)
        env["NETLAB_PLAN_CACHE"] = str(plans)
    return env


def keep(work: Path, release: str) -> None:
    """Keep the plans the guest made (and used) for the next run on ``release``."""
    plans = work / "plans"
    if not plans.is_dir():
        return
    with contextlib.suppress(OSError):
        PLANS.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = PLANS / f".{release}.new"
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.copytree(plans, fresh)
        shutil.rmtree(PLANS / release, ignore_errors=True)
        fresh.rename(PLANS / release)
