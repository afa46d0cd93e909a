"""Which firewall rule dropped a packet: a node's rule counters before and after a trace.

``skb:kfree_skb`` says NETFILTER_DROP in ``nf_hook_slow`` for every rule and every policy of
every table; the rule itself is nowhere in the event. What does know is the rule's own packet
counter. So a session notes each node's iptables and ip6tables counters when it starts (over
netlink: :func:`netlab.tracers.kernel.firewall.counted`), and when it stops it gives each
netfilter drop of a node the rule or chain policy whose counter moved, where the counters can
tell:

* exactly one DROP/REJECT rule or DROP policy of the node moved: every netfilter drop of the
  node is that one's;
* several moved: a drop whose stack (``--stack``) shows the hook it died in (``ip_forward``:
  FORWARD, ``ip_local_deliver``: INPUT, ...) gets the one candidate of that chain; the others
  stay unnamed and the result's notes list the candidates with their counts;
* none moved (an nftables rule without a ``counter``, ebtables): the notes say so.

The counters also say *where*: a drop without a device path is placed by the process it ran
in, which is wrong for a bridge's flooded copies (they die in the sender's softirq), and a
timer's drop has no process at all. Such netfilter drops go to the one node whose rules
counted exactly as many more drops as are left over (:func:`place_left_over`).

The counters are the fallback: a node with nftables tables (iptables-nft's included) has each
drop paired with the kernel's own rule trace first (:mod:`netlab.tracing.nftrace`), which
names nftables rules exactly, counter or not; what it leaves unnamed (iptables-nft's tables,
whose rules iptables-save prints as users wrote them, or a trace that lost messages) comes here.
Drops of a kernel without reasons (before 5.17) count as netfilter drops when they happened in
``nf_hook_slow``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from netlab.findings.draft import Draft
from netlab.scope import Scope
from netlab.tracers.events import DropEvent
from netlab.tracers.kernel.firewall import Position, Rule, counted, read
from netlab.tracing.collector import Collector

#: the function in a drop's stack that says which hook it died in, by the chain it runs
HOOK_CALLERS: dict[str, str] = {
    "ip_rcv": "PREROUTING",
    "ipv6_rcv": "PREROUTING",
    "ip_forward": "FORWARD",
    "ip6_forward": "FORWARD",
    "ip_local_deliver": "INPUT",
    "ip6_input": "INPUT",
    "__ip_local_out": "OUTPUT",
    "__ip6_local_out": "OUTPUT",
    "ip_output": "POSTROUTING",
    "ip6_output": "POSTROUTING",
}


def is_netfilter_drop(drop: DropEvent) -> bool:
    """A drop a netfilter verdict made (by its reason, or where the kernel has none, its place)."""
    if drop.reason is not None:
        return drop.reason == "NETFILTER_DROP"
    return drop.base in ("nf_hook_slow", "nft_do_chain")


def hook_of(drop: DropEvent) -> str | None:
    """The chain a netfilter drop's stack says it died in (None without a telling stack)."""
    for frame in drop.stack:
        chain = HOOK_CALLERS.get(frame.split("+", 1)[0])
        if chain is not None:
            return chain
    return None


def moved(before: Mapping[Position, int], after: Iterable[Rule]) -> list[tuple[Rule, int]]:
    """The dropping rules and policies whose counters moved, with how much."""
    return [
        (r, r.packets - before.get(r.position, 0)) for r in after if r.drops and r.packets > before.get(r.position, 0)
    ]


