"""What a trace runs over: a lab, or the whole machine.

A tracer needs four things of what it traces and nothing more: the network namespaces it
watches (its nodes, each a name and a way in), the interfaces they were planned with (the
kernel's path events name a device but not its namespace, so a drop is placed by decoding the
path against them), the other labs that are up (whose device names could be taken for ours),
and a place to record what a trace starts (a trace buffer, a helper process) so that ``down``
and ``clean`` end it if the tracing process dies. :class:`netlab.lab.Lab` and
:class:`netlab.host.Host` both are a :class:`Scope`; the tracers and the trace know only this
protocol, never which of the two they were given.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from netlab.runtime.journal import Entry

Iface = tuple[str, str]  # (node, ifname)


@dataclass(frozen=True)
class Layout:
    """A lab's interfaces as its plan made them: the names in each node (``lo`` included),
    the veth pairs, each bridge port's bridge and the ifindex the planner gave each interface."""

    name: str
    interfaces: Mapping[str, Sequence[str]] = field(default_factory=dict)
    peers: Sequence[tuple[Iface, Iface]] = ()
    bridge_of: Mapping[Iface, str] = field(default_factory=dict)
    ifindex: Mapping[Iface, int] = field(default_factory=dict)


class Place(Protocol):
    """One network namespace of a scope, and the two ways a tracer acts in it."""

    @property
    def name(self) -> str: ...

    @property
    def netns(self) -> str:
        """What :mod:`netlab.runtime.netns` enters it by: a name under /run/netns or a path."""
        ...

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = False,
        timeout: float = 30.0,
        input: str | None = None,
        sysfs: bool = True,
    ) -> subprocess.CompletedProcess[str]: ...

    def entered(self) -> AbstractContextManager[None]: ...


class Scope(Protocol):
    """A lab or the whole machine, as a trace sees it."""

    @property
    def name(self) -> str: ...

    @property
    def nodes(self) -> Mapping[str, Place]: ...

    @property
    def reads_firewall(self) -> bool:
        """May a trace read the nodes' firewall rules? Not on the whole machine: reading
        nf_tables can load it, and tracing the host changes nothing."""
        ...

    def layout(self) -> Layout | None:
        """The interfaces as planned; None where there was no plan (the host: only what is live)."""
        ...

    def neighbours(self) -> list[Layout]:
        """The other labs that are up, whose device names could be taken for this scope's."""
        ...

    def keep(self, entry: Entry) -> bool:
        """Record what a trace started (:class:`~netlab.runtime.journal.TracefsOpened`,
        :class:`~netlab.runtime.journal.HelperStarted`) so that ``down`` and ``clean`` end it;
        False where nothing records it (the host: its trace buffers are named by our PID for
        ``clean``, and its helpers die with us)."""
        ...
