"""Plan -> kernel: run the steps phase by phase, journaling root-level objects first.

Netlink phases go node by node as one batch each (see :mod:`netlab.apply.rtnl`); sysctls,
firewall and commands run step by step. The runner does not roll back on failure: it raises
:class:`~netlab.errors.ApplyError` naming the node, the step and the kernel's reason, and the
caller removes whatever the journal says was created. Keeping "build" and "undo" apart is what
makes the same undo path serve a failed step, Ctrl-C, and a ``kill -9`` found later.
"""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
from collections.abc import Callable
from itertools import groupby

from netlab.apply import firewall, messages, sysctl
from netlab.apply.messages import NetlinkStepError
from netlab.errors import ApplyError, KernelFeatureError
from netlab.plan.requests import Request
from netlab.plan.steps import (
    CreateBridge,
    CreateNamespace,
    CreateStacked,
    LoadNftables,
    ModelPath,
    Phase,
    Plan,
    RestoreFirewall,
    RunCommand,
    SetPortVlans,
    Step,
    WriteSysctl,
)
from netlab.runtime import journal, netlink, netns
from netlab.runtime.journal import Journal

NETLINK_PHASES = {Phase.LOOPBACK, Phase.LINKS, Phase.PEERS, Phase.STACKED, Phase.LINK_CONFIG, Phase.ROUTES}
COMMAND_TIMEOUT = 60.0

PhaseProgress = Callable[[Phase, int, int], None]


class StepError(ApplyError):
    """A step failed; ``origin`` locates it in the topology (mapped to file:line by the caller)."""

    def __init__(self, node: str, step: Step, detail: str, origin: ModelPath | None = None) -> None:
        super().__init__(f"node '{node}': {step.describe()}: {detail}")
        self.node = node
        self.step = step
        self.origin = origin if origin is not None else step.origin
        #: (line, column) inside a multi-line value (an nft ruleset) where the error is
        self.within: tuple[int, int | None] | None = None


class MissingFeatureError(StepError, KernelFeatureError):
    """A step needs something this kernel was built without (a link type, bridge VLAN filtering)."""

    exit_code = 4


def _request(built: dict[int, Request | None], step: Step) -> Request:
    request = built[id(step)]
    if request is None:  # pragma: no cover - compile_plan builds every netlink step's
        raise TypeError(f"no request for {step!r}")
    return request


def _missing_feature(exc: NetlinkStepError) -> str | None:
    """What the kernel lacks, when its refusal is "not supported" for a step that needs a driver
    or option; None for any other refusal."""
    if exc.errno != errno.EOPNOTSUPP:
        return None
    step = exc.step
    if isinstance(step, CreateStacked):
        return (
            f"this kernel has no {step.kind} interfaces (module {step.module}: neither built in nor"
            f" loadable here; {exc.detail})"
        )
    if (isinstance(step, CreateBridge) and step.vlan_filtering) or isinstance(step, SetPortVlans):
        return f"this kernel's bridge has no VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING is off; {exc.detail})"
    return None


def first_error(stderr: str, stdout: str = "") -> str:
    """What a failed command said first (tools put the cause first and usage or context after),
    with a count of the rest; its stdout when it wrote nothing to stderr."""
    lines = [ln.strip() for ln in (stderr.strip() or stdout.strip()).splitlines() if ln.strip()]
    if not lines:
        return "no output"
    more = f" (+{len(lines) - 1} more lines)" if len(lines) > 1 else ""
    return lines[0] + more


