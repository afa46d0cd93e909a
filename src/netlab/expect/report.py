"""The scenario report (``--netlab-report PATH``) and its diff between two kernels or runs.

A report says which kernel it came from (release and the config options that decide what
can be traced and where packets die) and, per scenario, its outcome and the drops it observed
as ``{"location": function, "reason": ..., "node": ..., "count": ...}``. ``netlab report diff
A.json B.json`` lists, scenario by scenario, drops that are new, vanished, or moved (same
reason at another function, or another reason at the same function); ``--asserted`` compares
what the scenarios asserted instead of everything their tracers saw.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netlab.errors import NetlabError
from netlab.expect.kernel import read_config
from netlab.tracers.events import TraceResult
from netlab.tracers.kernel.reasons import FORMAT, parse_format

CONFIG_OPTIONS = (
    "CONFIG_NET_DROP_MONITOR",
    "CONFIG_KPROBES",
    "CONFIG_FUNCTION_TRACER",
    "CONFIG_FUNCTION_GRAPH_TRACER",
    "CONFIG_HIST_TRIGGERS",
    "CONFIG_EPROBE_EVENTS",
    "CONFIG_BPF_SYSCALL",
    "CONFIG_DEBUG_INFO_BTF",
    "CONFIG_SECURITY_LOCKDOWN_LSM",
    "CONFIG_BRIDGE",
    "CONFIG_BRIDGE_NETFILTER",
    "CONFIG_NF_TABLES",
    "CONFIG_IP_NF_IPTABLES",
    "CONFIG_LLC",
    "CONFIG_STP",
    "CONFIG_VLAN_8021Q",
    "CONFIG_NET_SCH_NETEM",
    "CONFIG_NET_SCH_TBF",
    "CONFIG_NET_CLS_ACT",
    "CONFIG_NET_ACT_GACT",
    "CONFIG_IPV6",
)


def kernel_config(path: Path = Path("/proc/config.gz")) -> dict[str, str]:
    """The options that matter, from /proc/config.gz (or /boot/config-RELEASE); ``unknown``
    when the kernel publishes no config."""

    values = read_config([path, Path(f"/boot/config-{platform.release()}")])
    return {opt: "unknown" if values is None else values.get(opt, "n") for opt in CONFIG_OPTIONS}


def running_reasons() -> list[str] | None:
    """The drop reasons of the running kernel's own table (``skb:kfree_skb``'s format), sorted;
    None when tracefs cannot be read (not root): the catalogue then falls back on the recorded
    tables of the matrix kernels."""
    try:
        return sorted(set(parse_format(FORMAT.read_text()).values()))
    except OSError:
        return None


def observed_drops(result: TraceResult) -> list[dict[str, Any]]:
    """A trace's drops as report items."""
    return [
        {"location": function, "reason": reason, "node": node, "count": count}
        for node, _device, function, reason, count in result.summary()
    ]