class RuleWatch(Collector):
    """Rule counters of a scope's nodes at the start of a trace; :meth:`add` reads them again,
    only when there are netfilter drops to name."""

    name = "rule counters"

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.before: dict[str, dict[Position, int]] = {}

    def start(self) -> None:
        self.before = {name: counted(node) for name, node in self.scope.nodes.items()}

    def stop(self) -> None:
        """Nothing runs between start and add: the counters are the kernel's."""

    def add(self, draft: Draft) -> None:
        """Place and name the netfilter drops of the draft where the counters can tell."""
        loose = [d for d in draft.unplaced if is_netfilter_drop(d)]
        if not loose and not any(self._ours(d) for d in draft.drops):
            return
        candidates = {name: moved(before, self._after(name, before)) for name, before in self.before.items()}
        self._place(draft, loose, candidates)
        by_node: dict[str, list[int]] = {}
        for i, drop in enumerate(draft.drops):
            if self._ours(drop):
                by_node.setdefault(str(drop.node), []).append(i)
        for node, indexes in by_node.items():
            self._name(draft, node, indexes, candidates[node])

    def _after(self, name: str, before: dict[Position, int]) -> list[Rule]:
        """The node's rules now, with their text: only where a counter moved (the text costs a
        program run)."""
        node = self.scope.nodes[name]
        return read(node) if counted(node) != before else []

    def _ours(self, drop: DropEvent) -> bool:
        return drop.node in self.before and drop.rule is None and is_netfilter_drop(drop)

    def _place(self, result: Draft, loose: list[DropEvent], candidates: dict[str, list[tuple[Rule, int]]]) -> None:
        """Move netfilter drops that no device path placed to the node whose counters account
        for exactly them (see :func:`place_left_over`)."""
        spare = {node: sum(n for _rule, n in found) for node, found in candidates.items()}
        moving = place_left_over(result, spare, self._ours, loose, evidence="its rules counted")
        if moving:
            places = sorted({str(result.drops[i].node) for i in moving})
            result.notes.append(
                f"{len(moving)} netfilter drops placed in {', '.join(places)} by the process they ran in"
                " only, where no rule counted them: they may have died in another node"
            )

    @staticmethod
    def _name(result: Draft, node: str, indexes: list[int], candidates: list[tuple[Rule, int]]) -> None:
        if not candidates:
            result.notes.append(
                f"node {node}: {len(indexes)} netfilter drops, but no iptables rule or policy counted them"
                " (an nftables rule without a counter, or ebtables?)"
            )
            return
        unnamed = 0
        for i in indexes:
            drop = result.drops[i]
            fits = candidates
            if len(candidates) > 1:
                hook = hook_of(drop)
                fits = [c for c in candidates if hook is not None and c[0].chain == hook]
            if len(fits) == 1:
                result.drops[i] = drop.evolve(rule=str(fits[0][0]))
            else:
                unnamed += 1
        if unnamed:
            listed = "; ".join(f"{rule} (+{count})" for rule, count in candidates)
            result.notes.append(
                f"node {node}: {unnamed} netfilter drops could be any of: {listed} (--stack tells the hooks apart)"
            )


def place_left_over(
    result: Draft,
    spare: dict[str, int],
    ours: Callable[[DropEvent], bool],
    loose: list[DropEvent],
    *,
    evidence: str,
    device_of: Callable[[str, int], str | None] = lambda _node, _count: None,
) -> list[int]:
    """Move the netfilter drops (``ours``) that no device path placed to the one node whose
    firewall accounts for exactly them: ``spare`` is each node's count of drops by its rules
    (counters, or traced verdicts), from which the drops already placed there are taken.

    A drop without a path is placed by the process it ran in, and a bridge forwards (and its
    FORWARD chain drops) a flooded copy in the *sender's* context, in another node. So such a
    drop stays only where its node's rules account for a drop; the rest, with the drops no node
    claimed (``loose``, from ``result.unplaced``), go to the one node with exactly that many
    more, on ``device_of(node, count)``. Returns the indexes of the drops that had to move but
    found no such node (they stay where they are)."""
    spare = dict(spare)
    moving = []
    for drop in result.drops:
        if ours(drop) and drop.device is not None and drop.node in spare:
            spare[str(drop.node)] -= 1
    for i, drop in enumerate(result.drops):
        if ours(drop) and drop.device is None:
            if spare.get(str(drop.node), 0) > 0:
                spare[str(drop.node)] -= 1
            else:
                moving.append(i)
    count = len(moving) + len(loose)
    targets = [node for node, n in spare.items() if n > 0]
    if not count or len(targets) != 1 or spare[targets[0]] != count:
        return moving
    target = targets[0]
    device = device_of(target, count)
    for i in moving:
        result.drops[i] = result.drops[i].evolve(node=target, device=device)
    for drop in loose:
        result.unplaced.remove(drop)
        result.drops.append(drop.evolve(node=target, device=device))
    result.unattributed -= len(loose)
    result.notes.append(
        f"{count} netfilter drops without a device path placed in node {target}: {evidence} exactly that"
        " many more drops than were seen there (a bridge's flooded copies die in the sender's context)"
    )
    return []
