"""The live lab: the one handle traffic, tracers, tests and the CLI work with.

A :class:`Lab` is made only by :func:`up` (which builds it) or :func:`attach` (which reads the
journal of a lab that is up). It knows its nodes, their namespaces and the topology *as data*
(taken from the journal), never the YAML file. ``with netlab.up("bridge3") as lab:`` tears the
lab down when the block ends, also on an exception; the journal names the holding process, so
if that process is killed the lab shows as ``crashed`` and ``netlab clean`` removes it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from netlab import teardown
from netlab.errors import Issue, LabStateError, NetlabError, Position, TopologyError
from netlab.model.names import lab_name, label_problem
from netlab.runtime import journal, netns, procs

if TYPE_CHECKING:  # the models need pydantic: imported only where a topology is validated
    import subprocess

    from netlab.model.topology import Topology
    from netlab.model.yamlsrc import Source
    from netlab.plan.cache import Entry
    from netlab.plan.steps import Plan

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class LiveAddress:
    """An address seen on a live interface."""

    ifname: str
    address: str
    prefixlen: int

    def __str__(self) -> str:
        return f"{self.address}/{self.prefixlen}"


@dataclass(frozen=True)
class LiveInterface:
    """A live interface of a node."""

    index: int
    name: str
    up: bool
    carrier: bool
    operstate: str
    addresses: tuple[LiveAddress, ...]


def live_interfaces(netns_name: str) -> list[LiveInterface]:
    """The interfaces of a namespace as the kernel has them now (one link and one address dump)."""
    from netlab.runtime import netlink

    with contextlib.closing(netlink.open_route_socket(netns_name)) as sock:
        links = netlink.dump_links(sock)
        addrs = netlink.dump_addresses(sock)
    out = []
    for index, link in sorted(links.items()):
        mine = tuple(LiveAddress(link.ifname, a, p) for i, a, p in addrs if i == index)
        out.append(LiveInterface(index, link.ifname, link.up, link.carrier, link.operstate, mine))
    return out


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
        import subprocess  # here: `up` and `down` start no process

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
        import subprocess

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
        from netlab.apply.sysctl import read

        return read(self.netns, key)

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
        topology: Topology | Mapping[str, Any],
        netns_names: Mapping[str, str],
        *,
        owned: bool,
        interfaces: Mapping[str, list[tuple[str, list[str]]]] | None = None,
    ) -> None:
        self.name = name
        self._topology = topology
        self._interfaces = interfaces
        self.nodes = {n: Node(self, n, ns) for n, ns in netns_names.items()}
        self._owned = owned
        self._down = False
        #: what ``up`` loaded into the kernel for this lab (announced; see netlab.apply.modules)
        self.modules_loaded: list[str] = []

    def __repr__(self) -> str:
        return f"<Lab {self.name}: {', '.join(self.nodes)}>"

    def node(self, name: str) -> Node:
        """The node called ``name``; the error lists the lab's nodes."""
        try:
            return self.nodes[name]
        except KeyError:
            raise LabStateError(f"lab '{self.name}' has no node '{name}' (nodes: {', '.join(self.nodes)})") from None

    @property
    def topology(self) -> Topology:
        """The topology the lab was built from, validated on first use when ``up`` took it from
        the plan cache (as data, like :func:`attach`)."""
        from netlab.model.topology import Topology

        if not isinstance(self._topology, Topology):
            self._topology = Topology.model_validate(self._topology, strict=False)
        return self._topology

    @property
    def description(self) -> str:
        """The topology's description (without validating a topology kept as data)."""
        if isinstance(self._topology, Mapping):
            return str(self._topology.get("description", ""))
        return self._topology.description

    def summary(self) -> dict[str, Any]:
        """The lab as built (from its topology, which ``up`` verified), ready for JSON.

        Cheaper than :func:`status`, which asks the kernel: used right after ``up``.
        """
        shown = self._interfaces if self._interfaces is not None else self.topology.addressed()
        nodes = [
            {
                "node": name,
                "netns": node.netns,
                "interfaces": [{"name": ifname, "addresses": addrs} for ifname, addrs in shown[name]],
            }
            for name, node in self.nodes.items()
        ]
        return {"lab": self.name, "state": "up", "nodes": nodes}

    def record(self, entry: journal.Entry) -> None:
        """Journal a root-level object a tool made for this lab (tracefs instance, helper pid),
        so ``down``/``clean`` remove it even if the tool's process dies."""
        with contextlib.closing(_append_handle(self.name)) as j:
            j.append(entry)

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
        with contextlib.closing(_append_handle(self.name)) as j:
            j.append(journal.Released())