class Runner:
    """Applies one plan; owns the per-node netlink sockets while it runs."""

    def __init__(
        self,
        plan: Plan,
        journal: Journal,
        progress: PhaseProgress | None = None,
        compiled: tuple[Request | None, ...] | None = None,
    ) -> None:
        """``compiled``: the plan's requests from the plan cache (:func:`netlab.apply.rtnl.compile_plan`);
        without them they are built here, with pyroute2."""
        self.plan = plan
        self.journal = journal
        self.progress = progress
        self._sockets: dict[str, socket.socket] = {}
        self._fds = messages.NetnsFds()
        self.compiled = compiled

    def run(self) -> None:
        """Apply every step, in phase order; on failure the sockets are closed, on success they
        stay open for the readiness checks (:meth:`close` releases them)."""
        try:
            steps = self.plan.ordered()
            if self.compiled is None or len(self.compiled) != len(steps):
                from netlab.apply import rtnl  # lazy: pyroute2, only for a plan the cache had not built

                self.compiled = rtnl.compile_plan(self.plan)
            built = dict(zip(map(id, steps), self.compiled, strict=True))
            done = 0
            for phase, group in groupby(steps, key=lambda s: s.phase):
                items = list(group)
                self._phase(phase, items, built)
                done += len(items)
                if self.progress:
                    self.progress(phase, done, len(steps))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release sockets and namespace fds (also on failure)."""
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        self._fds.close()

    def socket(self, node: str) -> socket.socket:
        """The node's rtnetlink socket, opened on first use."""
        if node not in self._sockets:
            self._sockets[node] = netlink.open_route_socket(self.plan.netns[node])
        return self._sockets[node]

    def _phase(self, phase: Phase, steps: list[Step], built: dict[int, Request | None]) -> None:
        if phase in NETLINK_PHASES:
            for node, node_steps in groupby(steps, key=lambda s: s.node):
                batch = [(s, _request(built, s).bound(self._fds.fd)) for s in node_steps]
                try:
                    messages.send_batch(self.socket(node), batch)
                except NetlinkStepError as exc:
                    missing = _missing_feature(exc)
                    if missing:
                        raise MissingFeatureError(node, exc.step, missing) from None
                    raise StepError(node, exc.step, exc.detail) from None
            return
        for step in steps:
            self._one(step)

    def _one(self, step: Step) -> None:
        ns = self.plan.netns[step.node]
        if isinstance(step, CreateNamespace):
            self.journal.append(journal.NamespacePlanned(step.netns, step.node))

            def identify(ino: int, name: str = step.netns) -> None:
                self.journal.append(journal.NamespaceMade(name, ino))

            try:
                netns.create(step.netns, identify)
            except FileExistsError:
                raise StepError(
                    step.node,
                    step,
                    "a namespace of that name already exists (not this lab's)",
                ) from None
            except OSError as exc:
                raise StepError(step.node, step, exc.strerror or str(exc)) from None
        elif isinstance(step, WriteSysctl):
            try:
                sysctl.write(ns, step)
            except sysctl.SysctlError as exc:
                raise StepError(step.node, step, str(exc)) from None
        elif isinstance(step, RestoreFirewall):
            try:
                firewall.restore(ns, step)
            except firewall.RestoreError as exc:
                raise StepError(step.node, step, str(exc), exc.origin) from None
        elif isinstance(step, LoadNftables):
            try:
                firewall.load_nft(ns, step)
            except firewall.RestoreError as exc:
                error = StepError(step.node, step, str(exc), exc.origin)
                error.within = (exc.line, exc.column) if exc.line else None
                raise error from None
        elif isinstance(step, RunCommand):
            self._command(ns, step)
        else:  # pragma: no cover - the planner makes no other kinds
            raise TypeError(f"no applier for {step!r}")

    def _command(self, ns: str, step: RunCommand) -> None:

        binary = shutil.which(step.argv[0])
        if binary is None:
            raise StepError(step.node, step, f"command not found: {step.argv[0]}")
        try:
            proc = subprocess.run(
                [binary, *step.argv[1:]],
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                preexec_fn=netns.preexec(ns),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StepError(step.node, step, f"still running after {COMMAND_TIMEOUT:.0f}s") from None
        if proc.returncode != 0:
            raise StepError(step.node, step, f"exit {proc.returncode}: {first_error(proc.stderr, proc.stdout)}")
