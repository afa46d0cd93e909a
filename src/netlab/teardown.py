"""Undo from the journal: what a lab recorded is exactly what it removes.

``down`` kills the processes still running inside the lab's namespaces (found by namespace
membership, killed by PID), removes trace buffers (tracefs instances) and helper processes the lab's tracers
recorded, then unmounts the namespaces; the kernel deletes every veth, bridge, route and rule
inside them. A namespace is removed only if its inode is still the one the journal recorded
(or, when a ``kill -9`` struck between creating it and recording the inode, if it carries the
lab's ownership mark), so a namespace someone else made under the same name is left alone.
The journal records the inode before the namespace is pinned, so a ``kill -9`` can at worst
leave an empty placeholder file the journal announced, which is removed too.

Everything here is idempotent and imports no netlink library: ``netlab down`` of a 51-node
lab takes a few milliseconds.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from netlab.errors import LabStateError
from netlab.model.names import ownership_alias
from netlab.runtime import journal, netlink, netns, procs, tracebuffers


@dataclass
class Removal:
    """What a teardown did, for the CLI to report."""

    lab: str
    namespaces: list[str] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)
    trace_buffers: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _owned(name: str, written: journal.Written) -> bool:
    """Is namespace ``name`` (listed in the written) really this lab's?"""
    current = netns.inode(name)
    if current is None:
        return False
    recorded = written.netns_inodes.get(name)
    if recorded is not None:
        return recorded == current
    return _has_alias(name, written.lab)


def _has_alias(name: str, lab: str) -> bool:
    """Does lo inside ``name`` carry the mark :class:`~netlab.plan.steps.SetLoopback` leaves?"""

    try:
        with contextlib.closing(netlink.open_route_socket(name)) as sock:
            return netlink.link_alias(sock, 1) == ownership_alias(lab)
    except OSError:
        return False


def remove(written: journal.Written) -> Removal:
    """Remove everything ``written`` lists that still exists and is the lab's own."""
    result = Removal(written.lab)
    for name in written.netns:
        if netns.is_placeholder(name):  # announced by the journal, killed before the mount
            netns.path(name).unlink(missing_ok=True)
    names = [n for n in written.netns if _owned(n, written)]
    result.skipped = [n for n in written.netns if n not in names and netns.exists(n)]
    in_lab = netns.pids_in(names)
    result.killed = [pid for pids in in_lab.values() for pid in pids]
    survivors = procs.terminate(result.killed)
    for helper in written.helpers:
        if procs.alive(helper.pid, helper.start):
            survivors += procs.terminate([helper.pid])
            result.killed.append(helper.pid)
    for opened in written.trace_buffers:
        buffer = Path(opened.path)
        try:
            tracebuffers.remove(buffer)
            result.trace_buffers.append(buffer.name)
        except FileNotFoundError:
            continue
        except OSError as exc:
            # still held open by a live trace; `netlab clean` removes it once its owner (pid in the
            # name) is gone
            result.skipped.append(f"trace buffer {buffer.name} ({exc.strerror})")
    for name in reversed(names):
        if netns.remove(name):
            result.namespaces.append(name)
    if survivors:
        raise LabStateError(f"lab '{written.lab}': processes {survivors} survived SIGKILL; namespaces kept")
    return result


def down(lab: str, *, missing_ok: bool = False) -> Removal:
    """Tear lab ``lab`` down; raises :class:`LabStateError` if there is no such lab."""
    with journal.locked(lab) as held:
        written = journal.read(lab)
        if held is None or written is None:
            if missing_ok:
                return Removal(lab)
            raise journal.not_up(lab)
        result = remove(written)
        journal.sent_path(lab).unlink(missing_ok=True)
        with contextlib.suppress(FileNotFoundError):
            journal.journal_path(lab).unlink()
        return result


def clean(*, everything: bool = False) -> list[Removal]:
    """Remove labs whose builder or holder died (``everything``: all labs).

    Labs that are up and healthy, and labs being built right now, are left alone.
    """
    removed: list[Removal] = []
    for lab in journal.all_labs():
        written = journal.read(lab)
        if written is None:
            continue
        state = written.state
        if state == "building" or (state == "up" and not everything):
            continue
        try:
            removed.append(down(lab, missing_ok=True))
        except LabStateError:
            continue  # busy: someone else is tearing it down right now
    return removed
