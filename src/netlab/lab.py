"""The live lab: the one handle traffic, tracers, tests and the CLI work with.

A :class:`Lab` is made only by :func:`up` (which builds it: :mod:`netlab.bringup`) or
:func:`attach` (which reads the journal of a lab that is up). It knows its nodes, their
namespaces and its validated topology, never the YAML file. ``with netlab.up("bridge3") as lab:`` tears the
lab down when the block ends, also on an exception; the journal names the holding process, so
if that process is killed the lab shows as ``crashed`` and ``netlab clean`` removes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from netlab import bringup, teardown
from netlab.errors import LabStateError
from netlab.model.topology import Topology
from netlab.namespace import Namespace
from netlab.plan import planner
from netlab.runtime import journal
from netlab.scope import Layout


class Node(Namespace):
    """One node of a live lab: its namespace, and what its topology says of it."""

    def __init__(self, lab: Lab, name: str, netns_name: str) -> None:
        super().__init__(name, netns_name)
        self.lab = lab

    def __repr__(self) -> str:
        return f"<Node {self.lab.name}/{self.name} netns={self.netns}>"

    def addresses(self, ifname: str | None = None, version: int | None = None) -> list[str]:
        """Configured addresses (without prefix length) from the topology, in file order."""
        node = self.lab.topology.nodes[self.name]
        return [
            str(a.ip)
            for name, iface in node.interfaces.items()
            if ifname in (None, name) and name != "lo"
            for a in iface.addresses
            if version in (None, a.version)
        ]


class Lab:
    """A lab that is up."""

    def __init__(
        self,
        name: str,
        topology: Topology,
        netns_names: Mapping[str, str],
        *,
        owned: bool,
        modules_loaded: Sequence[str] = (),
    ) -> None:
        self.name = name
        #: the topology the lab was built from (validated: from the file, or from the journal's data)
        self.topology = topology
        self.nodes = {n: Node(self, n, ns) for n, ns in netns_names.items()}
        self._owned = owned
        self._down = False
        #: what ``up`` loaded into the kernel for this lab (announced; see netlab.apply.modules)
        self.modules_loaded = list(modules_loaded)

    def __repr__(self) -> str:
        return f"<Lab {self.name}: {', '.join(self.nodes)}>"

    def node(self, name: str) -> Node:
        """The node called ``name``; the error lists the lab's nodes."""
        try:
            return self.nodes[name]
        except KeyError:
            raise LabStateError(f"lab '{self.name}' has no node '{name}' (nodes: {', '.join(self.nodes)})") from None

    @property
    def description(self) -> str:
        """The topology's description."""
        return self.topology.description

    # the lab as a trace's scope (netlab.scope.Scope)
    reads_firewall = True

    def layout(self) -> Layout:
        """The lab's interfaces as planned."""
        return planner.layout(self.name, self.topology)

    def neighbours(self) -> list[Layout]:
        """The other labs that are up, as their journals tell."""
        found = []
        for name in journal.all_labs():
            record = journal.read(name) if name != self.name else None
            if record is None or "topology" not in record.header:
                continue
            with contextlib.suppress(ValueError):  # a journal of another netlab version
                found.append(planner.layout(name, Topology.model_validate(record.header["topology"], strict=False)))
        return found

    def keep(self, entry: journal.Entry) -> bool:
        """Journal what a trace started in the lab, so that ``down``/``clean`` end it."""
        journal.append(self.name, entry)
        return True

    def down(self) -> teardown.Removal:
        """Tear the lab down (idempotent)."""
        if self._down:
            return teardown.Removal(self.name)
        self._down = True
        return teardown.down(self.name, missing_ok=True)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._owned:
            self.down()

    def release(self) -> None:
        """Stop holding the lab: it stays up after this process ends (``--netlab-keep``)."""
        self._owned = False
        journal.append(self.name, journal.Released())


def up(
    topology: str | Path | Topology,
    *,
    instance: str | None = None,
    timeout: float = bringup.DEFAULT_TIMEOUT,
    hold: bool = True,
    progress: bringup.Progress | None = None,
) -> Lab:
    """Build a lab from a topology (name, path or model) and return its handle once it is usable
    (:func:`netlab.bringup.build`: on any failure, Ctrl-C and SIGTERM included, everything made
    so far is removed before the error goes on).

    ``hold=True`` (the default) ties the lab to this process: the ``with`` block tears it down,
    and if the process dies the lab is ``crashed`` for ``netlab clean``.
    """
    built = bringup.build(topology, instance=instance, timeout=timeout, hold=hold, progress=progress)
    model = built.topology or Topology.model_validate(built.entry.topology, strict=False)
    return Lab(built.name, model, built.entry.plan.netns, owned=hold, modules_loaded=built.modules_loaded)


def attach(name: str) -> Lab:
    """A handle on lab ``name``, which must be up; it is not torn down when dropped."""
    written = journal.read(name)
    if written is None:
        raise journal.not_up(name)
    if written.state != "up":
        raise LabStateError(f"lab '{name}' is {written.state}", hint=f"netlab down {name} removes it")
    model = Topology.model_validate(written.header["topology"], strict=False)
    return Lab(
        name, model, written.header["netns"], owned=False, modules_loaded=written.header.get("modules_loaded", ())
    )
