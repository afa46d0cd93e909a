"""The whole machine as the tracers' scope: ``netlab trace --host``.

The cases netlab comes from start on a real machine: after a kernel upgrade ``rx_dropped``
grows on an interface, and nobody knows which frames, where or why. Here every network
namespace is a node: the one netlab runs in (``host``), each one named under ``/run/netns``
(a lab's are ``<lab>.<node>``), and each other one a process holds (a container's, named
``comm[pid]``). Their interfaces, veth peers (IFLA_LINK, and the peer namespace's id, which
RTM_GETNSID only reads, never assigns) and drop counters come from one link dump each; the
tracers place drops on them as on a lab's nodes.

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
from netlab.lab import Lab
from netlab.model.topology import Topology
from netlab.runtime import netlink
from netlab.runtime.netns import NETNS_DIR
from netlab.tracers.placement.attribution import LabMap

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


class Host(Lab):
    """The machine as a lab whose nodes are its network namespaces (``only``: just that one).
    It owns nothing: leaving it, or ``down``, changes nothing."""

    def __init__(self, only: str | None = None) -> None:
        found = namespaces()
        if only is not None:
            if only not in found:
                raise NetlabError(f"no network namespace '{only}' (there are: {', '.join(found)})")
            found = {only: found[only]}
        super().__init__(ROOT, Topology.model_construct(name=ROOT, nodes={}, links=[]), found, owned=False)
        self.journal_name = None
        self.before = self.drop_counters()

    def down(self) -> None:  # type: ignore[override]
        """Nothing to take down: the machine is not ours."""

    def _dumps(self) -> dict[str, list[netlink.Interface]]:
        out = {}
        for name, node in self.nodes.items():
            with (
                contextlib.suppress(OSError, NetlabError),
                contextlib.closing(netlink.open_route_socket(node.netns)) as sock,
            ):
                out[name] = netlink.dump_interfaces(sock)
        return out

    def drop_counters(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Every interface's (rx_dropped, tx_dropped) now."""
        return {(node, i.ifname): (i.rx_dropped, i.tx_dropped) for node, found in self._dumps().items() for i in found}

    def counter_deltas(self) -> list[DropCount]:
        """The interfaces whose drop counters moved since the start, most first."""
        now = self.drop_counters()
        moved = []
        for key, (rx, tx) in now.items():
            rx0, tx0 = self.before.get(key, (rx, tx))
            if rx != rx0 or tx != tx0:
                moved.append(DropCount(key[0], key[1], rx - rx0, tx - tx0))
        return sorted(moved, key=lambda c: -(c.rx_dropped + c.tx_dropped))

    def map(self) -> LabMap:
        """The namespaces' interfaces by name, their veth peers and inodes, for placement."""
        dumps = self._dumps()
        m = LabMap(ROOT)
        names = {node: {i.index: i.ifname for i in found} for node, found in dumps.items()}
        for node, found in dumps.items():
            inode = _inode(self.nodes[node].netns)
            if inode is not None:
                m.netns_inodes[inode] = node
            m.add_live(node, [i.ifname for i in found])
            ids = self._peer_namespaces(node)
            for i in found:
                if i.link is None:
                    continue
                if i.link_netnsid is not None:
                    other = ids.get(i.link_netnsid)
                    peer = names.get(other, {}).get(i.link) if other else None
                    if other and peer:
                        m.peer[(node, i.ifname)] = (other, peer)
                elif (mate := next((j for j in found if j.index == i.link), None)) and mate.link == i.index:
                    m.peer[(node, i.ifname)] = (node, mate.ifname)  # a veth pair inside one namespace
        return m

    def _peer_namespaces(self, node: str) -> dict[int, str]:
        """The ids ``node``'s namespace has given the others (how its veths name their peers')."""
        out: dict[int, str] = {}
        with (
            contextlib.suppress(OSError, NetlabError),
            contextlib.closing(netlink.open_route_socket(self.nodes[node].netns)) as sock,
        ):
            for other, handle in self.nodes.items():
                if other == node:
                    continue
                try:
                    fd = os.open(handle.netns, os.O_RDONLY)
                except OSError:
                    continue
                try:
                    nsid = netlink.nsid_of(sock, fd)
                finally:
                    os.close(fd)
                if nsid is not None:
                    out[nsid] = other
        return out
