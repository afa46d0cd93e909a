"""Which node and device of a lab a drop belongs to, when the kernel only says device *names*.

Path tracepoints (``net_dev_start_xmit``, ``netif_rx``, ``netif_receive_skb``) name the
device but not its namespace, and names repeat: every node of ``routed3`` has an ``eth0``,
and two instances of one topology share all their names. So a packet's sequence of (event,
device name) is *decoded* against the lab's link graph: consecutive hops must be in the same
node, or a transmit on one veth end followed by a receive on its peer. Usually exactly one
assignment of nodes fits; when several fit and disagree on where the packet died, the drop is
counted as ambiguous rather than guessed.

Between labs, a path that another lab that is up could explain equally well is only taken
when the process context says it is ours (the softirq ran in the tracing process, a process
it started, or a process inside the lab's namespaces); see :func:`claims`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from netlab.runtime import procs
from netlab.scope import Iface, Layout

XMIT_EVENTS = frozenset({"net_dev_start_xmit", "net_dev_queue", "net_dev_xmit"})
RX_EVENTS = frozenset({"netif_rx", "netif_receive_skb", "napi_gro_receive_entry", "netif_receive_skb_entry"})


@dataclass
class LabMap:
    """A lab's interfaces by name, its veth pairs and its bridges."""

    lab: str
    by_name: dict[str, list[Iface]] = field(default_factory=dict)
    peer: dict[Iface, Iface] = field(default_factory=dict)
    bridge_of: dict[Iface, str] = field(default_factory=dict)
    netns_inodes: dict[int, str] = field(default_factory=dict)
    #: the lab's interfaces by the ifindex the planner gave them (unique in the lab but for lo)
    by_ifindex: dict[int, Iface] = field(default_factory=dict)
    #: decode() results by path: a flood repeats a handful of paths hundreds of thousands of times
    memo: dict[tuple[tuple[str, str], ...], list[list[Iface]]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, plan: Layout, inodes: dict[int, str] | None = None) -> LabMap:
        """The map of a lab's planned interfaces (:meth:`netlab.scope.Scope.layout`)."""

        m = cls(plan.name, netns_inodes=dict(inodes or {}))
        m.by_ifindex = {i: end for end, i in plan.ifindex.items() if end[1] != "lo"}
        for a, b in plan.peers:
            m.peer[a], m.peer[b] = b, a
        for node_name, names in plan.interfaces.items():
            for ifname in names:
                m.by_name.setdefault(ifname, []).append((node_name, ifname))
        m.bridge_of.update(plan.bridge_of)
        return m

    def add_live(self, node: str, names: Sequence[str]) -> None:
        """Add interfaces a node has now that its topology did not plan: a scenario's own
        ``ip link add``, an ``exec:`` step's tunnel. They have no link in the map, so a path
        through them decodes only while it stays inside the node; that is enough to place a
        drop on the device that last had the packet."""
        self.memo.clear()
        for name in names:
            ends = self.by_name.setdefault(name, [])
            if (node, name) not in ends:
                ends.append((node, name))

    def knows(self, name: str) -> bool:
        """True when some node of the lab has an interface called ``name``."""
        return name in self.by_name


def _step_ok(m: LabMap, a: Iface, ev_a: str, b: Iface, ev_b: str) -> bool:
    """A frame transmitted on a veth end is next received on its peer; any other step stays
    inside one node (bridge forwarding, routing, local delivery)."""
    if ev_a in XMIT_EVENTS and ev_b in RX_EVENTS and a in m.peer:
        return m.peer[a] == b
    return a[0] == b[0]


MEMO_LIMIT = 50_000


def decode(m: LabMap, hops: Sequence[tuple[str, str]]) -> list[list[Iface]]:
    """Every assignment of (node, ifname) to ``hops`` [(event, device name)] the lab allows.

    Returns at most a handful of assignments (the search stops at 8): more means the path
    says little about where it was. The result is shared between calls: do not modify it.
    """
    key = tuple(hops)
    found = m.memo.get(key)
    if found is None:
        if len(m.memo) >= MEMO_LIMIT:
            m.memo.clear()
        found = m.memo[key] = _decode(m, key)
    return found


def _decode(m: LabMap, hops: tuple[tuple[str, str], ...]) -> list[list[Iface]]:
    paths: list[list[Iface]] = [[c] for c in m.by_name.get(hops[0][1], [])] if hops else []
    for i in range(1, len(hops)):
        ev_prev, ev = hops[i - 1][0], hops[i][0]
        nxt = []
        for path in paths:
            for cand in m.by_name.get(hops[i][1], []):
                if _step_ok(m, path[-1], ev_prev, cand, ev):
                    nxt.append([*path, cand])
                    if len(nxt) >= 8:
                        break
        paths = nxt
        if not paths:
            break
    return paths


def last_hop(m: LabMap, hops: Sequence[tuple[str, str]]) -> Iface | str | None:
    """Where the packet was last seen: an Iface, None if the lab cannot explain the path,
    or ``"ambiguous"`` when explanations disagree."""
    if not hops:
        return None
    found = decode(m, hops)
    if len(found) == 1:
        return found[0][-1]
    ends = {p[-1] for p in found}
    if not ends:
        return None
    if len(ends) > 1:
        return "ambiguous"
    return ends.pop()


def pid_netns(pid: int) -> int | None:
    """The network-namespace inode of ``pid`` (None if it is gone)."""
    identity = procs.netns_identity(pid)
    return identity[1] if identity else None


def _tgid(pid: int) -> int:
    """The process a thread id belongs to (tracepoints report thread ids)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return pid


def _ancestors(pid: int) -> set[int]:
    pid = _tgid(pid)
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        up = procs.parent(pid)
        if up is None:
            break
        pid = up
    return seen


def context_of(pid: int, me: int | None = None) -> tuple[int | None, bool]:
    """(network-namespace inode, descends from process ``me``) of ``pid``, now."""
    if pid <= 0:
        return None, False
    return pid_netns(pid), (me or os.getpid()) in _ancestors(pid)


class ContextCache:
    """Process contexts looked up once per pid while a trace is being read."""

    def __init__(self) -> None:
        self._me = os.getpid()
        self._seen: dict[int, tuple[int | None, bool]] = {}

    def get(self, pid: int) -> tuple[int | None, bool]:
        """The context of ``pid`` (cached: pids are not reused within one short trace)."""
        if pid not in self._seen:
            self._seen[pid] = context_of(pid, self._me)
        return self._seen[pid]


def claims(m: LabMap, context: tuple[int | None, bool] | None) -> bool:
    """Does the process context of an event say it is this lab's?

    True when the event ran in the tracing process (or a descendant of it) or in a process
    whose network namespace is one of the lab's.
    """
    if context is None:
        return False
    inode, mine = context
    return mine or (inode is not None and inode in m.netns_inodes)
