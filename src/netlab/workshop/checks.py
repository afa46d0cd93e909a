"""``netlab check labs/NN-name``: does the attendee's own running lab show what the lab asks for?

A lab's ``check.yaml`` is data: the topology it runs on and a list of checks, each of one kind
(``up``, ``ping``, ``sysctl``, ``iptables``, ``drop``, ``path``, ``flow``, ``answer``) with a
``hint`` that tells the attendee what to do when it fails. Checks that need traffic make their
own (a ping, an injection, a flow) and trace it, so the verdict is about the attendee's lab as it
is now. A lab without a topology reads evidence instead: its ``answer`` checks compare what the
attendee wrote in an answers file with what netlab computes (:mod:`netlab.workshop.answers`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from netlab.errors import Issue, NetlabError, TopologyError
from netlab.expect.drops import Drop
from netlab.lab import Lab, attach
from netlab.model.loader import issue_from
from netlab.model.names import lab_name
from netlab.model.yamlsrc import parse_file
from netlab.tracers.events import TraceResult, devices
from netlab.tracers.registry import DEFAULT, get
from netlab.tracing.trace import Trace, trace
from netlab.traffic.flow import tcp_flow
from netlab.traffic.inject import inject
from netlab.workshop.answers import Answer, read_answers
from netlab.workshop.answers import check as check_answer
from netlab.workshop.died import where_it_died


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ping(_Spec):
    """``node`` pings ``to`` once; ``expect`` success or failure."""

    node: str
    to: str
    expect: Literal["success", "failure"] = "success"


class Sysctl(_Spec):
    """A sysctl of a node has a value."""

    node: str
    key: str
    value: str


class Iptables(_Spec):
    """A line of ``iptables-save`` (a rule, or a policy like ``:FORWARD DROP``) is there or not."""

    node: str
    line: str
    table: str = "filter"
    present: bool = True


class Inject(_Spec):
    """Traffic a check sends: a recipe from an interface (options as for ``netlab inject``)."""

    node: str
    interface: str
    recipe: str
    count: int = 3
    options: dict[str, Any] = Field(default_factory=dict)


class Expect(_Spec):
    """A drop to find: function (compared without compiler suffixes), reason, node."""

    function: str | None = None
    reason: str | None = None
    node: str | None = None


class DropCheck(_Spec):
    """Send traffic, trace it, and find the expected drop."""

    inject: Inject
    expect: Expect


class PathCheck(_Spec):
    """Ping, trace it, and find a packet that crossed exactly these devices."""

    ping: Ping
    devices: list[str]


class FlowCheck(_Spec):
    """A TCP flow completes (verified), optionally with retransmissions."""

    src: str
    dst: str
    bytes: int = 1 << 20
    retransmissions: Literal["any", "some", "none"] = "any"


class Check(_Spec):
    """One check: a name, exactly one kind, and what to do when it fails."""

    name: str
    hint: str = ""
    up: bool | None = None
    ping: Ping | None = None
    sysctl: Sysctl | None = None
    iptables: Iptables | None = None
    drop: DropCheck | None = None
    path: PathCheck | None = None
    flow: FlowCheck | None = None
    answer: Answer | None = None


class LabChecks(_Spec):
    """A lab's check file: the topology its checks run against, or none (answers only)."""

    title: str
    topology: str | None = None
    #: where the attendee's answers file is looked for (relative to the current directory)
    answers: str | None = None
    checks: Annotated[list[Check], Field(min_length=1)]


KINDS = ("up", "ping", "sysctl", "iptables", "drop", "path", "flow", "answer")
#: the kinds that look at no lab
WITHOUT_LAB = frozenset({"answer"})


@dataclass(frozen=True)
class Outcome:
    """The verdict on one check."""

    name: str
    ok: bool
    detail: str
    hint: str
    #: where the check's own packets died, when it failed (:func:`netlab.workshop.died.where_it_died`)
    died: tuple[str, ...] = ()


