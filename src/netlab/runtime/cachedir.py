"""Where netlab keeps what it can rebuild (plans, the native trace walker), and when to trust it.

Both are *executed* on load (a pickle, a shared library), so an entry is only used from a
directory of the caller's own that nobody else can write.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path("/var/cache/netlab")


def configured(variable: str, default: Path) -> Path | None:
    """The directory environment ``variable`` names, ``default`` when it is unset, None when
    it says ``off``."""
    setting = os.environ.get(variable, "")
    if setting == "off":
        return None
    return Path(setting) if setting else default


def private(directory: Path) -> bool:
    """Is ``directory`` ours alone to write (so what is in it was written by us)?"""
    try:
        st = directory.stat()
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022
