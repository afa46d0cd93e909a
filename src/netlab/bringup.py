"""Bringing a lab up, top to bottom: resolve -> load or cached plan -> journal -> apply -> ready.

Every step either finishes or leaves the journal saying what it made, and any failure (a step
the kernel refuses, a timeout, Ctrl-C, SIGTERM) removes exactly that before the error goes on
(:func:`build`'s one ``except``). :mod:`netlab.lab` wraps the result in the handle tests and
tools use; the command line prints it as it is (a plain ``netlab up`` never validates a
topology it has built before).

A file built before comes up from its cached plan (:mod:`netlab.plan.cache`): no YAML, no
pydantic, no planner. That is the one place the model is imported lazily, because it is what
the cache exists to skip.
"""

from __future__ import annotations

import dataclasses
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netlab import teardown
from netlab.apply import modules, ready
from netlab.apply.runner import Runner
from netlab.errors import Issue, NetlabError, TopologyError
from netlab.model.files import resolve
from netlab.model.names import lab_name, label_problem
from netlab.plan import cache
from netlab.plan.requests import Request
from netlab.plan.steps import Plan
from netlab.runtime import journal, netns, procs, wait

if TYPE_CHECKING:  # the model needs pydantic, which a cached plan does without
    from netlab.model.topology import Topology
    from netlab.model.yamlsrc import Source

#: how long ``up`` waits for carrier and operstate UP, by default (``--timeout``)
DEFAULT_TIMEOUT = wait.LINKS_USABLE.timeout

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Planned:
    """All that ``up`` decides before touching the kernel, and all ``up --dry-run`` does."""

    topology: Topology
    source: Source | None
    name: str
    plan: Plan


@dataclass(frozen=True)
class Built:
    """A lab that came up: what it is, in the terms the journal and the plan cache keep."""

    entry: cache.Entry
    modules_loaded: tuple[str, ...]
    #: the validated model, when this ``up`` planned afresh (None: it came from the cache)
    topology: Topology | None

    @property
    def name(self) -> str:
        """The lab's name (the topology's, with ``-INSTANCE``)."""
        return self.entry.name

    def summary(self) -> dict[str, Any]:
        """The lab as built, ready for JSON (from the plan: no kernel query, no validation)."""
        nodes = [
            {
                "node": node,
                "netns": self.entry.plan.netns[node],
                "interfaces": [{"name": ifname, "addresses": addrs} for ifname, addrs in interfaces],
            }
            for node, interfaces in self.entry.interfaces.items()
        ]
        return {"lab": self.name, "state": "up", "nodes": nodes}


def plan(topology: str | Path | Topology, instance: str | None = None) -> Planned:
    """Load (a name, a path, or a model as is), check the instance name and plan: ``up`` and
    ``up --dry-run`` accept and refuse exactly the same."""
    from netlab.model.loader import load  # lazy: pydantic and the planner, which a cached up skips
    from netlab.plan.planner import plan as make_plan

    source = None
    if isinstance(topology, str | Path):
        topology, source = load(topology)
    if instance is not None:
        problem = label_problem("instance", instance)
        if problem:
            raise TopologyError([Issue(None, problem)])
    name = lab_name(topology.name, instance)
    return Planned(topology, source, name, make_plan(topology, name))


class _SigtermError(BaseException):
    """SIGTERM during ``up``: unwinds like Ctrl-C so the rollback runs."""


def build(
    topology: str | Path | Topology,
    *,
    instance: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    hold: bool = True,
    progress: Progress | None = None,
) -> Built:
    """Build a lab and return once it is usable; on any failure remove what was made first.

    ``hold=True`` ties the lab to this process (the journal names it: if it dies, the lab is
    ``crashed`` for ``netlab clean``); the command line builds with ``hold=False``.
    """
    file = resolve(topology) if isinstance(topology, str) else topology if isinstance(topology, Path) else None
    entry = cache.get(file, instance) if file is not None else None
    fresh = None
    if entry is None:
        fresh = plan(file or topology, instance)
        entry = _entry(fresh)
    netns.require_root()
    loaded = tuple(str(item) for item in modules.ensure(entry.plan.modules))
    for line in loaded:
        if progress:
            progress(line)
    # the journal, then apply and wait, undone as one on any failure
    header: dict[str, Any] = {
        "source": str(file) if file else None,
        "netns": entry.plan.netns,
        "topology": entry.topology,
        "modules_loaded": list(loaded),
    }
    if hold:
        pid, start = procs.me()
        header["holder"] = {"pid": pid, "start": start}
    log = journal.Journal.create(entry.name, header)
    try:
        with procs.sigterm_raises(_SigtermError):
            compiled = _apply(entry.plan, log, timeout, progress, entry.requests)
    except BaseException as exc:
        teardown.remove(journal.read(entry.name) or journal.Written(entry.name, header))
        journal.journal_path(entry.name).unlink(missing_ok=True)
        if isinstance(exc, NetlabError):
            raise _located(exc, entry) from None
        if isinstance(exc, _SigtermError):
            raise KeyboardInterrupt from None
        raise
    finally:
        log.close()
    if file is not None and (fresh is not None or entry.requests != compiled):  # keep it for next time
        cache.put(file, instance, dataclasses.replace(entry, requests=compiled))
    return Built(entry, loaded, fresh.topology if fresh else None)


def _entry(fresh: Planned) -> cache.Entry:
    """What the plan cache keeps of a fresh plan (and what ``up`` reads from a cached one)."""
    topology = fresh.topology
    source_map = pickle.dumps(fresh.source.without_data()) if fresh.source is not None else None
    data = topology.model_dump(mode="json")
    return cache.Entry(fresh.name, topology.description, data, fresh.plan, topology.addressed(), source_map)


def _apply(
    the_plan: Plan,
    log: journal.Journal,
    timeout: float,
    progress: Progress | None,
    requests: tuple[Request | None, ...] | None,
) -> tuple[Request | None, ...] | None:
    """Run the plan's steps, wait until the lab is usable, journal it ready; the plan's
    netlink requests as sent (for the plan cache)."""
    started = time.monotonic()
    phases = (lambda ph, d, t: progress(f"{ph.name.lower()} {d}/{t}")) if progress else None
    runner = Runner(the_plan, log, phases, requests)
    try:
        runner.run()
        if progress:
            progress("waiting for carrier")
        ready.wait_usable(the_plan, {n: runner.socket(n) for n in the_plan.netns}, timeout)  # the build's sockets
    finally:
        runner.close()
    log.append(journal.Ready(round(time.monotonic() - started, 4)))
    return runner.compiled


def _located(exc: NetlabError, entry: cache.Entry) -> NetlabError:
    """``exc`` with the file:line of the topology its step came from, where the source map of
    the file (kept with the plan) knows it."""
    origin = getattr(exc, "origin", None)
    if not origin or entry.source_map is None:
        return exc
    source: Source = pickle.loads(entry.source_map)  # noqa: S301 - ours, from the plan cache (0700) or just made
    pos = source.locate(tuple(origin), getattr(exc, "within", None))
    if pos is not None:
        exc.message = f"{pos}: {exc.message}"
        exc.args = (exc.message,)
    return exc