#: a check's verdict: passed, what was seen, where its packets died
Verdict = tuple[bool, str, list[str]]
_T = TypeVar("_T")


def load(directory: Path) -> LabChecks:
    """The lab's check.yaml, validated (errors at file:line like topologies)."""
    path = directory / "check.yaml" if directory.is_dir() else directory
    if not path.is_file():
        raise NetlabError(f"{directory}: no check.yaml (is this a lab directory, e.g. labs/02-bridge-forward-rule?)")
    source = parse_file(path)
    try:
        spec = LabChecks.model_validate(source.data)
    except ValidationError as exc:
        raise TopologyError([issue_from(e, source, LabChecks) for e in exc.errors()]) from None
    for i, check in enumerate(spec.checks):
        kinds = [k for k in KINDS if getattr(check, k) is not None]
        if len(kinds) != 1:
            raise TopologyError(
                [Issue(source.at(("checks", i)), f"check '{check.name}' needs exactly one of {', '.join(KINDS)}")]
            )
        if spec.topology is None and kinds[0] not in WITHOUT_LAB:
            raise TopologyError([Issue(source.at(("checks", i)), f"check '{check.name}' needs a lab: give topology:")])
        if kinds[0] == "answer" and spec.answers is None:
            raise TopologyError([Issue(source.at(("checks", i)), f"check '{check.name}' needs answers: (a file name)")])
    return spec


def _traced(lab: Lab, action: Callable[[], object]) -> TraceResult:

    with trace(lab) as t:
        action()
    return t.result


def _died(result: TraceResult | None, ok: bool, addresses: frozenset[str] = frozenset()) -> list[str]:
    """Where the packets died, for a failed check that traced its traffic."""
    return [] if ok or result is None else where_it_died(result, addresses)


def _traced_if_possible(lab: Lab, action: Callable[[], _T]) -> tuple[_T, TraceResult | None]:
    """``action`` under the default tracer, so that a failed check can say where its packets
    died; where that tracer cannot run here, untraced: the verdict does not depend on it."""
    tracer = get(DEFAULT)
    if not tracer.found.usable:
        return action(), None
    with Trace(tracer, lab) as t:
        done = action()
    return done, t.result


def _ping(lab: Lab, spec: Ping) -> Verdict:
    proc, result = _traced_if_possible(
        lab, lambda: lab.node(spec.node).run(["ping", "-c1", "-W1", "-n", spec.to], timeout=10)
    )
    worked = proc.returncode == 0
    said = f"ping from {spec.node} to {spec.to} {'works' if worked else 'fails'}"
    ok = worked == (spec.expect == "success")
    # a ping that worked where it should not have has no drops to show
    return ok, said, _died(result, ok or worked, frozenset({spec.to}))


def _sysctl(lab: Lab, spec: Sysctl) -> Verdict:
    value = lab.node(spec.node).sysctl(spec.key)
    return value == spec.value, f"{spec.node}: {spec.key} = {value}", []


def _iptables(lab: Lab, spec: Iptables) -> Verdict:
    out = lab.node(spec.node).run(["iptables-save", "-t", spec.table], timeout=10, check=True).stdout
    lines = {ln.strip() for ln in out.splitlines()}
    found = spec.line in lines or any(ln.startswith(spec.line + " [") for ln in lines)
    said = f"{spec.node}: '{spec.line}' {'is' if found else 'is not'} in the {spec.table} table"
    return found == spec.present, said, []


def _drop(lab: Lab, spec: DropCheck) -> Verdict:

    i = spec.inject
    result = _traced(lab, lambda: inject(lab, i.node, i.interface, i.recipe, count=i.count, **i.options))
    want = Drop(spec.expect.function, spec.expect.reason, spec.expect.node)
    hits = [d for d in result.drops if want.matches(d)]
    seen = ", ".join(f"{n}x {f} {r} in {node}" for node, _d, f, r, n in result.summary()) or "no drops"
    return bool(hits), f"expected {want}; saw {seen}", _died(result, bool(hits))