def _append_handle(lab: str) -> journal.Journal:
    import os

    try:
        fd = os.open(journal.journal_path(lab), os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        raise LabStateError(f"lab '{lab}' is not up") from None
    return journal.Journal(lab, fd)


def _load(topology: str | Path | Topology) -> tuple[Topology, Source | None]:
    if not isinstance(topology, str | Path):
        return topology, None
    from netlab.model.loader import load

    return load(topology if isinstance(topology, Path) else str(topology))


def _prepared(topology: str | Path | Topology, instance: str | None) -> tuple[Entry, Topology | None, Path | None]:
    """What ``up`` builds from: the cached entry of a file built before (no YAML, no pydantic),
    else the file loaded, validated and planned. The topology model is None on a cache hit."""
    from netlab.plan import cache

    file = None
    if isinstance(topology, str | Path):
        from netlab.model.files import resolve

        file = topology if isinstance(topology, Path) else resolve(topology)
        entry = cache.get(file, instance)
        if entry is not None:
            return entry, None, file
    topo, _source, name, the_plan = planned(file or topology, instance)
    entry = cache.Entry(name, topo.description, topo.model_dump(mode="json"), the_plan, topo.addressed())
    return entry, topo, file


def planned(topology: str | Path | Topology, instance: str | None = None) -> tuple[Topology, Source | None, str, Plan]:
    """Load, check the instance name and plan: all that ``up`` decides before touching the
    kernel, and all ``up --dry-run`` does, so the two accept and refuse exactly the same."""
    from netlab.plan.planner import plan as make_plan

    topo, source = _load(topology)
    if instance is not None:
        problem = label_problem("instance", instance)
        if problem:
            raise TopologyError([Issue(None, problem)])
    name = lab_name(topo.name, instance)
    return topo, source, name, make_plan(topo, name)


def _inside(value: Position, line: int, column: int | None) -> Position:
    """Where line ``line`` (column ``column``) of a multi-line YAML value is in its file: a block
    scalar (``|``) starts on the line after its indicator, at that line's indentation."""
    try:
        text = Path(value.file).read_text().splitlines()
    except OSError:
        return value
    block = value.line <= len(text) and text[value.line - 1][value.column - 1 : value.column] in ("|", ">")
    at = value.line + line if block else value.line
    if not 1 <= at <= len(text):
        return value
    first = text[value.line] if block and value.line < len(text) else ""
    indent = len(first) - len(first.lstrip()) if block else value.column - 1  # the block's, not the line's
    return Position(value.file, at, indent + (column or 1))


def _locate(exc: NetlabError, source: Source | None) -> NetlabError:
    """Add file:line to a step error whose step came from a known line of the topology."""
    origin = getattr(exc, "origin", None)
    if source is None or not origin:
        return exc
    within = getattr(exc, "within", None)
    pos = source.at(tuple(origin), key=within is None)
    if pos is None:
        return exc
    if within is not None:
        pos = _inside(pos, *within)
    exc.message = f"{pos}: {exc.message}"
    exc.args = (exc.message,)
    return exc


class _SigtermError(BaseException):
    """SIGTERM during ``up``: unwinds like Ctrl-C so the rollback runs."""


Progress = Callable[[str], None]


def up(
    topology: str | Path | Topology,
    *,
    instance: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    hold: bool = True,
    progress: Progress | None = None,
) -> Lab:
    """Build a lab from a topology (name, path or model) and return it once it is usable.

    ``hold=True`` (the API default) ties the lab to this process: the ``with`` block tears it
    down, and if the process dies the lab is ``crashed`` for ``netlab clean``. The CLI uses
    ``hold=False``: the lab outlives ``netlab up``.

    On any failure, including Ctrl-C and SIGTERM, everything created so far is removed before
    the error propagates.
    """
    from netlab.apply import ready
    from netlab.apply.runner import Runner

    entry, topo, file = _prepared(topology, instance)
    name, the_plan = entry.name, entry.plan
    netns.require_root()
    from netlab.apply import modules

    loaded = modules.ensure(the_plan.modules)
    for item in loaded:
        if progress:
            progress(str(item))
    started = time.monotonic()
    header: dict[str, Any] = {
        "source": str(file) if file else None,
        "netns": the_plan.netns,
        "topology": entry.topology,
        "modules_loaded": [str(item) for item in loaded],
    }
    if hold:
        pid, start = procs.me()
        header["holder"] = {"pid": pid, "start": start}
    record = journal.Journal.create(name, header)
    try:
        with procs.sigterm_raises(_SigtermError):
            try:
                runner = Runner(
                    the_plan, record, (lambda ph, d, t: progress(f"{ph.name.lower()} {d}/{t}")) if progress else None
                )
                try:
                    runner.run()
                    if progress:
                        progress("waiting for carrier")
                    sockets = {n: runner.socket(n) for n in the_plan.netns}  # the build's, still open
                    ready.wait_usable(the_plan, sockets, timeout)
                finally:
                    runner.close()
                record.append(journal.Ready(round(time.monotonic() - started, 4)))
            except BaseException as exc:
                teardown.remove(journal.read(name) or journal.LabRecord(name, header))
                with contextlib.suppress(FileNotFoundError):
                    journal.journal_path(name).unlink()
                if isinstance(exc, NetlabError):
                    raise _locate(exc, _source_of(file)) from None
                if isinstance(exc, _SigtermError):
                    raise KeyboardInterrupt from None
                raise
    finally:
        record.close()
    if file is not None and topo is not None:  # built from a fresh plan: keep it for next time
        from netlab.plan import cache

        cache.put(file, instance, entry)
    lab = Lab(name, topo or entry.topology, the_plan.netns, owned=hold, interfaces=entry.interfaces)
    lab.modules_loaded = [str(item) for item in loaded]
    return lab


def _source_of(file: Path | None) -> Source | None:
    """The parsed file, to locate a step's error in it (parsed again: errors are the slow path)."""
    if file is None:
        return None
    from netlab.model.yamlsrc import parse_file

    try:
        return parse_file(file)
    except NetlabError:
        return None


def attach(name: str) -> Lab:
    """A handle on lab ``name``, which must be up; it is not torn down when dropped."""
    record = journal.read(name)
    if record is None:
        raise journal.not_up(name)
    if record.state != "up":
        raise LabStateError(f"lab '{name}' is {record.state}", hint=f"netlab down {name} removes it")
    return Lab(name, record.header["topology"], record.header["netns"], owned=False)


def status(name: str | None = None) -> list[dict[str, Any]]:
    """Labs with their state, nodes, interfaces and addresses, ready for JSON."""
    names = [name] if name else journal.all_labs()
    out: list[dict[str, Any]] = []
    for lab in names:
        record = journal.read(lab)
        if record is None:
            raise journal.not_up(lab)
        entry: dict[str, Any] = {"lab": lab, "state": record.state, "source": record.header.get("source"), "nodes": []}
        for node, ns in record.header.get("netns", {}).items():
            item: dict[str, Any] = {"node": node, "netns": ns, "interfaces": []}
            if record.state == "up" and netns.exists(ns):
                for itf in live_interfaces(ns):
                    item["interfaces"].append(
                        {
                            "name": itf.name,
                            "index": itf.index,
                            "up": itf.up,
                            "carrier": itf.carrier,
                            "operstate": itf.operstate,
                            "addresses": [str(a) for a in itf.addresses],
                        }
                    )
            entry["nodes"].append(item)
        out.append(entry)
    return out
