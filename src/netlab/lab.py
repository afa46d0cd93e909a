"""The live lab: the one handle traffic, tracers, tests and the CLI work with.

A :class:`Lab` is made only by :func:`up` (which builds it: :mod:`netlab.bringup`) or
:func:`attach` (which reads the journal of a lab that is up). It knows its nodes, their
namespaces and its validated topology, never the YAML file. ``with netlab.up("bridge3") as lab:`` tears the
lab down when the block ends, also on an exception; the journal names the holding process, so
if that process is killed the lab shows as ``crashed`` and ``netlab clean`` removes it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from netlab import bringup, teardown
from netlab.apply.sysctl import read as read_sysctl
from netlab.errors import LabStateError
from netlab.model.topology import Topology
from netlab.runtime import journal, netns
from netlab.status import LiveInterface, live_interfaces


class Node:
    """One node of a live lab: a network namespace and ways to act inside it."""

    def __init__(self, lab: Lab, name: str, netns_name: str) -> None:
        self.lab = lab
        self.name = name
        self.netns = netns_name

    def __repr__(self) -> str:
        return f"<Node {self.lab.name}/{self.name} netns={self.netns}>"

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = False,
        timeout: float = 30.0,
        input: str | None = None,
        sysfs: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the node and wait; output is captured as text."""
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            check=check,
            preexec_fn=netns.preexec(self.netns, sysfs=sysfs),
        )

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the node; ``down`` kills it if it is still running."""
        return subprocess.Popen(list(argv), preexec_fn=netns.preexec(self.netns), **kwargs)  # noqa: PLW1509

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the body with this thread inside the node's namespace (sockets, /proc/sys/net)."""
        with netns.entered(self.netns):
            yield

    def socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A socket living in the node's namespace."""
        return netns.open_socket(self.netns, family, kind, proto)

    def sysctl(self, key: str) -> str:
        """Read a net.* sysctl as the node sees it."""
        return read_sysctl(self.netns, key)

    def interfaces(self) -> list[LiveInterface]:
        """The node's interfaces as the kernel has them now."""
        return live_interfaces(self.netns)

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
        #: the journal that records what a trace starts in the lab (buffers, helper processes),
        #: so that ``down``/``clean`` end them; None for a scope that has none (the whole host)
        self.journal_name: str | None = name
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