def _path(lab: Lab, spec: PathCheck) -> Verdict:

    result = _traced(lab, lambda: lab.node(spec.ping.node).run(["ping", "-c1", "-W1", spec.ping.to], timeout=10))
    paths = [devices(p) for p in result.paths]
    shown = "; ".join(" -> ".join(p) for p in paths[:4]) or "no complete packet path"
    ok = spec.devices in paths
    return ok, f"paths seen: {shown}", _died(result, ok, frozenset({spec.ping.to}))


def _flow(lab: Lab, spec: FlowCheck) -> Verdict:

    def flow() -> Any:
        try:
            return tcp_flow(lab, spec.src, spec.dst, spec.bytes, timeout=60, connect_timeout=3)
        except NetlabError as exc:
            return exc

    outcome, traced = _traced_if_possible(lab, flow)
    if isinstance(outcome, NetlabError):
        return False, outcome.message, _died(traced, False)
    ok = (
        outcome.verified
        and {"any": True, "some": outcome.retransmissions > 0, "none": outcome.retransmissions == 0}[
            spec.retransmissions
        ]
    )
    said = (
        f"{outcome.bytes_received} of {outcome.bytes_sent} bytes {'verified' if outcome.verified else 'CORRUPT'},"
        f" {outcome.retransmissions} retransmissions"
    )
    return ok, said, _died(traced, ok)


def _answers(directory: Path, spec: LabChecks, given: Path | None) -> list[Outcome]:
    """The ``answer`` checks: the attendee's file against what the lab's evidence says."""
    path = given or Path(spec.answers or "answers.yaml")
    checks = [c for c in spec.checks if c.answer is not None]
    try:
        data = read_answers(path)
    except NetlabError as exc:
        return [Outcome(c.name, False, exc.message, c.hint) for c in checks]
    outcomes = []
    for c in checks:
        assert c.answer is not None
        try:
            ok, detail = check_answer(directory, data, c.answer)
        except NetlabError as exc:
            ok, detail = False, exc.message
        outcomes.append(Outcome(c.name, ok, detail, c.hint))
    return outcomes


def run(directory: Path, instance: str | None = None, answers: Path | None = None) -> tuple[LabChecks, list[Outcome]]:
    """Run every check of the lab in ``directory`` against the attendee's running lab (and
    their answers file, ``answers`` or the one the lab names in the current directory)."""
    spec = load(directory)
    if spec.topology is None:
        return spec, _answers(directory if directory.is_dir() else directory.parent, spec, answers)
    name = lab_name(spec.topology, instance)
    outcomes: list[Outcome] = []
    try:
        lab = attach(name)
    except NetlabError as exc:
        first = spec.checks[0]
        return spec, [Outcome(first.name, False, exc.message, f"bring the lab up: netlab up {spec.topology}")]
    handlers: dict[str, Callable[[Lab, Any], Verdict]] = {
        "ping": _ping,
        "sysctl": _sysctl,
        "iptables": _iptables,
        "drop": _drop,
        "path": _path,
        "flow": _flow,
    }
    for check in spec.checks:
        kind = next(k for k in KINDS if getattr(check, k) is not None)
        if kind == "up":
            outcomes.append(Outcome(check.name, True, f"lab {name} is up", check.hint))
            continue
        if kind in WITHOUT_LAB:
            continue
        try:
            ok, detail, died = handlers[kind](lab, getattr(check, kind))
        except NetlabError as exc:
            ok, detail, died = False, exc.message, []
        outcomes.append(Outcome(check.name, ok, detail, check.hint, tuple(died)))
    if any(c.answer is not None for c in spec.checks):
        outcomes += _answers(directory if directory.is_dir() else directory.parent, spec, answers)
    return spec, outcomes
