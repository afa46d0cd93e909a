"""Plans of topology files kept by content, so that ``up`` of a file built before skips YAML,
validation and planning.

Validating a topology needs pydantic; importing it and building the models is the largest part
of what ``netlab up`` spends in Python, as much as the kernel's own work for a large lab
(``benchmarks/up_down.py``). A plan depends only on the file's bytes, the instance name, the running
kernel (validation asks /proc/sys which sysctls exist) and netlab's own model and planner code;
the key hashes all four, so an edit to any of them is a miss. An entry is written only after a
lab built from it came up, and only the 256 most recent are kept; the directory is root's alone
(0700), and an entry that cannot be read is a miss, never an error. ``NETLAB_PLAN_CACHE=off``
turns it off.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netlab.plan.requests import Request
from netlab.plan.steps import Plan
from netlab.runtime import cachedir

DEFAULT_DIR = cachedir.ROOT / "plans"
#: entries kept; the least recently written go first (every --instance name is an entry of its own)
KEEP = 256
#: the code a plan, its requests and a lab's summary are derived from
_CODE = [Path(__file__).resolve().parents[1] / sub for sub in ("model", "plan", "apply")]
_FORMAT = b"netlab-plan-3"


@dataclass(frozen=True)
class Entry:
    """All ``up`` needs of a topology file without loading it again."""

    name: str
    description: str
    #: the topology as JSON data (the journal keeps it; a :class:`~netlab.lab.Lab` validates it)
    topology: dict[str, Any]
    plan: Plan
    #: node -> [(interface, [address, ...])], in the order the summary shows them
    interfaces: dict[str, list[tuple[str, list[str]]]]
    #: the file's source map (:class:`~netlab.model.yamlsrc.Source` without its data), pickled:
    #: read only when a step fails, to say where in the file that step came from
    source_map: bytes | None = None
    #: the plan's netlink requests as pyroute2 built them (:mod:`netlab.plan.requests`), once a
    #: lab from this entry came up
    requests: tuple[Request | None, ...] | None = None


def _directory() -> Path | None:
    return cachedir.configured("NETLAB_PLAN_CACHE", DEFAULT_DIR)


@functools.cache
def _code_stamp() -> bytes:
    """The model's and planner's source files, by size and mtime: once per process, since the
    code a process plans with is the code it loaded (a stat of every source file at every ``up``
    is slow where each ``stat`` is a 9p round trip, as in the matrix's guests)."""
    stamp = hashlib.sha256(_FORMAT)
    for directory in _CODE:
        for path in sorted(directory.glob("*.py")):
            with contextlib.suppress(OSError):
                st = path.stat()
                stamp.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return stamp.digest()


def key(file: Path, instance: str | None) -> str | None:
    """The entry name of ``file`` brought up as ``instance`` on this kernel (None: unreadable)."""
    try:
        text = file.read_bytes()
    except OSError:
        return None
    digest = hashlib.sha256(text)
    for part in (str(file.resolve()), instance or "", os.uname().release):
        digest.update(b"\0" + part.encode())
    digest.update(_code_stamp())
    return digest.hexdigest()


def get(file: Path, instance: str | None) -> Entry | None:
    """The cached entry, or None (off, never stored, stale, unreadable)."""
    directory = _directory()
    name = key(file, instance) if directory else None
    if directory is None or name is None or not cachedir.private(directory):
        return None
    try:
        with open(directory / name, "rb") as f:
            entry = pickle.load(f)  # noqa: S301 - written by us, in a directory only we can write
    except Exception:  # noqa: BLE001 - any unreadable entry (truncated, older format) is a miss
        return None
    return entry if isinstance(entry, Entry) else None


def put(file: Path, instance: str | None, entry: Entry) -> None:
    """Store ``entry`` atomically; a cache that cannot be written is silently skipped."""
    directory = _directory()
    name = key(file, instance) if directory else None
    if directory is None or name is None:
        return
    with contextlib.suppress(OSError):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(entry, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, directory / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _prune(directory)


def _prune(directory: Path) -> None:
    """Keep the :data:`KEEP` most recently written entries."""
    with contextlib.suppress(OSError):
        entries = [e for e in os.scandir(directory) if not e.name.startswith(".")]
        if len(entries) <= KEEP:
            return
        entries.sort(key=lambda e: e.stat().st_mtime_ns)
        for old in entries[: len(entries) - KEEP]:
            with contextlib.suppress(OSError):
                os.unlink(old.path)
