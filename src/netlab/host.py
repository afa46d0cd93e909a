"""The whole machine as the tracers' scope: ``netlab trace --host``.

The cases netlab comes from start on a real machine: after a kernel upgrade ``rx_dropped``
grows on an interface, and nobody knows which frames, where or why. Here every network
namespace is a node: the one netlab runs in (``host``), each one named under ``/run/netns``
(a lab's are ``<lab>.<node>``), and each other one a process holds (a container's, named
``comm[pid]``). Their interfaces, veth peers and drop counters come from one link dump each
(:mod:`netlab.tracers.placement.maps`); the tracers place drops on them as on a lab's nodes.

Nothing on the machine changes: no module is loaded (only tracefs, perf and bpftrace, whose
probes load none, may trace it; firewall rules are not read, since reading nf_tables can load
it), no sysctl or rule is touched, nothing is journaled, and the trace buffer is the tracers'
private one, removed on exit and by ``netlab clean`` after a crash (its name holds our PID).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from netlab.errors import NetlabError
from netlab.namespace import Namespace
from netlab.runtime.journal import Entry
from netlab.runtime.netns import NETNS_DIR
from netlab.scope import Layout
from netlab.tracers.placement import maps

ROOT = "host"
#: the namespace this process runs in, as a path the namespace helpers accept (see netns.path)
OWN = "/proc/self/ns/net"
#: the tracers that can trace the machine without changing it
TRACERS = ("tracefs", "perf", "bpftrace")


@dataclass(frozen=True)
class DropCount:
    """How much one interface's kernel drop counters moved during the trace."""

    node: str
    ifname: str
    rx_dropped: int
    tx_dropped: int


def namespaces() -> dict[str, str]:
    """Every network namespace of the machine: display name -> a path to enter it by."""
    found = {ROOT: OWN}
    seen = {_inode(OWN)}
    if NETNS_DIR.is_dir():
        for entry in sorted(NETNS_DIR.iterdir()):
            inode = _inode(str(entry))
            if inode is not None and inode not in seen:
                seen.add(inode)
                found[entry.name] = str(entry)
    for proc in sorted(Path("/proc").iterdir(), key=lambda p: (len(p.name), p.name)):
        if not proc.name.isdigit():
            continue
        inode = _inode(str(proc / "ns" / "net"))
        if inode is None or inode in seen:
            continue
        seen.add(inode)
        with contextlib.suppress(OSError):
            comm = (proc / "comm").read_text().strip()
            found[f"{comm}[{proc.name}]"] = str(proc / "ns" / "net")
    return found


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


class Host:
    """The machine as a trace's scope (:class:`netlab.scope.Scope`): its network namespaces are
    the nodes (``only``: just that one). It owns nothing, plans nothing and records nothing."""

    name = ROOT
    reads_firewall = False

    def __init__(self, only: str | None = None) -> None:
        found = namespaces()
        if only is not None:
            if only not in found:
                raise NetlabError(f"no network namespace '{only}' (there are: {', '.join(found)})")
            found = {only: found[only]}
        self.nodes = {name: Namespace(name, path) for name, path in found.items()}
        self.before = self.drop_counters()

    def __repr__(self) -> str:
        return f"<Host: {', '.join(self.nodes)}>"

    def layout(self) -> None:
        """No plan: every interface is mapped from what is live."""
        return

    def neighbours(self) -> list[Layout]:
        """None: every namespace is the host's, so there is no other lab to confuse."""
        return []

    def keep(self, entry: Entry) -> bool:
        """Nothing to journal in: a trace buffer's name holds our PID, for ``clean``."""
        return False

    def drop_counters(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Every interface's (rx_dropped, tx_dropped) now."""
        return {
            (node, i.ifname): (i.rx_dropped, i.tx_dropped) for node, found in maps.dumps(self).items() for i in found
        }

    def counter_deltas(self) -> list[DropCount]:
        """The interfaces whose drop counters moved since the start, most first."""
        now = self.drop_counters()
        moved = []
        for key, (rx, tx) in now.items():
            rx0, tx0 = self.before.get(key, (rx, tx))
            if rx != rx0 or tx != tx0:
                moved.append(DropCount(key[0], key[1], rx - rx0, tx - tx0))
        return sorted(moved, key=lambda c: -(c.rx_dropped + c.tx_dropped))