def build(scenarios: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The whole report."""
    items = sorted(scenarios, key=lambda s: s["scenario"])
    reasons = sorted(
        {d["reason"] for s in items if s["outcome"] == "passed" for d in s.get("asserted", []) if d["reason"]}
    )
    return {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "kernel": {
            "release": platform.release(),
            "machine": platform.machine(),
            "config": kernel_config(),
            "reasons": running_reasons(),
        },
        "asserted_reasons": reasons,
        "scenarios": items,
    }


def write(path: Path, scenarios: Iterable[dict[str, Any]], kernel: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the report to ``path``; ``kernel``: the kernel it was made on, when that is not
    the one running here (a guest's report merged on the host)."""
    report = build(scenarios)
    if kernel is not None:
        report["kernel"] = kernel
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report


#: the outcomes of a scenario that did not pass (its test, or its teardown)
FAILED = ("failed", "error")


#: more failures than this are the kernel's or the run's, not flakes: the matrix does not run
#: them again (:mod:`netlab.kernels.suite`)
MOST_RERUN = 10


def failed(path: Path) -> list[str]:
    """The node ids of the report's scenarios that failed."""
    return [s["scenario"] for s in load(path)["scenarios"] if s["outcome"] in FAILED]


def to_run_again(path: Path) -> list[str]:
    """The report's failures, to run once more; none when there are too many to be flakes."""
    again = failed(path)
    return again if len(again) <= MOST_RERUN else []


def load(path: Path) -> dict[str, Any]:
    """Read a report; a clear error when it is not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise NetlabError(f"{path}: not a readable netlab report ({exc})") from None
    if not isinstance(data, dict) or "scenarios" not in data:
        raise NetlabError(f"{path}: not a netlab report (no 'scenarios')")
    return data


#: what a report says of each scenario: the drops its tracer observed, or the ones it asserted
SIDES = ("drops", "asserted")


def _drops(scenario: dict[str, Any], side: str) -> set[tuple[str, str | None]]:
    return {(d["location"], d["reason"]) for d in scenario.get(side, [])}


def _label(location: str, reason: str | None) -> str:
    return f"{location} {reason or '(no reason: kernel before 5.17)'}"


@dataclass(frozen=True)
class Change:
    """One difference of one scenario between two reports.

    ``kind``: ``outcome``, ``gone`` and ``new`` (scenarios); ``new drop``, ``vanished drop``;
    ``reason appeared`` (a kernel without reasons to one with them), ``reason changed`` (same
    function, another reason) and ``moved`` (same reason, another function).
    """

    scenario: str
    kind: str
    old: tuple[str, str | None] | str | None = None
    new: tuple[str, str | None] | str | None = None

    def __str__(self) -> str:
        old, new = (_label(*x) if isinstance(x, tuple) else x for x in (self.old, self.new))
        if self.kind == "gone":
            return f"{self.scenario}: scenario gone"
        if self.kind == "new":
            return f"{self.scenario}: new scenario ({new})"
        if self.kind == "new drop":
            return f"{self.scenario}: new drop {new}"
        if self.kind == "vanished drop":
            return f"{self.scenario}: vanished drop {old}"
        return f"{self.scenario}: {self.kind} {old} -> {new}"


def changes(a: dict[str, Any], b: dict[str, Any], side: str = "drops") -> list[Change]:
    """What changed from report ``a`` to report ``b``, scenario by scenario, comparing the
    drops observed (``side="drops"``) or the ones the scenarios asserted (``"asserted"``:
    free of the noise a run also sees, like a neighbour's multicast)."""
    out: list[Change] = []
    sa = {s["scenario"]: s for s in a["scenarios"]}
    sb = {s["scenario"]: s for s in b["scenarios"]}
    for name in sorted(set(sa) | set(sb)):
        if name not in sb:
            out.append(Change(name, "gone"))
            continue
        if name not in sa:
            out.append(Change(name, "new", new=sb[name]["outcome"]))
            continue
        old, new = sa[name], sb[name]
        if old["outcome"] != new["outcome"]:
            out.append(Change(name, "outcome", old["outcome"], new["outcome"]))
        da, db = _drops(old, side), _drops(new, side)
        gone, came = da - db, db - da
        for loc, reason in sorted(came, key=str):
            moved = [x for x in gone if x[1] == reason or x[0] == loc]
            if not moved:
                out.append(Change(name, "new drop", new=(loc, reason)))
                continue
            was = moved[0]
            gone.discard(was)
            if was[0] != loc:
                kind = "moved"
            elif was[1] is None:
                kind = "reason appeared"
            else:
                kind = "reason changed"
            out.append(Change(name, kind, was, (loc, reason)))
        out.extend(Change(name, "vanished drop", old=x) for x in sorted(gone, key=str))
    return out


def diff(a: dict[str, Any], b: dict[str, Any], side: str = "drops") -> list[str]:
    """What changed from report ``a`` to report ``b``, one line each (empty: nothing)."""
    lines: list[str] = []
    ka, kb = a.get("kernel", {}).get("release"), b.get("kernel", {}).get("release")
    if ka != kb:
        lines.append(f"kernel: {ka} -> {kb}")
    return lines + [str(c) for c in changes(a, b, side)]
